//! `hk plan --diff`: what a plan would change in text files, as unified diffs — the host's content
//! read in one more exec per host, the new content from this machine. Only regular files whose new
//! and old content are text under a size limit; never env files (secrets), never binaries.

use std::collections::HashMap;

use anyhow::Result;

use super::for_each_host;
use crate::model::{Action, Plan};
use crate::quote::q;
use crate::resources::Resource;
use crate::transport::Credentials;

/// Larger files are not diffed.
pub const DIFF_LIMIT: u64 = 256 * 1024;

/// Text: valid UTF-8 without NUL bytes.
fn text(bytes: &[u8]) -> Option<&str> {
    (!bytes.contains(&0)).then(|| std::str::from_utf8(bytes).ok()).flatten()
}

/// A unified diff of `old` → `new` for `path` (3 lines of context).
pub fn unified(path: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{path} (host)"), &format!("{path} (plan)"))
        .to_string()
}

/// Diffs of the plan's text-file rows, by (host, row id).
pub fn text_diffs(
    plan: &Plan,
    credentials: &Credentials,
    parallel: usize,
) -> HashMap<(String, String), String> {
    let hosts: Vec<String> = plan.hosts.keys().cloned().collect();
    let results = for_each_host(&hosts, parallel, |host| -> Result<Vec<((String, String), String)>> {
        // (row id, path, new text, whether the host has a file to compare with)
        let mut wanted = Vec::new();
        for row in
            plan.rows.iter().filter(|r| r.host == host && matches!(r.action, Action::Create | Action::Update))
        {
            let Resource::File(file) = &row.resource else { continue };
            if !row.changes.iter().any(|c| c.field == "content") || file.size > DIFF_LIMIT {
                continue;
            }
            let Ok(bytes) = file.bytes() else { continue };
            let Some(new) = text(&bytes) else { continue };
            let had = row.changes.iter().any(|c| c.field == "content" && c.from.is_some());
            wanted.push((row.id.clone(), file.path.clone(), new.to_string(), had));
        }
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let old = read_files(plan, host, credentials, wanted.iter().filter(|w| w.3).map(|w| w.1.as_str()))?;
        Ok(wanted
            .into_iter()
            .filter_map(|(id, path, new, had)| {
                let before = if had { old.get(&path).and_then(|b| text(b))? } else { "" };
                Some(((host.to_string(), id), unified(&path, before, &new)))
            })
            .collect())
    });
    results.into_iter().filter_map(|(_, r)| r.ok()).flatten().collect()
}

/// The content of `paths` on `host` (those under the limit), in one script.
fn read_files<'a>(
    plan: &Plan,
    host: &str,
    credentials: &Credentials,
    paths: impl Iterator<Item = &'a str>,
) -> Result<HashMap<String, Vec<u8>>> {
    let Some(host_plan) = plan.hosts.get(host) else { return Ok(HashMap::new()) };
    let nonce = super::nonce();
    let mut script = format!("HK={}\n", q(&nonce)?);
    let paths: Vec<&str> = paths.collect();
    for (i, path) in paths.iter().enumerate() {
        script.push_str(&format!(
            "if [ -f {p} ] && [ \"$(stat -c %s -- {p})\" -le {DIFF_LIMIT} ]; then printf '\\n%s file {i}\\n' \"$HK\"; cat -- {p}; fi\n",
            p = q(path)?
        ));
    }
    script.push_str("printf '\\n%s end\\n' \"$HK\"\n");
    let mut transport = host_plan.target.connect(credentials)?;
    let out = transport.run_script(script.as_bytes(), &mut |_| {})?;
    // Sections: `\n<nonce> file <i>\n<bytes>` up to the next marker (whose leading \n is ours).
    let marker = format!("\n{nonce} ");
    let mut found = HashMap::new();
    let bytes = &out.stdout;
    let starts: Vec<usize> = memchr::memmem::find_iter(bytes, marker.as_bytes()).collect();
    for (n, &start) in starts.iter().enumerate() {
        let head_start = start + marker.len();
        let Some(eol) = bytes[head_start..].iter().position(|&b| b == b'\n') else { continue };
        let head = String::from_utf8_lossy(&bytes[head_start..head_start + eol]).to_string();
        let Some(index) = head.strip_prefix("file ").and_then(|i| i.parse::<usize>().ok()) else { continue };
        let body_start = head_start + eol + 1;
        let body_end = starts.get(n + 1).copied().unwrap_or(bytes.len()).max(body_start);
        if let Some(path) = paths.get(index) {
            found.insert(path.to_string(), bytes[body_start..body_end].to_vec());
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    #[test]
    fn unified_diffs_show_what_changes() {
        let diff = super::unified("/etc/app.conf", "a\nb\nc\n", "a\nB\nc\n");
        assert!(diff.contains("--- /etc/app.conf (host)"), "{diff}");
        assert!(diff.contains("-b\n+B\n"), "{diff}");
        assert_eq!(super::text(b"x\0y"), None);
    }
}
