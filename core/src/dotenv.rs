//! Secrets files in dotenv form, read on the controller: `KEY=value` lines with comments, quotes,
//! `export`, `${VAR}`/`$VAR` from earlier lines or the environment, and `$(command)` run by `sh`.
//!
//! What a command prints is taken as it is: never expanded again (a `$` in a password stays). Commands
//! run in parallel, each with a timeout; one that names earlier keys waits for them and gets their
//! values as environment variables (never on its command line, where the process list would show
//! them). Values live only in memory; `Debug` of an entry hides its value.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// One key's final value and where it was defined.
#[derive(Clone)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub file: PathBuf,
    pub line: usize,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Entry({} at {}:{})", self.key, self.file.display(), self.line)
    }
}

/// What commands run with: the caller's environment, folder and time limit.
pub struct Options {
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Var(String),
    Command(String),
}

#[derive(Debug, Clone)]
struct Line {
    key: String,
    parts: Vec<Part>,
    file: PathBuf,
    line: usize,
}

/// Read `files` in order (later definitions win; a missing file is skipped) into the final value of
/// every key, in the order keys were first defined.
pub fn load(files: &[PathBuf], options: &Options) -> Result<Vec<Entry>> {
    let mut lines = Vec::new();
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
        };
        lines.extend(parse(&text, file)?);
    }
    let values = evaluate(&lines, options)?;
    let mut order: Vec<&str> = Vec::new();
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, l) in lines.iter().enumerate() {
        if !last.contains_key(l.key.as_str()) {
            order.push(&l.key);
        }
        last.insert(&l.key, i);
    }
    Ok(order
        .into_iter()
        .map(|key| {
            let i = last[key];
            Entry {
                key: key.to_string(),
                value: values[i].clone(),
                file: lines[i].file.clone(),
                line: lines[i].line,
            }
        })
        .collect())
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn parse(text: &str, file: &Path) -> Result<Vec<Line>> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line_no = 1;
    let at = |line: usize| format!("{}:{line}", file.display());
    while i < chars.len() {
        // One definition from the start of a line.
        let start_line = line_no;
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        if chars[i] == '\n' || chars[i] == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            i += 1;
            line_no += 1;
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 7)].iter().collect();
        if rest == "export " {
            i += 7;
            while i < chars.len() && chars[i] == ' ' {
                i += 1;
            }
        }
        let key_start = i;
        if i < chars.len() && is_name_start(chars[i]) {
            i += 1;
            while i < chars.len() && is_name_char(chars[i]) {
                i += 1;
            }
        }
        let key: String = chars[key_start..i].iter().collect();
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
            i += 1;
        }
        if key.is_empty() || i >= chars.len() || chars[i] != '=' {
            bail!("{}: expected KEY=value (a name of letters, digits and _, then =)", at(start_line));
        }
        i += 1;
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
            i += 1;
        }
        let mut parts = Vec::new();
        if i < chars.len() && chars[i] == '\'' {
            i += 1;
            let s = i;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\n' {
                    line_no += 1;
                }
                i += 1;
            }
            if i >= chars.len() {
                bail!("{}: the value of {key} opens a ' quote that never closes", at(start_line));
            }
            parts.push(Part::Text(chars[s..i].iter().collect()));
            i += 1;
        } else if i < chars.len() && chars[i] == '"' {
            i += 1;
            let mut text = String::new();
            loop {
                if i >= chars.len() {
                    bail!("{}: the value of {key} opens a \" quote that never closes", at(start_line));
                }
                match chars[i] {
                    '"' => {
                        i += 1;
                        break;
                    }
                    '\\' if i + 1 < chars.len() => {
                        let c = chars[i + 1];
                        match c {
                            'n' => text.push('\n'),
                            't' => text.push('\t'),
                            'r' => text.push('\r'),
                            '"' | '\\' | '$' | '`' => text.push(c),
                            '\n' => line_no += 1,
                            other => {
                                text.push('\\');
                                text.push(other);
                            }
                        }
                        i += 2;
                    }
                    '$' => {
                        i = dollar(&chars, i, &mut text, &mut parts, &key, &at(start_line))?;
                    }
                    c => {
                        if c == '\n' {
                            line_no += 1;
                        }
                        text.push(c);
                        i += 1;
                    }
                }
            }
            if !text.is_empty() {
                parts.push(Part::Text(text));
            }
        } else {
            let mut text = String::new();
            while i < chars.len() && chars[i] != '\n' {
                if chars[i] == '#' && (text.is_empty() || text.ends_with(' ') || text.ends_with('\t')) {
                    break;
                }
                if chars[i] == '$' {
                    i = dollar(&chars, i, &mut text, &mut parts, &key, &at(start_line))?;
                } else {
                    text.push(chars[i]);
                    i += 1;
                }
            }
            let trimmed = text.trim_end().to_string();
            if !trimmed.is_empty() {
                parts.push(Part::Text(trimmed));
            }
        }
        // Whatever follows a quoted value on its line must be a comment.
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
            i += 1;
        }
        if i < chars.len() && chars[i] == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        }
        if i < chars.len() && chars[i] != '\n' {
            bail!("{}: unexpected text after the value of {key}", at(line_no));
        }
        i += 1;
        line_no += 1;
        out.push(Line { key, parts, file: file.to_path_buf(), line: start_line });
    }
    Ok(out)
}

