//! Many paths read by one `stat`: their type, modification time and, for a link, its target — what
//! a loop of `stat` and `readlink` per path would give, in one process (on a slow host each process
//! costs more than the reading). The script must export `QUOTING_STYLE=literal`. An app folder's
//! listing reads as an [`AppListing`].

/// The shell command listing `paths` (already quoted, or globs), one line each, missing ones skipped.
/// Through the session's file helper where the script has one (see [`super::steps::helper_lstat`]).
pub fn command(paths: &str) -> String {
    super::steps::helper_lstat(
        "l",
        paths,
        &format!("stat --printf '%F\\t%Y\\t%N\\n' -- {paths} 2>/dev/null || :"),
    )
}

/// One line of [`command`]'s output.
#[derive(Debug, PartialEq)]
pub struct Stat<'a> {
    /// stat's `%F`: `directory`, `symbolic link`, `regular file`, …
    pub kind: &'a str,
    /// Seconds since the epoch.
    pub time: i64,
    pub path: &'a str,
    /// A link's target.
    pub target: Option<&'a str>,
}

impl Stat<'_> {
    pub fn is_dir(&self) -> bool {
        self.kind == "directory"
    }

    pub fn is_link(&self) -> bool {
        self.kind == "symbolic link"
    }
}

pub fn parse_line(line: &str) -> Option<Stat<'_>> {
    let mut fields = line.splitn(3, '\t');
    let (kind, time, name) = (fields.next()?, fields.next()?, fields.next()?);
    let (path, target) = match name.split_once(" -> ") {
        Some((path, target)) => (path, Some(target)),
        None => (name, None),
    };
    Some(Stat { kind, time: time.parse().unwrap_or(0), path, target })
}

/// What a listing of an app folder `base` (its `current`, `lock`, `releases/*` and `ports/*`)
/// says: the facts and `hk clean` read it alike.
#[derive(Debug, Default, PartialEq)]
pub struct AppListing {
    /// The release `current` points at.
    pub current: Option<String>,
    /// When the `lock` folder was made.
    pub locked_at: Option<i64>,
    /// Release folders (not `.partial` ones) with their times.
    pub releases: Vec<(String, i64)>,
    /// `ports/<name>` links with their targets.
    pub ports: Vec<(String, String)>,
}

pub fn app_listing(lines: &[&str], base: &str) -> AppListing {
    let (current, lock) = (format!("{base}/current"), format!("{base}/lock"));
    let (releases, ports) = (format!("{base}/releases/"), format!("{base}/ports/"));
    let mut listing = AppListing::default();
    for stat in lines.iter().filter_map(|l| parse_line(l)) {
        if stat.path == current && stat.is_link() {
            listing.current = stat.target.and_then(release_version);
        } else if stat.path == lock && stat.is_dir() {
            listing.locked_at = Some(stat.time);
        } else if let Some(version) = stat.path.strip_prefix(&releases) {
            if stat.is_dir() && !version.ends_with(".partial") {
                listing.releases.push((version.to_string(), stat.time));
            }
        } else if let (Some(port), true, Some(target)) =
            (stat.path.strip_prefix(&ports), stat.is_link(), stat.target)
        {
            listing.ports.push((port.to_string(), target.to_string()));
        }
    }
    listing
}

/// The version a link target names: `releases/V`, `../releases/V` or `<base>/releases/V`.
pub fn release_version(target: &str) -> Option<String> {
    let (_, version) = target.trim_end_matches('/').rsplit_once("releases/")?;
    (!version.is_empty() && !version.contains('/')).then(|| version.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_dirs_and_junk() {
        let link = parse_line("symbolic link\t7\t/a/ports/4000 -> /a/releases/v1").expect("line");
        assert!(link.is_link());
        assert_eq!((link.time, link.path, link.target), (7, "/a/ports/4000", Some("/a/releases/v1")));
        let dir = parse_line("directory\t9\t/a/releases/v1").expect("line");
        assert!(dir.is_dir() && dir.target.is_none());
        assert_eq!(parse_line("no tabs here"), None);
    }

    #[test]
    fn release_versions_from_link_targets() {
        assert_eq!(release_version("/opt/hk/app/releases/1.0.0").as_deref(), Some("1.0.0"));
        assert_eq!(release_version("../releases/abc-dirty/").as_deref(), Some("abc-dirty"));
        assert_eq!(release_version("/elsewhere"), None);
    }
}
