//! The apply script builder: one POSIX sh script per host, one function per step, one event line per
//! step on stdout (`<nonce> ok <n>` / `<nonce> failed <n>`), stopping at the first failure.

use anyhow::Result;
use base64::Engine as _;

use crate::quote::{q, quote_bytes};

/// Payloads larger than this, or holding NUL bytes, travel as base64 in a here-document.
const INLINE_PAYLOAD_MAX: usize = 256 * 1024;

/// The file helper (perl): it reads requests of three NUL-ended fields (op, a, b) on stdin and
/// answers each with one line. `mv`, `ln`, `link` (a hard link), `mkdir`, `chmod`, `chown`, `rm`,
/// `rmtree` (as `rm -rf`, never following a link), `copy` and `sleep` answer `ok`
/// or the coreutils command's message; `now` the UTC time; `conns PORT_HEX` the established TCP
/// connections on that local port; `sync TOKEN` the token (a script's first request, so a reply a
/// killed script left unread is never taken for its own); `mktemp DIR` `ok` and a new private
/// folder in DIR (which `rmtree` removes at the script's end); `units "PROPS UNIT…" TOKEN` the
/// units' properties as `systemctl show` prints them, then `TOKEN ok` (or only `TOKEN no`: the
/// caller runs `systemctl` then) — see [`unit_properties`]; `lstat FLAGS ""` then paths, each
/// NUL-ended, and an empty one: what `stat` prints of them (see [`helper_lstat`]), written to the
/// session's channel, then `ok` (or only `no`: the caller runs `stat` then); `tree DIR OUT` the
/// listing of a release folder (see `tree.rs`) in the file OUT, or (OUT empty) NUL-ended on the
/// session's channel, then `ok` (or `no`); `http "IPV4 PORT PATH OUT" HEADERS` a
/// GET (HEADERS: `Name: value` lines), the answer's head and body in `OUT.head` and `OUT.body` as
/// `curl -D -o` write them, and `ok CODE`, or `000 what went wrong`. When its input ends it
/// removes what it was given: its fifos, or the folder holding them (or a script's temp files).
const FILE_HELPER: &str = r#"
    $| = 1; $/ = "\0";
    # The session channel (its stdout), where `lstat` writes what it read: given by the shell.
    my ($chan, $statx);
    if ($ENV{HK_CHANNEL}) { open($chan, ">&=", $ENV{HK_CHANNEL}) or undef $chan; delete $ENV{HK_CHANNEL}; }
    my $clock = @ARGV && -p $ARGV[0] ? $ARGV[0] : "$ARGV[0]/req";
    # statx(2) gives whole nanoseconds, as stat(1) prints them (the stat of perl has whole seconds,
    # Time::HiRes a double): its number is that of the architecture, read from the ELF header of perl.
    sub statx_nr {
      return $statx if defined $statx;
      $statx = 0;
      return 0 unless length(pack("j", 0)) == 8 && open(my $e, "<", "/proc/self/exe");
      binmode($e);
      return 0 unless read($e, my $h, 20) == 20;
      my ($class, $data) = unpack("x4 C C", $h);
      my $nr = {62 => 332, 183 => 291, 243 => 291, 258 => 291, 21 => 383, 22 => 379}->{unpack($data == 2 ? "x18 n" : "x18 v", $h)};
      my ($root, $buf) = ("/", "\0" x 256);
      $statx = $nr if $class == 2 && $nr && syscall($nr, -100, $root, 0x100, 0x7ff, $buf) == 0;
      $statx;
    }
    # What find -printf lists of a release folder (see script/tree.rs), byte-sorted: never following a link.
    sub tree_lines {
      my ($root, $rel, $acc) = @_;
      opendir(my $d, length $rel ? "$root/$rel" : $root) or return;
      for my $e (readdir($d)) {
        next if $e eq "." || $e eq "..";
        my $r = length $rel ? "$rel/$e" : $e;
        my @st = lstat("$root/$r") or next;
        if (-l _) { my $t = readlink("$root/$r"); push(@$acc, "l\t$r\t$t") if defined $t; }
        elsif (-f _) { push(@$acc, "f\t$r\t$st[7]"); }
        elsif (-d _) { tree_lines($root, $r, $acc); }
      }
    }
    sub lstat_line {
      my ($p, $flags, $name) = @_;
      my $buf = "\0" x 256;
      return ("") if syscall($statx, -100, $p, 0x100, 0x7ff, $buf) != 0;
      my ($uid, $gid, $mode, $ino, $size, $cs, $cn, $ms) = unpack("x20 L L S x2 Q Q x48 q L x4 q", $buf);
      my $t = $mode & 0170000;
      my $kind = $t == 0100000 ? ($size ? "regular file" : "regular empty file") : $t == 040000 ? "directory"
        : $t == 0120000 ? "symbolic link" : $t == 010000 ? "fifo" : $t == 0140000 ? "socket"
        : $t == 020000 ? "character special file" : $t == 060000 ? "block special file" : "weird file";
      my $n = $name // $p;
      if ($t == 0120000) { my $to = readlink($p); $n .= " -> $to" if defined $to; }
      return ("$kind\t$ms\t$n\n", $kind) if $flags =~ /l/;
      my ($u, $g) = $flags =~ /n/ ? (scalar(getpwuid($uid)) // "UNKNOWN", scalar(getgrgid($gid)) // "UNKNOWN") : ("-", "-");
      (join("\0", $name // $p, $kind, sprintf("%o", $mode & 07777), $u, $g, $uid, $gid, $size, $ino, sprintf("%d.%09d", $cs, $cn), $n) . "\0", $kind, $cs * 1000000000 + $cn);
    }
    sub rmtree { my $p = shift; if (!-l $p && -d _) { opendir(my $d, $p) or return 0; my @e = grep { $_ ne "." && $_ ne ".." } readdir($d); closedir($d); rmtree("$p/$_") or return 0 for @e; return rmdir($p); } unlink($p) || !(-e $p || -l $p); }
    sub http_get {
      my ($host, $port, $path, $out) = split(" ", shift, 4);
      my $extra = shift;
      my @ip = split(/\./, $host);
      return "000 not an IPv4 address: $host" unless @ip == 4 && !grep { !/^\d+$/ || $_ > 255 } @ip;
      local $SIG{PIPE} = "IGNORE";
      my ($head, $body) = ("", "");
      my $got = timed(5, sub {
        socket(my $s, 2, 1, 6) or die "socket: $!\n";
        connect($s, pack("S n C4 x8", 2, $port, @ip)) or die "failed to connect to $host port $port: $!\n";
        my $req = "GET $path HTTP/1.1\r\n" . ($extra =~ /^host:/mi ? "" : "Host: $host:$port\r\n")
          . "User-Agent: hk\r\nAccept: */*\r\nConnection: close\r\n" . join("", map { "$_\r\n" } grep { length } split(/\n/, $extra)) . "\r\n";
        while (length $req) { my $n = syswrite($s, $req) or die "sending: $!\n"; substr($req, 0, $n, ""); }
        my $all = "";
        # Read to the end of the answer: its length, its last chunk, or the connection closed.
        while (1) {
          my $n = sysread($s, $all, 65536, length $all);
          die "reading: $!\n" unless defined $n;
          last unless $n;
          my $at = index($all, "\r\n\r\n");
          next if $at < 0;
          my ($h, $b) = (substr($all, 0, $at), substr($all, $at + 4));
          last if $h =~ /^HTTP\/\S+ (?:1\d\d|204|304)/;
          last if $h =~ /^content-length:[ \t]*(\d+)/mi && length($b) >= $1;
          last if $h =~ /^transfer-encoding:[ \t]*chunked/mi && $b =~ /(?:^|\r\n)0\r\n(?:[^\r\n]+\r\n)*\r\n\z/;
        }
        ($head, $body) = split(/\r\n\r\n/, $all, 2);
        $body //= "";
        $head .= "\r\n\r\n";
        1;
      });
      unless ($got) { (my $e = $@) =~ s/\s+\z//; $e =~ s/\n/ /g; return "000 $e"; }
      return "000 not an HTTP answer" unless $head =~ /^HTTP\/\S+ (\d{3})/;
      my $code = $1;
      if ($head =~ /^transfer-encoding:[ \t]*chunked[ \t]*\r?$/mi) {
        my $d = "";
        while ($body =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) { my $n = hex $1; last if $n == 0; $d .= substr($body, 0, $n, ""); $body =~ s/^\r\n//; }
        $body = $d;
      }
      for (["head", $head], ["body", $body]) { open(my $f, ">", "$out.$$_[0]") or return "000 $out.$$_[0]: $!"; binmode($f); print $f $$_[1]; close($f); }
      "ok $code";
    }
    sub timed { my ($secs, $work) = @_; my $r = eval { local $SIG{ALRM} = sub { die "timed out after $secs s\n" }; alarm $secs; my $v = $work->(); alarm 0; $v }; alarm 0; $r }
    sub al { my ($x, $n) = @_; ($x + $n - 1) & ~($n - 1) }
    sub dstr { my ($b, $s) = @_; $$b .= "\0" x (al(length $$b, 4) - length $$b); $$b .= pack("V", length $s) . "$s\0"; }
    sub dbus_get {
      my ($serial, $path, $prop) = @_;
      my $f = "";
      for ([1, "o", $path], [6, "s", "org.freedesktop.systemd1"], [2, "s", "org.freedesktop.DBus.Properties"], [3, "s", "Get"], [8, "g", "ss"]) {
        my ($code, $sig, $val) = @$_;
        $f .= "\0" x (al(length $f, 8) - length $f);
        $f .= pack("CC", $code, 1) . "$sig\0";
        if ($sig eq "g") { $f .= pack("C", length $val) . "$val\0"; } else { dstr(\$f, $val); }
      }
      my $body = "";
      dstr(\$body, "org.freedesktop.systemd1.Unit");
      dstr(\$body, $prop);
      my $m = pack("aCCCVVV", "l", 1, 0, 1, length $body, $serial, length $f) . $f;
      $m . ("\0" x (al(length $m, 8) - length $m)) . $body;
    }
    our ($dbus_s, $dbus_buf, $dbus_serial) = (undef, "", 0);
    sub dbus_put { my ($s, $d) = @_; while (length $d) { my $n = syswrite($s, $d) or return 0; substr($d, 0, $n, ""); } 1 }
    sub dbus_connect {
      socket(my $s, 1, 1, 0) or return;
      connect($s, pack("S", 1) . "/run/systemd/private\0") or return;
      my $buf = "";
      dbus_put($s, "\0AUTH EXTERNAL " . unpack("H*", $<) . "\r\nBEGIN\r\n") or return;
      while ($buf !~ /\r\n/) { sysread($s, $buf, 4096, length $buf) or return; }
      return unless $buf =~ /^OK \S+\r\n\z/;
      ($s, "");
    }
    sub dbus_ask {
      my ($s, $b, $names, $props) = @_;
      my $want = sub { my $n = shift; while (length($$b) < $n) { sysread($s, $$b, 65536, length $$b) or return 0; } 1 };
      my ($calls, @order, %asked) = ("");
      for my $u (@$names) {
        (my $path = $u) =~ s/([^A-Za-z0-9])/sprintf("_%02x", ord $1)/ge;
        for my $prop (@$props) {
          my $n = ++$dbus_serial;
          push @order, $n;
          $asked{$n} = 1;
          $calls .= dbus_get($n, "/org/freedesktop/systemd1/unit/$path", $prop);
        }
      }
      dbus_put($s, $calls) or return;
      my %got;
      while (keys(%got) < @order) {
        $want->(16) or return;
        my ($e, $type, $blen, $flen) = unpack("aCx2Vx4V", $$b);
        return if $e ne "l";
        my $h = al(16 + $flen, 8);
        $want->($h + $blen) or return;
        my $m = substr($$b, 0, $h + $blen, "");
        next if $type == 4;
        return if $type != 2;
        my ($p, $rs) = (16);
        while ($p < 16 + $flen) {
          $p = al($p, 8);
          my ($code, $sl) = unpack("CC", substr($m, $p, 2));
          my $sig = substr($m, $p + 2, $sl);
          $p += 3 + $sl;
          if ($sig eq "u") { $p = al($p, 4); $rs = unpack("V", substr($m, $p, 4)) if $code == 5; $p += 4; }
          elsif ($sig eq "s" || $sig eq "o") { $p = al($p, 4); $p += 5 + unpack("V", substr($m, $p, 4)); }
          elsif ($sig eq "g") { $p += 2 + unpack("C", substr($m, $p, 1)); }
          else { return; }
        }
        return unless defined $rs && substr($m, $h, 3) eq "\1s\0";
        next unless $asked{$rs};
        $got{$rs} = substr($m, $h + 8, unpack("V", substr($m, $h + 4, 4)));
      }
      map { $got{$_} } @order;
    }
    sub dbus_units {
      my ($props, @names) = split(" ", shift);
      my @props = split(/,/, $props);
      return undef if $< != 0 || !@names || !@props || grep { !/^[A-Za-z0-9:_.\@-]+$/ } @names, @props;
      local $SIG{PIPE} = "IGNORE";
      # One connection to systemd serves every reading of the session: a new one costs systemd more
      # than the question (on a slow host just after a login, a tenth of a second each). A kept one
      # that fails (systemd closed it) is replaced once; one a timeout cut short is never kept.
      for my $kept (defined $dbus_s ? (1, 0) : (0)) {
        my ($s, $buf) = $kept ? ($dbus_s, $dbus_buf) : dbus_connect();
        undef $dbus_s;
        return undef unless $s;
        my @vals = dbus_ask($s, \$buf, \@names, \@props);
        next unless @vals;
        ($dbus_s, $dbus_buf) = ($s, $buf);
        my ($out, $i) = ("", 0);
        for my $u (@names) { $out .= "$_=" . $vals[$i++] . "\n" for @props; $out .= "\n"; }
        return $out;
      }
      undef;
    }
    while (defined(my $op = <STDIN>)) {
      my $a = <STDIN>; my $b = <STDIN>; chomp($op, $a, $b);
      if ($op eq "sync") { print("$a\n"); next; }
      if ($op eq "tree") {
        my @lines;
        tree_lines($a, "", \@lines) if -d $a && !-l $a;
        my $list = join("\n", sort @lines);
        if (length $b) {
          my $f;
          print(open($f, ">", $b) && (print $f $list) && close($f) ? "ok\n" : "$b: $!\n");
        } elsif ($chan) {
          $list .= "\0";
          while (length $list) { my $n = syswrite($chan, $list) or last; substr($list, 0, $n, ""); }
          print("ok\n");
        } else { print("no\n"); }
        next;
      }
      if ($op eq "lstat") {
        my @paths;
        while (defined(my $p = <STDIN>)) { chomp $p; last unless length $p; push @paths, $p; }
        unless ($chan && statx_nr()) { print("no\n"); next; }
        my ($out, $settled) = ("", 0);
        for (@paths) {
          my ($line, $kind, $ns) = lstat_line($_, $a);
          $out .= $line;
          # When a file last changed, plus the margin engine/hash_cache.rs keeps from the clock.
          if ($kind =~ /^regular/) {
            my ($frac, $g) = ($ns % 1000000000, 1000000000);
            if ($frac) { $g = 1; $g *= 10 while $frac % ($g * 10) == 0; }
            my $m = 2 * $g < 10000000 ? 10000000 : 2 * $g;
            $settled = $ns + $m if $ns + $m > $settled;
          }
        }
        # The clock, as the ctime of a change made now: what the kernel dates the next change of a
        # file by. A file changed just before stays unhashable by the cache until the clock is past
        # its margin: up to 60 ms are waited for that (a process of its own took as long).
        if ($a =~ /c/ && utime(undef, undef, $clock)) {
          my ($line, $kind, $now) = lstat_line($clock, $a, "/proc/self/");
          if ($now < $settled && $settled - $now <= 60000000) {
            select(undef, undef, undef, ($settled - $now) / 1e9 + 0.001);
            ($line) = lstat_line($clock, $a, "/proc/self/") if utime(undef, undef, $clock);
          }
          $out .= $line;
        }
        while (length $out) { my $n = syswrite($chan, $out) or last; substr($out, 0, $n, ""); }
        print("ok\n");
        next;
      }
      if ($op eq "http") { print(http_get($a, $b), "\n"); next; }
      if ($op eq "units") {
        my $o = timed(10, sub { dbus_units($a) });
        print(defined $o ? "$o$b ok\n" : "$b no\n");
        next;
      }
      if ($op eq "mktemp") {
        my $made;
        for (1 .. 100) {
          my $p = sprintf("%s/hk-apply.%08x", $a, int(rand(4294967296)));
          if (mkdir($p, 0700)) { $made = $p; last; }
          last unless -e $p;
        }
        print(defined $made ? "ok $made\n" : "mktemp: cannot create a folder in \x27$a\x27: $!\n");
        next;
      }
      if ($op eq "copy") {
        my ($ok, $in, $out, $buf, $n) = (0);
        if (open($in, "<", $a) && open($out, ">", $b)) {
          binmode($in); binmode($out);
          my @st = stat($in);
          $ok = 1;
          while ($ok && ($n = sysread($in, $buf, 1 << 20))) { $ok = defined(syswrite($out, $buf)); }
          $ok = $ok && defined($n) && close($out);
          chown($st[4], $st[5], $b) if $ok;
          $ok = $ok && chmod($st[2] & 07777, $b) && utime($st[8], $st[9], $b);
        }
        print($ok ? "ok\n" : "cp: cannot copy \x27$a\x27 to \x27$b\x27: $!\n");
        next;
      }
      if ($op eq "now") {
        my $t = eval { require Time::HiRes; Time::HiRes::time() } // time;
        my @g = gmtime(int $t);
        printf("%04d-%02d-%02dT%02d:%02d:%02d.%09dZ\n", $g[5] + 1900, $g[4] + 1, @g[3, 2, 1, 0], ($t - int $t) * 1e9);
        next;
      }
      if ($op eq "conns") {
        local $/ = "\n";
        my $n = 0;
        for my $table ("/proc/net/tcp", "/proc/net/tcp6") {
          open(my $fh, "<", $table) or next;
          <$fh>;
          while (my $line = <$fh>) {
            my @w = split(" ", $line);
            my @local = split(/:/, $w[1]);
            $n++ if $w[3] eq "01" && $local[-1] eq $a;
          }
        }
        print("$n\n");
        next;
      }
      my ($u, $g) = split(/:/, $a, 2);
      my $ok = $op eq "mv" ? rename($a, $b)
        : $op eq "ln" ? symlink($a, $b)
        : $op eq "mkdir" ? (mkdir($a, 0700) && chmod(oct($b), $a))
        : $op eq "chmod" ? chmod(oct($a), $b)
        : $op eq "chown" ? chown(length($u) ? $u : -1, defined($g) && length($g) ? $g : -1, $b)
        : $op eq "rm" ? (unlink($a) || !(-e $a || -l $a))
        : $op eq "rmtree" ? rmtree($a)
        : $op eq "link" ? ((unlink($b) || 1) && link($a, $b))
        : $op eq "sleep" ? (select(undef, undef, undef, $a), 1) : 0;
      my $what = $op eq "mv" ? "mv: cannot move \x27$a\x27 to \x27$b\x27"
        : $op eq "ln" ? "ln: failed to create symbolic link \x27$b\x27"
        : $op eq "chmod" ? "chmod: changing permissions of \x27$b\x27"
        : $op eq "chown" ? "chown: changing ownership of \x27$b\x27"
        : $op eq "rm" || $op eq "rmtree" ? "rm: cannot remove \x27$a\x27"
        : $op eq "link" ? "ln: failed to create hard link \x27$b\x27"
        : "mkdir: cannot create directory \x27$a\x27";
      print(($ok ? "ok" : "$what: $!") . "\n");
    }
    rmtree($_) for @ARGV;"#;

/// Top-level commands of a session's resident shell (see `transport/ssh.rs`): one file helper for
/// every apply script of the session, on fds 3 and 4, so an apply starts no helper (nor `mktemp`,
/// nor `mkfifo`) of its own. fd 3 is opened read-write, so a helper that died makes the next
/// request read an end of file instead of killing the script with SIGPIPE.
pub static SESSION_FILE_HELPER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    // Its fifos go in the user's private runtime folder, named by the shell's pid (no `mktemp`:
    // a process less), or else in a new temp folder.
    format!(
        r#"if [ -z "${{HK_NO_PERL:-}}" ] && command -v perl >/dev/null 2>&1; then
  hk_sp= hk_sgone=
  if [ -n "${{XDG_RUNTIME_DIR:-}}" ] && [ -d "$XDG_RUNTIME_DIR" ] && [ -O "$XDG_RUNTIME_DIR" ] && mkfifo -m 0600 "$XDG_RUNTIME_DIR/hk-session.$$.req" "$XDG_RUNTIME_DIR/hk-session.$$.resp" 2>/dev/null; then
    hk_sp=$XDG_RUNTIME_DIR/hk-session.$$. hk_sgone=1
  elif hk_sdir=$(mktemp -d "${{TMPDIR:-/tmp}}/hk-session.XXXXXX"); then
    if mkfifo "$hk_sdir/req" "$hk_sdir/resp"; then hk_sp=$hk_sdir/; else rmdir -- "$hk_sdir"; fi
  fi
  if [ -n "$hk_sp" ]; then
    if [ -n "$hk_sgone" ]; then set -- "${{hk_sp}}req" "${{hk_sp}}resp"; else set -- "$hk_sdir"; fi
    # fd 5, where the resident shell frames its setup with it, is the session's channel.
    hk_chan=; {{ true >&5; }} 2>/dev/null && hk_chan=5
    HK_CHANNEL=$hk_chan perl -e '{FILE_HELPER}' "$@" < "${{hk_sp}}req" > "${{hk_sp}}resp" 2>/dev/null &
    exec 3<>"${{hk_sp}}req" 4<"${{hk_sp}}resp" && hk_session_fs=1
    set --
    unset hk_chan
  fi
fi"#
    )
});

/// Shell printing the properties `props` (comma-separated) of the units `names` as `systemctl show
/// --property=… -- UNIT…` does: a `NAME=value` line each, a blank line after each unit. Where the
/// resident shell has the session's file helper and runs as root, the helper asks systemd itself
/// over its private socket (D-Bus), so the reading starts no process (`systemctl` costs a tenth of
/// a second on a slow host), and a last line `#helper` says so; `systemctl` otherwise. It sets no
/// variable it does not unset: a probe runs it in place.
pub fn unit_properties(props: &str, names: &[String], nonce: &str) -> Result<String> {
    let words: Vec<String> = names.iter().map(|n| q(n)).collect::<Result<_>>()?;
    unit_query(props, &q(&format!("{props} {}", names.join(" ")))?, &words.join(" "), nonce)
}

/// [`unit_properties`] of units named by shell words: `request` is one word expanding to `PROPS`
/// and the names, space-separated (it may hold `$var`); `words` the names as `systemctl`'s arguments.
pub fn unit_query(props: &str, request: &str, words: &str, nonce: &str) -> Result<String> {
    let token = q(nonce)?;
    let props = q(props)?;
    Ok(format!(
        r#"hk_uo= hk_ul=
if [ -n "${{hk_session_fs:-}}" ] && printf 'sync\0%s\0\0units\0%s\0%s\0' {token} {request} {token} >&3 2>/dev/null; then
  while IFS= read -r hk_ul <&4; do [ "$hk_ul" = {token} ] && break; done
  while IFS= read -r hk_ul <&4; do
    case $hk_ul in {token}" ok") hk_ul=ok; break;; {token}" no") break;; esac
    hk_uo="$hk_uo$hk_ul
"
  done
fi
if [ "$hk_ul" = ok ]; then printf '%s#helper\n' "$hk_uo"; else command -v systemctl >/dev/null 2>&1 && systemctl show --property={props} -- {words} 2>/dev/null || :; fi
unset hk_uo hk_ul
"#
    ))
}

/// Shell printing what `stat` prints of the paths `words` (shell words: quoted paths or globs;
/// missing ones skipped), in the format `flags` names — `l`: `%F\t%Y\t%N\n` (see
/// `stat_list.rs`); otherwise the probe's (`probe.rs`), with owner and group names when `n`, and
/// the host clock last when `c`. The session's file helper writes it straight to the channel (no
/// process); `fallback`, the `stat` command, runs where it cannot. `$HK` must be set.
pub fn helper_lstat(flags: &str, words: &str, fallback: &str) -> String {
    helper_or(&format!("printf 'lstat\\0{flags}\\0\\0' >&3 && printf '%s\\0' {words} '' >&3"), fallback)
}

/// Shell asking the session's file helper with `request` (printf commands writing to fd 3) for
/// something it writes to the channel, after a `sync` (so no reply a killed script left unread is
/// taken); `fallback` where there is no helper or it answers other than `ok`. It sets no variable it
/// does not unset: a probe runs it in place. `$HK` must be set.
pub fn helper_or(request: &str, fallback: &str) -> String {
    format!(
        r#"hk_sr=
if [ -n "${{hk_session_fs:-}}" ] && printf 'sync\0%s\0\0' "$HK" >&3 2>/dev/null && {request}; then
  while IFS= read -r hk_sr <&4; do [ "$hk_sr" = "$HK" ] && break; done
  IFS= read -r hk_sr <&4 || hk_sr=
fi
if [ "$hk_sr" != ok ]; then
{fallback}
fi
unset hk_sr
"#
    )
}

/// A request to the file helper on fds 3 and 4; its answer in `hk_r`, its error on stderr.
const HK_OP: &str = r#"hk_op() {
  printf '%s\0%s\0%s\0' "$1" "$2" "$3" >&3 && IFS= read -r hk_r <&4 || { printf 'hk: the file helper stopped\n' >&2; return 1; }
  [ "$hk_r" = ok ] || { printf '%s\n' "$hk_r" >&2; return 1; }
}"#;

