//! The apply script builder: one POSIX sh script per host, one function per step, one event line per
//! step on stdout (`<nonce> ok <n>` / `<nonce> failed <n>`), stopping at the first failure.

use anyhow::Result;
use base64::Engine as _;

use crate::quote::{q, quote_bytes};

/// Payloads larger than this, or holding NUL bytes, travel as base64 in a here-document.
const INLINE_PAYLOAD_MAX: usize = 256 * 1024;

/// `hk_mv FROM TO` (rename, as `mv -fT`), `hk_ln TARGET PATH` (a new symlink) and
/// `hk_mkdir PATH MODE` (a new directory with exactly MODE). Where the host has perl, one perl process
/// serves them over two fifos, so these operations cost no process each; otherwise they are the
/// coreutils commands (also when `HK_NO_PERL` is set on the host).
const FS_OPS: &str = r#"hk_fs=
if [ -z "${HK_NO_PERL:-}" ] && command -v perl >/dev/null 2>&1 && mkfifo "$hk_tmp/req" "$hk_tmp/resp" 2>/dev/null; then
  # The shell opens the fifos for perl, so a perl that fails to start ends the replies (EOF) instead
  # of leaving this script waiting on a fifo.
  perl -e '
    $| = 1; $/ = "\0";
    while (defined(my $op = <STDIN>)) {
      my $a = <STDIN>; my $b = <STDIN>; chomp($op, $a, $b);
      my $ok = $op eq "mv" ? rename($a, $b)
        : $op eq "ln" ? symlink($a, $b)
        : $op eq "mkdir" ? (mkdir($a, 0700) && chmod(oct($b), $a)) : 0;
      my $what = $op eq "mv" ? "mv: cannot move \x27$a\x27 to \x27$b\x27"
        : $op eq "ln" ? "ln: failed to create symbolic link \x27$b\x27"
        : "mkdir: cannot create directory \x27$a\x27";
      print(($ok ? "ok" : "$what: $!") . "\n");
    }' < "$hk_tmp/req" > "$hk_tmp/resp" 2>/dev/null &
  exec 3>"$hk_tmp/req" 4<"$hk_tmp/resp"
  hk_fs=perl
fi
hk_op() {
  printf '%s\0%s\0%s\0' "$1" "$2" "$3" >&3 && IFS= read -r hk_r <&4 || { printf 'hk: the file helper stopped\n' >&2; return 1; }
  [ "$hk_r" = ok ] || { printf '%s\n' "$hk_r" >&2; return 1; }
}
if [ "$hk_fs" = perl ]; then
  hk_mv() { hk_op mv "$1" "$2"; }
  hk_ln() { hk_op ln "$1" "$2"; }
  hk_mkdir() { hk_op mkdir "$1" "$2"; }
else
  hk_mv() { mv -fT -- "$1" "$2"; }
  hk_ln() { ln -s -- "$1" "$2"; }
  hk_mkdir() { mkdir -m "$2" -- "$1"; }
fi
"#;

/// Rename `from` over `to` atomically (like `mv -fT`).
pub fn rename(from: &str, to: &str) -> Result<String> {
    Ok(format!("hk_mv {} {}", q(from)?, q(to)?))
}

/// Create the symlink `path` pointing at `target`.
pub fn symlink(target: &str, path: &str) -> Result<String> {
    Ok(format!("hk_ln {} {}", q(target)?, q(path)?))
}

/// Create the directory `path` with exactly `mode`.
pub fn mkdir(path: &str, mode: &str) -> Result<String> {
    Ok(format!("hk_mkdir {} {}", q(path)?, q(mode)?))
}

pub struct ApplyScript {
    text: String,
}

