//! Many paths read by one `stat`: their type, modification time and, for a link, its target — what
//! a loop of `stat` and `readlink` per path would give, in one process (on a slow host each process
//! costs more than the reading). The script must export `QUOTING_STYLE=literal`.

/// The shell command listing `paths` (already quoted, or globs), one line each, missing ones skipped.
pub fn command(paths: &str) -> String {
    format!("stat --printf '%F\\t%Y\\t%N\\n' -- {paths} 2>/dev/null || :")
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
}