/// A `$` at `chars[i]`: `$(command)`, `${NAME}`, `$NAME`, or a `$` as it is. Text gathered so far
/// is flushed into `parts` before a reference. Returns where reading goes on.
fn dollar(
    chars: &[char],
    i: usize,
    text: &mut String,
    parts: &mut Vec<Part>,
    key: &str,
    at: &str,
) -> Result<usize> {
    let next = chars.get(i + 1).copied();
    let flush = |parts: &mut Vec<Part>, text: &mut String| {
        if !text.is_empty() {
            parts.push(Part::Text(std::mem::take(text)));
        }
    };
    match next {
        Some('(') => {
            let (command, end) = command_text(chars, i + 2)
                .with_context(|| format!("{at}: the value of {key} opens $( and never closes it"))?;
            flush(parts, text);
            parts.push(Part::Command(command));
            Ok(end)
        }
        Some('{') => {
            let mut j = i + 2;
            while j < chars.len() && is_name_char(chars[j]) {
                j += 1;
            }
            if j >= chars.len() || chars[j] != '}' || j == i + 2 {
                bail!("{at}: the value of {key} has a ${{ that is not ${{NAME}}");
            }
            flush(parts, text);
            parts.push(Part::Var(chars[i + 2..j].iter().collect()));
            Ok(j + 1)
        }
        Some(c) if is_name_start(c) => {
            let mut j = i + 1;
            while j < chars.len() && is_name_char(chars[j]) {
                j += 1;
            }
            flush(parts, text);
            parts.push(Part::Var(chars[i + 1..j].iter().collect()));
            Ok(j)
        }
        _ => {
            text.push('$');
            Ok(i + 1)
        }
    }
}

/// The command of a `$(…)` starting at `start` (after the parenthesis) and the index after its `)`:
/// nested parentheses and quoted text are part of the command.
fn command_text(chars: &[char], start: usize) -> Option<(String, usize)> {
    let mut depth = 1;
    let mut quote: Option<char> = None;
    let mut j = start;
    while j < chars.len() {
        let c = chars[j];
        match quote {
            Some(q) if c == q => quote = None,
            Some('"') if c == '\\' => j += 1,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '\\' => j += 1,
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some((chars[start..j].iter().collect(), j + 1));
                    }
                }
                _ => {}
            },
        }
        j += 1;
    }
    None
}