/// For scripts other than an apply's (which has all of `FS_OPS`): `hk_dir_new PATH MODE` (a new
/// directory with exactly MODE; fails when it exists), `hk_dir_move FROM TO` (rename a directory)
/// and `hk_dir_drop PATH` (remove a file or a folder tree, as `rm -rf`). Through the session's file helper when the
/// resident shell has one (see [`SESSION_FILE_HELPER`]), so they start no process; the coreutils
/// commands otherwise. Defined once however many parts of a script ask; `$HK` must be set.
pub static DIR_OPS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        r#"if [ -z "${{hk_dir_ops:-}}" ]; then
hk_dir_ops=1 hk_shared=
{HK_OP}
if [ -n "${{hk_session_fs:-}}" ] && printf 'sync\0%s\0\0' "$HK" >&3; then
  while IFS= read -r hk_r <&4; do [ "$hk_r" = "$HK" ] && {{ hk_shared=1; break; }}; done
fi
if [ -n "$hk_shared" ]; then
  hk_dir_new() {{ hk_op mkdir "$1" "$2"; }}
  hk_dir_move() {{ hk_op mv "$1" "$2"; }}
  hk_dir_drop() {{ hk_op rmtree "$1" ""; }}
else
  hk_dir_new() {{ mkdir -m "$2" -- "$1"; }}
  hk_dir_move() {{ mv -T -- "$1" "$2"; }}
  hk_dir_drop() {{ rm -rf -- "$1"; }}