impl ApplyScript {
    pub fn new(nonce: &str) -> Result<Self> {
        let mut text = String::with_capacity(4096);
        // -C: `>` never follows or clobbers an existing file, so temp files cannot be redirected.
        text.push_str("set -euC\numask 077\nexport LC_ALL=C\n");
        text.push_str(&format!("HK={}\n", q(nonce)?));
        text.push_str("hk_tmp=$(mktemp -d \"${TMPDIR:-/tmp}/hk-apply.XXXXXX\")\nhk_err=\"$hk_tmp/err\"\n");
        text.push_str("trap 'exec 3>&- 4<&- 2>/dev/null; wait; rm -rf \"$hk_tmp\"' EXIT\n");
        text.push_str(concat!(
            "hk_step() {\n",
            "  if \"$1\" 2>|\"$hk_err\"; then printf '%s ok %s\\n' \"$HK\" \"$2\"\n",
            "  else cat \"$hk_err\" >&2; printf '%s failed %s\\n' \"$HK\" \"$2\"; exit 1; fi\n",
            "}\n"
        ));
        text.push_str(FS_OPS);
        Ok(ApplyScript { text })
    }

    /// Commands run once before the first step (at top level, so `set -e` stops the script on failure).
    pub fn prologue(&mut self, commands: Vec<String>) {
        for command in commands {
            self.text.push_str(&command);
            self.text.push('\n');
        }
    }

    /// Add step `index`: its commands run in order and stop at the first that fails (they are joined
    /// with `&&`, because `set -e` does not apply inside an `if`). `on_failure` runs after a failure.
    pub fn step(&mut self, index: usize, step: Step) {
        let Step { commands, on_failure, heredoc } = step;
        let mut body = commands.join(" && ");
        if !on_failure.is_empty() {
            body = format!("{{ {body}; }} || {{ {}; false; }}", on_failure.join("; "));
        }
        self.text.push_str(&format!("hk_s{index}() {{ {body}; }}\n"));
        if let Some(doc) = heredoc {
            self.text.push_str(&doc);
        }
        self.text.push_str(&format!("hk_step hk_s{index} {index}\n"));
    }

    /// Commands run once after the last step succeeded, at top level (so they see the script's
    /// variables); a failure among them must be handled by the commands themselves.
    pub fn after_steps(&mut self, commands: &str) {
        self.text.push_str(commands);
        if !commands.ends_with('\n') {
            self.text.push('\n');
        }
    }

    /// Commands run once after the last step succeeded, in a subshell of their own.
    pub fn epilogue(&mut self, commands: &str) {
        self.text.push_str("(\n");
        self.text.push_str(commands);
        self.text.push_str(")\n");
    }

    pub fn finish(mut self) -> String {
        self.text.push_str("exit 0\n");
        self.text
    }
}

/// The commands of one step.
#[derive(Default)]
pub struct Step {
    pub commands: Vec<String>,
    pub on_failure: Vec<String>,
    heredoc: Option<String>,
}

impl Step {
    pub fn new() -> Self {
        Step::default()
    }

    pub fn run(&mut self, command: String) -> &mut Self {
        self.commands.push(command);
        self
    }

    pub fn cleanup(&mut self, command: String) -> &mut Self {
        self.on_failure.push(command);
        self
    }

    /// A command writing `bytes` byte for byte to the new file `dest` (which must not exist).
    pub fn write_bytes(&mut self, dest: &str, bytes: &[u8], nonce: &str) -> Result<&mut Self> {
        if bytes.len() <= INLINE_PAYLOAD_MAX && !bytes.contains(&0) {
            // printf is a shell builtin: no process per file.
            self.commands.push(format!("printf '%s' {} > {}", quote_bytes(bytes)?, q(dest)?));
        } else {
            let end = format!("HK_PAYLOAD_{nonce}");
            self.commands.push(format!("base64 -d <<'{end}' > {}", q(dest)?));
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            let mut doc = String::with_capacity(encoded.len() + encoded.len() / 76 + end.len() + 2);
            for line in encoded.as_bytes().chunks(76) {
                doc.push_str(std::str::from_utf8(line).unwrap_or_default());
                doc.push('\n');
            }
            doc.push_str(&end);
            doc.push('\n');
            self.heredoc = Some(doc);
        }
        Ok(self)
    }
}