/// The names a command's text refers to (`$NAME`, `${NAME}`), which it gets from the environment.
fn names_in(command: &str) -> Vec<String> {
    let chars: Vec<char> = command.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '$' {
            let braced = chars.get(i + 1) == Some(&'{');
            let s = if braced { i + 2 } else { i + 1 };
            let mut j = s;
            if j < chars.len() && is_name_start(chars[j]) {
                while j < chars.len() && is_name_char(chars[j]) {
                    j += 1;
                }
                names.push(chars[s..j].iter().collect());
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    names
}

/// One line's value, filled in by its own thread; later lines wait for it.
struct Slot {
    value: Mutex<Option<Result<String, String>>>,
    ready: Condvar,
}

impl Slot {
    fn wait(&self) -> Result<String, String> {
        let mut guard = self.value.lock().unwrap_or_else(|e| e.into_inner());
        while guard.is_none() {
            guard = self.ready.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
        guard.clone().unwrap_or_else(|| Err("no value".into()))
    }

    fn set(&self, value: Result<String, String>) {
        let mut guard = self.value.lock().unwrap_or_else(|e| e.into_inner());
        *guard = Some(value);
        self.ready.notify_all();
    }
}

fn evaluate(lines: &[Line], options: &Options) -> Result<Vec<String>> {
    let env: HashMap<&str, &str> = options.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let slots: Vec<Slot> =
        lines.iter().map(|_| Slot { value: Mutex::new(None), ready: Condvar::new() }).collect();
    // The line a name refers to from line `i`: the latest definition before it.
    let defined_before = |i: usize, name: &str| lines[..i].iter().rposition(|l| l.key == name);
    std::thread::scope(|scope| {
        for (i, line) in lines.iter().enumerate() {
            let slots = &slots;
            let env = &env;
            scope.spawn(move || {
                let lookup = |name: &str| -> Result<String, String> {
                    match defined_before(i, name) {
                        Some(j) => {
                            slots[j].wait().map_err(|_| format!("{name} (from an earlier line) failed"))
                        }
                        None => Ok(env.get(name).map(|v| v.to_string()).unwrap_or_default()),
                    }
                };
                let mut value = String::new();
                let mut result = Ok(());
                for part in &line.parts {
                    match part {
                        Part::Text(t) => value.push_str(t),
                        Part::Var(name) => match lookup(name) {
                            Ok(v) => value.push_str(&v),
                            Err(e) => {
                                result = Err(e);
                                break;
                            }
                        },
                        Part::Command(command) => {
                            let mut extra = Vec::new();
                            for name in names_in(command) {
                                if defined_before(i, &name).is_some() {
                                    match lookup(&name) {
                                        Ok(v) => extra.push((name, v)),
                                        Err(e) => {
                                            result = Err(e);
                                            break;
                                        }
                                    }
                                }
                            }
                            if result.is_err() {
                                break;
                            }
                            match run(command, &extra, options) {
                                Ok(v) => value.push_str(&v),
                                Err(e) => {
                                    result = Err(format!(
                                        "{}:{}: $({command}) for {}: {e:#}",
                                        line.file.display(),
                                        line.line,
                                        line.key
                                    ));
                                    break;
                                }
                            }
                        }
                    }
                }
                slots[i].set(result.map(|_| value));
            });
        }
    });
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for slot in &slots {
        match slot.wait() {
            Ok(v) => values.push(v),
            Err(e) => {
                // A line failing because an earlier one did says nothing new.
                if !e.ends_with("(from an earlier line) failed") {
                    errors.push(e);
                }
                values.push(String::new());
            }
        }
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("; "));
    }
    Ok(values)
}

/// Run `command` with `sh -c` in the caller's environment plus `extra`; its stdout without the
/// trailing newlines, as `$(…)` gives it in a shell.
fn run(command: &str, extra: &[(String, String)], options: &Options) -> Result<String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .env_clear()
        .envs(options.env.iter().map(|(k, v)| (k, v)))
        .envs(extra.iter().map(|(k, v)| (k, v)))
        .current_dir(&options.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start sh")?;
    let mut stdout = child.stdout.take().context("no stdout")?;
    let mut stderr = child.stderr.take().context("no stderr")?;
    let out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stderr.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + options.timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {} s", options.timeout.as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        let code = status.code().map(|c| c.to_string()).unwrap_or_else(|| "a signal".into());
        // Its stderr explains; its stdout would be the secret.
        bail!("exited with {code}: {}", String::from_utf8_lossy(&stderr).trim());
    }
    let mut text = String::from_utf8(stdout).context("its output is not UTF-8")?;
    while text.ends_with('\n') {
        text.pop();
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(env: &[(&str, &str)]) -> Options {
        Options {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .chain([("PATH".into(), "/usr/bin:/bin".into())])
                .collect(),
            cwd: std::env::temp_dir(),
            timeout: Duration::from_secs(5),
        }
    }

    fn read(text: &str, env: &[(&str, &str)]) -> Result<Vec<(String, String)>> {
        let dir = std::env::temp_dir().join(format!("hk-dotenv-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("secrets");
        std::fs::write(&file, text)?;
        let entries = load(&[file], &options(env))?;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(entries.into_iter().map(|e| (e.key, e.value)).collect())
    }

    fn rand_suffix() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        N.fetch_add(1, Ordering::Relaxed)
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn quotes_comments_and_export() -> Result<()> {
        let got = read(
            "# a comment\n\nA=plain value # trailing comment\nexport B='single $NOT #kept'\nC=\"double \\\"q\\\" \\$x\"\nD=x#y\nE=\n",
            &[],
        )?;
        assert_eq!(
            got,
            pairs(&[
                ("A", "plain value"),
                ("B", "single $NOT #kept"),
                ("C", "double \"q\" $x"),
                ("D", "x#y"),
                ("E", "")
            ])
        );
        Ok(())
    }

    #[test]
    fn variables_from_earlier_lines_and_the_environment() -> Result<()> {
        let got = read("A=one\nB=${A}-$HOME_X-${A}\nA=two\nC=$A\n", &[("HOME_X", "env")])?;
        assert_eq!(got, pairs(&[("A", "two"), ("B", "one-env-one"), ("C", "two")]));
        Ok(())
    }

    #[test]
    fn command_output_is_never_expanded_again() -> Result<()> {
        let got = read("P=$(printf 'pa$1wor$D\\n\\n')\nQ=\"x$(echo '$HOME')y\"\n", &[("D", "bad")])?;
        assert_eq!(got, pairs(&[("P", "pa$1wor$D"), ("Q", "x$HOMEy")]));
        Ok(())
    }

    #[test]
    fn commands_see_earlier_keys_in_their_environment_and_run_in_parallel() -> Result<()> {
        let started = Instant::now();
        let got = read(
            "TOKEN=t0k\nA=$(sleep 1; echo \"a-$TOKEN\")\nB=$(sleep 1; echo b)\nC=$(sleep 1; echo c)\n",
            &[],
        )?;
        assert_eq!(got, pairs(&[("TOKEN", "t0k"), ("A", "a-t0k"), ("B", "b"), ("C", "c")]));
        assert!(started.elapsed() < Duration::from_millis(2500), "took {:?}", started.elapsed());
        Ok(())
    }

    #[test]
    fn a_failing_or_slow_command_names_its_line() {
        let err = read("OK=1\nBAD=$(echo oops >&2; exit 3)\n", &[]).unwrap_err().to_string();
        assert!(
            err.contains("secrets:2") && err.contains("exited with 3: oops") && err.contains("BAD"),
            "{err}"
        );
        let dir = std::env::temp_dir().join(format!("hk-dotenv-slow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secrets");
        std::fs::write(&file, "S=$(sleep 5)\n").unwrap();
        let mut o = options(&[]);
        o.timeout = Duration::from_millis(200);
        let err = load(&[file], &o).unwrap_err().to_string();
        assert!(err.contains("timed out"), "{err}");
    }

    #[test]
    fn later_files_win_and_bad_lines_are_named() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("hk-dotenv-layers-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("common"), "A=common\nB=common\n")?;
        std::fs::write(dir.join("dest"), "B=dest-$A\n")?;
        let entries = load(&[dir.join("common"), dir.join("missing"), dir.join("dest")], &options(&[]))?;
        let got: Vec<_> =
            entries.iter().map(|e| (e.key.as_str(), e.value.as_str(), e.file.file_name())).collect();
        assert_eq!(got[0].1, "common");
        assert_eq!((got[1].1, got[1].2.and_then(|f| f.to_str())), ("dest-common", Some("dest")));
        let err = read("GOOD=1\nnot a line\n", &[]).unwrap_err().to_string();
        assert!(err.contains("secrets:2"), "{err}");
        let err = read("Q=\"open\n", &[]).unwrap_err().to_string();
        assert!(err.contains("never closes"), "{err}");
        Ok(())
    }

    #[test]
    fn multi_line_and_non_ascii_values() -> Result<()> {
        let got = read("K=\"line1\nline2\"\nU='päss wörd ✓'\nAFTER=1\n", &[])?;
        assert_eq!(got, pairs(&[("K", "line1\nline2"), ("U", "päss wörd ✓"), ("AFTER", "1")]));
        Ok(())
    }
}