fi
fi
"#
    )
});

/// `hk_mv FROM TO` (rename, as `mv -fT`), `hk_ln TARGET PATH` (a new symlink),
/// `hk_mkdir PATH MODE` (a new directory with exactly MODE), `hk_chmod MODE PATH` (an octal mode) and
/// `hk_chown UID:GID PATH` (numeric ids, either may be empty), `hk_rm FILE` (as `rm -f`), `hk_rmtree
/// PATH` (as `rm -rf`), `hk_link FROM TO` (a hard link, as `ln -f`), `hk_http IPV4 PORT PATH
/// HEADERS` (a GET, only with perl: `hk_code` the status, the answer in `$hk_tmp/ready.head` and
/// `.body`),
/// `hk_sleep SECONDS`, `hk_cp FROM TO` (a copy keeping mode, owner and times, as `cp -p`); `hk_now` sets `hk_when` to the UTC time and `hk_conns PORT_HEX` sets `hk_n`
/// to the established TCP connections on that local port. They go to a file helper where the host
/// has perl, so they cost no process each: the session's (`SESSION_FILE_HELPER`), which also makes
/// the script's temp folder `hk_tmp`, or else one of the script's own, which removes that folder
/// when the script closes it. Otherwise they are the coreutils commands (also when `HK_NO_PERL` is
/// set on the host).
static FS_OPS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        r#"{HK_OP}
# The session's helper, in step with this script first, makes its temp folder.
hk_session() {{
  [ -n "${{hk_session_fs:-}}" ] && printf 'sync\0%s\0\0' "$HK" >&3 || return 1
  while IFS= read -r hk_r <&4; do
    [ "$hk_r" = "$HK" ] || continue
    printf 'mktemp\0%s\0\0' "${{TMPDIR:-/tmp}}" >&3 && IFS= read -r hk_r <&4 || return 1
    case $hk_r in "ok "?*) hk_tmp=${{hk_r#ok }}; return 0;; esac
    return 1
  done
  return 1
}}
hk_fs= hk_tmp= hk_shared=
if hk_session; then hk_fs=perl hk_shared=1
else
  hk_tmp=$(mktemp -d "${{TMPDIR:-/tmp}}/hk-apply.XXXXXX")
  if [ -z "${{HK_NO_PERL:-}}" ] && command -v perl >/dev/null 2>&1 && mkfifo "$hk_tmp/req" "$hk_tmp/resp" 2>/dev/null; then
    # The shell opens the fifos for perl, so a perl that fails to start ends the replies (EOF)
    # instead of leaving this script waiting on a fifo.
    perl -e '{FILE_HELPER}' "$hk_tmp" < "$hk_tmp/req" > "$hk_tmp/resp" 2>/dev/null &
    exec 3>"$hk_tmp/req" 4<"$hk_tmp/resp"
    hk_fs=perl
  fi
fi
hk_err="$hk_tmp/err"
# The session's helper removes the temp folder when asked; a script's own when the script closes
# it; `rm` is for a script without one.
trap '[ -z "$hk_shared" ] || hk_op rmtree "$hk_tmp" "" 2>/dev/null || :; exec 3>&- 4<&- 2>/dev/null; wait; [ ! -d "$hk_tmp" ] || rm -rf "$hk_tmp"' EXIT
if [ "$hk_fs" = perl ]; then
  hk_mv() {{ hk_op mv "$1" "$2"; }}
  hk_ln() {{ hk_op ln "$1" "$2"; }}
  hk_mkdir() {{ hk_op mkdir "$1" "$2"; }}
  hk_chmod() {{ hk_op chmod "$1" "$2"; }}
  hk_chown() {{ hk_op chown "$1" "$2"; }}
  hk_rm() {{ hk_op rm "$1" ""; }}
  hk_rmtree() {{ hk_op rmtree "$1" ""; }}
  hk_link() {{ hk_op link "$1" "$2"; }}
  hk_http() {{ printf 'http\0%s %s %s %s\0%s\0' "$1" "$2" "$3" "$hk_tmp/ready" "$4" >&3 && IFS= read -r hk_code <&4 || hk_code='000 the file helper stopped'; hk_code=${{hk_code#ok }}; }}
  hk_sleep() {{ hk_op sleep "$1" ""; }}
  hk_cp() {{ hk_op copy "$1" "$2"; }}
  hk_now() {{ printf 'now\0\0\0' >&3 && IFS= read -r hk_when <&4 || hk_when=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ); }}
  hk_conns() {{ printf 'conns\0%s\0\0' "$1" >&3 && IFS= read -r hk_n <&4; }}
else
  hk_mv() {{ mv -fT -- "$1" "$2"; }}
  hk_ln() {{ ln -s -- "$1" "$2"; }}
  hk_mkdir() {{ mkdir -m "$2" -- "$1"; }}
  hk_chmod() {{ chmod "$1" -- "$2"; }}
  hk_chown() {{ chown "$1" -- "$2"; }}
  hk_rm() {{ rm -f -- "$1"; }}
  hk_rmtree() {{ rm -rf -- "$1"; }}
  hk_link() {{ ln -f -- "$1" "$2"; }}
  hk_sleep() {{ sleep "$1"; }}
  hk_cp() {{ cp -p -- "$1" "$2"; }}
  hk_now() {{ hk_when=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ); }}
  hk_conns() {{
    hk_n=$(awk -v p="$1" 'FNR > 1 && $4 == "01" {{ n = split($2, a, ":"); if (a[n] == p) c++ }} END {{ print c + 0 }}' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
  }}
fi
"#
    )
});

/// Rename `from` over `to` atomically (like `mv -fT`).
pub fn rename(from: &str, to: &str) -> Result<String> {
    Ok(format!("hk_mv {} {}", q(from)?, q(to)?))
}

/// Create the symlink `path` pointing at `target`.
pub fn symlink(target: &str, path: &str) -> Result<String> {
    Ok(format!("hk_ln {} {}", q(target)?, q(path)?))
}

/// Set `path`'s mode (octal digits, as `chmod 0644`).
pub fn chmod(mode: &str, path: &str) -> Result<String> {
    if mode.is_empty() || mode.len() > 5 || !mode.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Ok(format!("chmod {} -- {}", q(mode)?, q(path)?));
    }
    Ok(format!("hk_chmod {} {}", q(mode)?, q(path)?))
}

/// Give `path` to `owner` and/or `group`: numeric ids through the helper, names through `chown`.
pub fn chown(owner: &str, group: &str, path: &str) -> Result<String> {
    let numeric = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let spec = if group.is_empty() { owner.to_string() } else { format!("{owner}:{group}") };
    if numeric(owner) && numeric(group) && !(owner.is_empty() && group.is_empty()) {
        Ok(format!("hk_chown {} {}", q(&format!("{owner}:{group}"))?, q(path)?))
    } else {
        Ok(format!("chown {} -- {}", q(&spec)?, q(path)?))
    }
}

/// Remove the file `path` (as `rm -f`).
pub fn remove_file(path: &str) -> Result<String> {
    Ok(format!("hk_rm {}", q(path)?))
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
        text.push_str(&FS_OPS);
        text.push_str(concat!(
            "hk_step() {\n",
            "  if \"$1\" 2>|\"$hk_err\"; then printf '%s ok %s\\n' \"$HK\" \"$2\"\n",
            "  else cat \"$hk_err\" >&2; printf '%s failed %s\\n' \"$HK\" \"$2\"; exit 1; fi\n",
            "}\n"
        ));
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

    /// Commands run once after the last step succeeded, as the script's last: in its own shell (a
    /// subshell would cost a process), with `-e` off, so they may set any variable.
    pub fn epilogue(&mut self, commands: &str) {
        self.text.push_str("set +e\n");
        self.text.push_str(commands);
        if !commands.ends_with('\n') {
            self.text.push('\n');
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;

    /// The helper's answers to `requests` (op, a, b each), run here with the system's perl.
    fn ask_helper(requests: &[(&str, &str, &str)]) -> Vec<String> {
        let mut child = std::process::Command::new("perl")
            .arg("-e")
            .arg(FILE_HELPER)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("perl starts");
        let mut input = child.stdin.take().expect("stdin");
        for (op, a, b) in requests {
            write!(input, "{op}\0{a}\0{b}\0").expect("request");
        }
        drop(input);
        let out = child.wait_with_output().expect("helper ends");
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
    }

    #[test]
    fn helper_removes_trees_without_following_links_and_makes_hard_links() {
        let dir = std::env::temp_dir().join(format!("hk-helper-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (tree, outside) = (dir.join("tree"), dir.join("outside"));
        std::fs::create_dir_all(tree.join("a/b")).expect("tree");
        std::fs::create_dir_all(&outside).expect("outside");
        std::fs::write(tree.join("a/b/f"), "x").expect("file");
        std::fs::write(outside.join("keep"), "k").expect("kept file");
        std::os::unix::fs::symlink(&outside, tree.join("a/to-outside")).expect("link");
        let (from, to) = (dir.join("from"), dir.join("to"));
        std::fs::write(&from, "content").expect("from");
        std::fs::write(&to, "old").expect("to");
        let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
        let answers = ask_helper(&[
            ("rmtree", &path(&tree), ""),
            ("rmtree", &path(&dir.join("missing")), ""),
            ("link", &path(&from), &path(&to)),
        ]);
        assert_eq!(answers, ["ok", "ok", "ok"]);
        assert!(!tree.exists(), "the tree is still there");
        assert!(outside.join("keep").exists(), "a link inside the tree was followed");
        let meta = |p: &std::path::Path| std::fs::metadata(p).expect("stat").ino();
        assert_eq!(meta(&from), meta(&to), "not a hard link");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A GET through the helper: the request's lines as given, a chunked answer decoded into the
    /// body file, the head as curl writes it, and a refused connection said as such.
    #[test]
    fn helper_gets_over_http() {
        use std::io::{BufRead, BufReader, Read};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let port = listener.local_addr().expect("address").port();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request = Vec::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).expect("line");
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                request.push(line.trim_end().to_string());
            }
            let answer = "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\nX-Port: 7\r\n\r\n\
                          5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
            stream.write_all(answer.as_bytes()).expect("answer");
            // The connection stays open: the helper stops at the answer's last chunk.
            let _ = reader.read_to_end(&mut Vec::new());
            request
        });
        let dir = std::env::temp_dir().join(format!("hk-http-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let out = dir.join("ready").to_string_lossy().into_owned();
        let spec = format!("127.0.0.1 {port} /up?x=1 {out}");
        let answers = ask_helper(&[("http", &spec, "Host: app.test\nX-Try: 1")]);
        assert_eq!(answers, ["ok 503"]);
        let request = server.join().expect("server");
        assert_eq!(request[0], "GET /up?x=1 HTTP/1.1");
        assert!(request.contains(&"Host: app.test".to_string()), "{request:?}");
        assert!(request.contains(&"X-Try: 1".to_string()), "{request:?}");
        assert_eq!(std::fs::read_to_string(dir.join("ready.body")).expect("body"), "hello world");
        let head = std::fs::read_to_string(dir.join("ready.head")).expect("head");
        assert!(
            head.starts_with("HTTP/1.1 503") && head.contains("X-Port: 7\r\n") && head.ends_with("\r\n\r\n"),
            "{head:?}"
        );
        // Nothing listens there any more.
        let refused = ask_helper(&[("http", &spec, ""), ("sleep", "0", "")]);
        assert_eq!(refused[1..], ["ok"], "one line for each answer");
        assert!(
            refused[0].starts_with(&format!("000 failed to connect to 127.0.0.1 port {port}")),
            "{refused:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Without systemd's private socket (or with a name systemd would refuse) the helper says `no`
    /// at once, and the shell asks `systemctl`.
    #[test]
    fn helper_declines_units_it_cannot_read() {
        let bad = ask_helper(&[("units", "ActiveState bad$name.service", "T")]);
        assert_eq!(bad, ["T no"]);
        if !std::path::Path::new("/run/systemd/private").exists() {
            assert_eq!(ask_helper(&[("units", "ActiveState ssh.service", "T")]), ["T no"]);
        }
    }

    /// A script as the resident shell of a session runs it: after the session's file helper started
    /// (framed as `ssh.rs` frames it, with fd 5 the channel), on a PATH where `stat` is missing, so
    /// only the helper can read; or else without it, where `stat` reads.
    fn run_in_session(script: &str, helper: bool) -> Vec<u8> {
        let bin = std::env::temp_dir().join(format!("hk-helper-bin-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&bin);
        let mut path = std::env::var("PATH").unwrap_or_default();
        let mut text = String::new();
        if helper {
            for tool in ["perl", "mkfifo", "mktemp", "rmdir", "rm", "sha256sum"] {
                let found = path.split(':').map(|d| std::path::Path::new(d).join(tool)).find(|p| p.exists());
                let _ = std::os::unix::fs::symlink(found.expect("tool"), bin.join(tool));
            }
            path = bin.display().to_string();
            text.push_str(&format!(
                "{{\n{}\n}} 5>&1 >/dev/null 2>&1 </dev/null\n",
                SESSION_FILE_HELPER.as_str()
            ));
        }
        text.push_str(script);
        let out =
            std::process::Command::new("/bin/sh").arg("-c").arg(text).env("PATH", path).output().expect("sh");
        out.stdout
    }

    /// What the helper's `lstat` reads equals what `stat` reads: kinds, modes, owners, sizes, inodes,
    /// nanosecond ctimes and link targets, for awkward names too; its clock is not before any of them.
    #[test]
    fn helper_lstat_reads_what_stat_reads() {
        let dir = std::env::temp_dir().join(format!("hk-lstat-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).expect("dir");
        std::fs::write(dir.join("file"), "content").expect("file");
        std::fs::write(dir.join("empty"), "").expect("empty");
        std::fs::write(dir.join("sp ace\nline"), "x").expect("odd name");
        std::os::unix::fs::symlink("file", dir.join("link")).expect("link");
        std::os::unix::fs::symlink("/nowhere", dir.join("dangling")).expect("dangling");
        let names = ["file", "empty", "sp ace\nline", "sub", "link", "dangling", "missing"];
        let paths: Vec<String> = names.iter().map(|n| dir.join(n).display().to_string()).collect();
        let mut batch = super::super::probe::ProbeBatch::default();
        for p in &paths {
            batch.stat(p);
        }
        batch.need_names();
        batch.remember(&[]);
        let script = batch.script("N0NCE").expect("script");
        let read =
            |helper| super::super::probe::parse(&run_in_session(&script, helper), "N0NCE").expect("facts");
        let (by_helper, by_stat) = (read(true), read(false));
        for p in &paths {
            assert_eq!(format!("{:?}", by_helper.path(p)), format!("{:?}", by_stat.path(p)), "{p}");
        }
        assert!(by_helper.path(&paths[0]).ctime > 0 && by_helper.path(&paths[6]).ctime == 0);
        let latest = paths[..3].iter().map(|p| by_helper.path(p).ctime).max().unwrap_or(0);
        // A file changed just before waits for its margin, so the cache may trust its hash at once.
        let margin = crate::engine::hash_cache::margin_for(latest);
        let clock = by_helper.clock.expect("a clock");
        assert!(clock >= latest + margin.min(60_000_000), "clock {clock}, latest change {latest}");
        let listing =
            crate::script::stat_list::command(&format!("{}/*", q(&dir.display().to_string()).expect("q")));
        let listing = format!("HK=N0NCE\nexport QUOTING_STYLE=literal LC_ALL=C\n{listing}");
        let (helper_lines, stat_lines) = (run_in_session(&listing, true), run_in_session(&listing, false));
        assert_eq!(String::from_utf8_lossy(&helper_lines), String::from_utf8_lossy(&stat_lines));
        assert_eq!(stat_lines.iter().filter(|&&b| b == b'\n').count(), 7);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The helper lists a release folder as `find | sort` do (never following a link), for a probe
    /// on the channel and for an apply in a file, where `find` and `sort` are missing.
    #[test]
    fn helper_lists_trees_as_find_does() {
        use crate::script::tree;
        let dir = std::env::temp_dir().join(format!("hk-tree-helper-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let rel = dir.join("rel");
        std::fs::create_dir_all(rel.join("lib/deep/er")).expect("dirs");
        std::fs::create_dir_all(rel.join("empty")).expect("empty dir");
        std::fs::create_dir_all(dir.join("outside")).expect("outside");
        std::fs::write(dir.join("outside/secret"), "no").expect("outside file");
        std::fs::write(rel.join("lib/deep/er/a b"), "12345").expect("file");
        std::fs::write(rel.join("Z"), "").expect("empty file");
        std::fs::write(rel.join("a"), "1").expect("file");
        std::os::unix::fs::symlink("../outside", rel.join("lib/out")).expect("link");
        let (rel_s, missing) = (rel.display().to_string(), dir.join("none").display().to_string());
        for path in [&rel_s, &missing] {
            let probe = format!("HK=N0NCE\n{}", tree::probe_command(path).expect("command"));
            let (by_helper, by_find) = (run_in_session(&probe, true), run_in_session(&probe, false));
            assert_eq!(String::from_utf8_lossy(&by_helper), String::from_utf8_lossy(&by_find));
        }
        let probe = format!("HK=N0NCE\n{}", tree::probe_command(&rel_s).expect("command"));
        let out = run_in_session(&probe, true);
        let listing = out.split(|&b| b == 0).nth(1).expect("listing");
        assert_eq!(
            String::from_utf8_lossy(listing),
            "f\tZ\t0\nf\ta\t1\nf\tlib/deep/er/a b\t5\nl\tlib/out\t../outside"
        );
        // An apply's check, with the script's own helper.
        let apply = format!(
            "set -euC\nHK=N0NCE\n{}\n{}\nprintf '%s' \"$hk_fs $hk_d\"",
            FS_OPS.as_str(),
            tree::digest_command(&rel_s).expect("command")
        );
        let out = String::from_utf8_lossy(&run_in_session(&apply, true)).into_owned();
        let (digest, _) = tree::summary(listing);
        assert_eq!(out, format!("perl {digest}"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The helper travels inside single quotes.
    #[test]
    fn helper_has_no_single_quote() {
        assert!(!FILE_HELPER.contains('\''));
    }
}
