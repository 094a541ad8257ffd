//! `ready`: proof that the host is healthy after the resources it follows were applied — HTTP status
//! (and body, and a response header), a TCP port, a systemd unit — polled until a timeout, after an
//! optional delay. It changes nothing: plans show it as `read`, and a failing check fails the apply
//! with the last answer (and the journal of the units it names). A `drain` check waits until a local
//! port has no open connection left, and never fails: at its timeout the apply goes on.

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::command::ids_field;
use super::{Diff, Observed, Resource, ResourceKind, StepContext};
use crate::change::{Action, FieldChange, Reason};
use crate::fields::{Obj, type_name};
use crate::quote::q;
use crate::script::probe::{Facts, ProbeBatch};
use crate::script::steps::Step;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Http {
        url: String,
        status: u16,
        body: Option<String>,
        /// Request headers (`Host`, …).
        #[serde(default, skip_serializing_if = "indexmap::IndexMap::is_empty")]
        headers: indexmap::IndexMap<String, String>,
        /// A response header line that must be there, `Name: value` (name and value compared without
        /// case).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect_header: Option<String>,
        /// Connect to this address instead of the URL's host (same port), keeping the URL's name for
        /// Host and TLS.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        connect_to: Option<String>,
        /// Accept any TLS certificate.
        #[serde(default)]
        insecure: bool,
    },
    Tcp {
        host: String,
        port: u16,
    },
    Systemd {
        unit: String,
    },
    /// No established TCP connection on this local port (the port's server has nothing in flight).
    Drain {
        port: u16,
    },
}

impl Check {
    fn describe(&self) -> String {
        match self {
            Check::Http { url, status, expect_header, .. } => match expect_header {
                Some(h) => format!("http {url} → {status} with {h}"),
                None => format!("http {url} → {status}"),
            },
            Check::Tcp { host, port } => format!("tcp {host}:{port}"),
            Check::Systemd { unit } => format!("systemd {unit}"),
            Check::Drain { port } => format!("drain :{port}"),
        }
    }

    /// A shell condition: true when the check passes; else `hk_last` says what was seen.
    fn condition(&self) -> Result<String> {
        Ok(match self {
            Check::Http { url, status, body, headers, expect_header, connect_to, insecure } => {
                let url_text = url;
                let url = q(url)?;
                let body_ok = match body {
                    Some(b) => format!("grep -qF -- {} \"$hk_tmp/ready.body\"", q(b)?),
                    None => ":".into(),
                };
                let header_ok = match expect_header {
                    // Read by builtins: the line as `grep -qixF` would match it, its CR dropped.
                    Some(h) => format!(
                        "{{ hk_hv=; while IFS= read -r hk_h || [ -n \"$hk_h\" ]; do hk_h=${{hk_h%[[:cntrl:]]}}; \
                         case $hk_h in {}) hk_hv=1; break;; esac; done < \"$hk_tmp/ready.head\"; [ -n \"$hk_hv\" ]; }}",
                        any_case_pattern(h)?
                    ),
                    None => ":".into(),
                };
                let mut flags = String::new();
                for (name, value) in headers {
                    flags.push_str(&format!(" -H {}", q(&format!("{name}: {value}"))?));
                }
                if let Some(address) = connect_to
                    && let Some((host, port)) = url_host_port(url_text)
                {
                    flags.push_str(&format!(
                        " --connect-to {}",
                        q(&format!("{host}:{port}:{address}:{port}"))?
                    ));
                }
                if *insecure {
                    flags.push_str(" -k");
                }
                let seen = match expect_header {
                    Some(h) => format!(" without \"{}", q(h)?),
                    None => "\"".into(),
                };
                let curl = format!(
                    "{{ command -v curl >/dev/null 2>&1 || {{ hk_last='curl is not installed on the host (http checks need it)'; hk_body=; false; }}; }} && \
                     {{ hk_code=$(curl -sS -o \"$hk_tmp/ready.body\" -D \"$hk_tmp/ready.head\" -w '%{{http_code}}' --max-time 5{flags} {url} 2>&1) || :; }}"
                );
                // A plain GET to an IPv4 address goes through the file helper where the script has
                // one: no curl process for each attempt.
                let fetch = match helper_request(url_text, headers, connect_to.as_deref(), *insecure) {
                    Some((ip, port, path, lines)) => format!(
                        "if [ \"$hk_fs\" = perl ]; then hk_http {} {port} {} {}; else {curl}; fi",
                        q(&ip)?,
                        q(&path)?,
                        q(&lines)?
                    ),
                    None => curl,
                };
                format!(
                    "{{ {fetch} && \
                     {{ [ \"$hk_code\" = {status} ] && {body_ok} && {{ {header_ok} || {{ hk_code=\"$hk_code{seen}; false; }}; }} || {{ hk_last=\"GET \"{url}\": $hk_code\"; hk_body=1; false; }}; }}; }}"
                )
            }
            Check::Tcp { host, port } => {
                let (h, p) = (q(host)?, port);
                format!(
                    "{{ if command -v bash >/dev/null 2>&1; then bash -c 'exec 3<>\"/dev/tcp/$0/$1\"' {h} {p} 2>/dev/null; else nc -z -w 2 {h} {p} 2>/dev/null; fi || {{ hk_last=\"tcp \"{h}\":{p}: no connection\"; hk_body=; false; }}; }}"
                )
            }
            Check::Systemd { unit } => {
                let u = q(unit)?;
                format!(
                    "{{ systemctl is-active --quiet -- {u} || {{ hk_last=\"unit \"{u}\" is $(systemctl is-active -- {u} 2>&1)\"; hk_body=; false; }}; }}"
                )
            }
            // Established sockets (state 01) whose local port is PORT, from the kernel's own tables.
            Check::Drain { port } => format!(
                "{{ hk_conns {hex}; [ \"${{hk_n:-0}}\" = 0 ] || {{ hk_last=\"$hk_n connection(s) still open on port {port}\"; hk_body=; false; }}; }}",
                hex = format_args!("{port:04X}")
            ),
        })
    }
}

/// A `case` pattern matching `text` whatever the case of its ASCII letters, the rest literal.
fn any_case_pattern(text: &str) -> Result<String> {
    let mut pattern = String::new();
    let mut literal = String::new();
    for c in text.chars() {
        if c.is_ascii_alphabetic() {
            if !literal.is_empty() {
                pattern.push_str(&q(&std::mem::take(&mut literal))?);
            }
            pattern.push_str(&format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase()));
        } else {
            literal.push(c);
        }
    }
    if !literal.is_empty() {
        pattern.push_str(&q(&literal)?);
    }
    Ok(pattern)
}

/// What the file helper needs for a plain GET: the IPv4 address to connect to, the port, the path
/// (with its query) and the request's header lines, `Host` first (the URL's, as curl sends it,
/// unless `headers` give one). None where curl must do it: https, another kind of address.
fn helper_request(
    url: &str,
    headers: &indexmap::IndexMap<String, String>,
    connect_to: Option<&str>,
    insecure: bool,
) -> Option<(String, u16, String, String)> {
    let rest = url.strip_prefix("http://")?;
    if insecure {
        return None;
    }
    let (host, port) = url_host_port(url)?;
    let address = connect_to.unwrap_or(&host);
    address.parse::<std::net::Ipv4Addr>().ok()?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.contains('@') {
        return None;
    }
    let after = &rest[authority.len()..];
    let path = after.split('#').next().unwrap_or_default();
    let path = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
    if path.contains(|c: char| c.is_ascii_whitespace() || c.is_ascii_control()) {
        return None;
    }
    let mut lines = Vec::new();
    if !headers.keys().any(|k| k.eq_ignore_ascii_case("host")) {
        lines.push(format!("Host: {authority}"));
    }
    lines.extend(headers.iter().map(|(k, v)| format!("{k}: {v}")));
    Some((address.to_string(), port, path, lines.join("\n")))
}

/// `host` and `port` of an http(s) URL (the scheme's port when none is given).
fn url_host_port(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let default = if scheme == "https" { 443 } else { 80 };
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = after.strip_prefix(':').and_then(|p| p.parse().ok()).unwrap_or(default);
        return Some((format!("[{host}]"), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_string(), port.parse().ok()?)),
        None => Some((authority.to_string(), default)),
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Ready {
    pub name: String,
    pub checks: Vec<Check>,
    pub timeout_s: u64,
    pub interval_ms: u64,
    /// Wait this long before the first attempt.
    #[serde(default)]
    pub delay_ms: u64,
    /// Units whose last journal lines explain a failure (besides those of `systemd` checks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub journal: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

fn parse_check(obj: &Obj, i: usize, value: Value) -> Result<Check> {
    let field = format!("checks.{i}");
    let mut check = obj.child(&field, value)?;
    let keys = check.keys();
    let kind = match keys.as_slice() {
        [one] => one.clone(),
        _ => {
            return obj
                .fail(&field, "a check is one of {http: {…}}, {tcp: {…}}, {systemd: {…}}, {drain: {…}}");
        }
    };
    let mut inner = check.opt_record(&kind)?.map_or_else(|| obj.fail(&field, "empty check"), Ok)?;
    let parsed = match kind.as_str() {
        "http" => {
            let url = inner.req_str("url")?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return inner.fail("url", "must start with http:// or https://");
            }
            let status = inner.opt_u64("status")?.unwrap_or(200);
            let status = u16::try_from(status).ok().filter(|s| (100..600).contains(s));
            let Some(status) = status else { return inner.fail("status", "an HTTP status is 100-599") };
            let mut headers = indexmap::IndexMap::new();
            if let Some(mut h) = inner.opt_record("headers")? {
                for name in h.keys() {
                    let value = h.req_str(&name)?;
                    if name.is_empty() || name.contains([':', '\n', '\r']) || value.contains(['\n', '\r']) {
                        return h.fail(&name, "not a header name and one-line value");
                    }
                    headers.insert(name, value);
                }
            }
            let expect_header = inner.opt_str("expect_header")?;
            if let Some(h) = &expect_header
                && (!h.contains(':') || h.contains(['\n', '\r']))
            {
                return inner.fail("expect_header", "write it as one line `Name: value`");
            }
            Check::Http {
                url,
                status,
                body: inner.opt_str("body")?,
                headers,
                expect_header,
                connect_to: inner.opt_str("connect_to")?,
                insecure: inner.opt_bool("insecure")?.unwrap_or(false),
            }
        }
        "tcp" => {
            let host = inner.opt_str("host")?.unwrap_or_else(|| "127.0.0.1".into());
            let port = inner.opt_u64("port")?.and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0);
            let Some(port) = port else { return inner.fail("port", "a port is 1-65535") };
            Check::Tcp { host, port }
        }
        "systemd" => Check::Systemd { unit: unit_name(inner.req_str("unit")?) },
        "drain" => {
            let port = inner.opt_u64("port")?.and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0);
            let Some(port) = port else { return inner.fail("port", "a port is 1-65535") };
            Check::Drain { port }
        }
        other => {
            return obj.fail(&field, &format!("unknown check {other:?}: use http, tcp, systemd or drain"));
        }
    };
    inner.finish()?;
    check.finish()?;
    Ok(parsed)
}

/// A unit name, `.service` added to a bare one.
fn unit_name(mut unit: String) -> String {
    if !unit.contains('.') {
        unit.push_str(".service");
    }
    unit
}

impl Ready {
    /// Only drain checks: waiting is all it does, and running out of time is no failure.
    fn drains_only(&self) -> bool {
        self.checks.iter().all(|c| matches!(c, Check::Drain { .. }))
    }

    pub fn from_config(obj: &mut Obj) -> Result<Self> {
        let name = obj.req_str("name")?;
        let checks = match obj.take("checks") {
            Some(Value::Array(items)) if !items.is_empty() => {
                let mut checks = Vec::new();
                for (i, item) in items.into_iter().enumerate() {
                    checks.push(parse_check(obj, i, item)?);
                }
                checks
            }
            Some(other @ (Value::Object(_) | Value::String(_) | Value::Number(_) | Value::Bool(_))) => {
                return obj.fail("checks", &format!("expected a list of checks, got {}", type_name(&other)));
            }
            _ => return obj.fail("checks", "missing: give at least one check"),
        };
        let timeout_s = obj.opt_duration_ms("timeout")?.unwrap_or(60_000).div_ceil(1000).max(1);
        let interval_ms = obj.opt_duration_ms("interval")?.unwrap_or(1000).max(100);
        let delay_ms = obj.opt_duration_ms("delay")?.unwrap_or(0);
        let journal = match obj.take("journal") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![unit_name(s)],
            Some(Value::Array(items)) => {
                let mut units = Vec::new();
                for item in items {
                    match item {
                        Value::String(s) => units.push(unit_name(s)),
                        other => return obj.fail("journal", &format!("{other} is not a unit name")),
                    }
                }
                units
            }
            Some(other) => {
                return obj.fail("journal", &format!("expected unit names, got {}", type_name(&other)));
            }
        };
        let after = ids_field(obj, "after")?;
        Ok(Ready { name, checks, timeout_s, interval_ms, delay_ms, journal, after })
    }
}

impl ResourceKind for Ready {
    fn type_name(&self) -> &'static str {
        "ready"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn probe(&self, _batch: &mut ProbeBatch) {}

    fn observe(&self, _facts: &Facts) -> Observed {
        Observed::new()
    }

    fn diff(&self, _seen: &Observed) -> Diff {
        let checks: Vec<String> = self.checks.iter().map(Check::describe).collect();
        Diff {
            action: Action::Read,
            reason: Reason::Check,
            changes: vec![FieldChange::new("checks", None, Some(checks.join("; ")))],
        }
    }

    fn step(&self, _diff: &Diff, _seen: &Observed, _cx: &StepContext) -> Result<Step> {
        let mut condition = Vec::new();
        for check in &self.checks {
            condition.push(check.condition()?);
        }
        let mut units: Vec<&String> = self.journal.iter().collect();
        for check in &self.checks {
            if let Check::Systemd { unit } = check
                && !units.contains(&unit)
            {
                units.push(unit);
            }
        }
        let mut journal = String::new();
        for unit in units {
            journal.push_str(&format!(
                "journalctl -u {} -n 10 --no-pager -o short-iso >&2 2>/dev/null || :; ",
                q(unit)?
            ));
        }
        let name = q(&format!("ready:{}", self.name))?;
        let seconds = |ms: u64| format!("{}.{:03}", ms / 1000, ms % 1000);
        let delay =
            if self.delay_ms > 0 { format!("hk_sleep {}; ", seconds(self.delay_ms)) } else { String::new() };
        // A drain that runs out of time is no failure: the stop that follows drains the rest.
        let give_up = if self.drains_only() {
            format!(
                "printf '%s: still busy after {} s: %s\\n' {name} \"$hk_last\" >&2; hk_ok=1; break;",
                self.timeout_s
            )
        } else {
            format!(
                "printf '%s failed after {} s: %s\\n' {name} \"$hk_last\" >&2; {journal}break;",
                self.timeout_s
            )
        };
        // An HTTP answer's body is read into the message once, when the check gives up.
        let last_body =
            "[ -z \"$hk_body\" ] || hk_last=\"$hk_last $(head -c 300 \"$hk_tmp/ready.body\" 2>/dev/null)\"; ";
        let mut step = Step::new();
        // The clock from /proc/uptime by a builtin, not a `date` per attempt.
        step.run(format!(
            "{{ {delay}hk_clock() {{ read -r hk_t hk_rest 2>/dev/null < /proc/uptime && hk_t=${{hk_t%.*}} || hk_t=$(date +%s); }}; \
             hk_clock; hk_deadline=$(( hk_t + {timeout} )); hk_last=; hk_body=; hk_ok=; \
             while :; do \
               if {cond}; then hk_ok=1; break; fi; \
               hk_clock; if [ \"$hk_t\" -ge \"$hk_deadline\" ]; then {last_body}{give_up} fi; \
               hk_sleep {interval}; \
             done; [ -n \"$hk_ok\" ]; }}",
            timeout = self.timeout_s,
            interval = seconds(self.interval_ms),
            cond = condition.join(" && "),
        ));
        Ok(step)
    }

    fn depends_on(&self) -> Vec<String> {
        self.after.clone()
    }

    fn rank(&self) -> u8 {
        super::RANK_READY
    }

    fn down(&self, _before: &Observed) -> Option<Result<Resource, String>> {
        Some(Err("a readiness check changes nothing".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parts() {
        assert_eq!(url_host_port("https://shop.example.com/up"), Some(("shop.example.com".into(), 443)));
        assert_eq!(url_host_port("http://a.test:8080/x?y"), Some(("a.test".into(), 8080)));
        assert_eq!(url_host_port("http://[::1]/"), Some(("[::1]".into(), 80)));
    }

    #[test]
    fn a_drain_never_fails_other_checks_do() {
        let ready = |checks| Ready {
            name: "x".into(),
            checks,
            timeout_s: 5,
            interval_ms: 200,
            delay_ms: 1500,
            journal: vec!["app@4000.service".into()],
            after: Vec::new(),
        };
        let cx = StepContext { nonce: "n", uploaded: &[] };
        let drain = ready(vec![Check::Drain { port: 4000 }])
            .step(&Diff::noop(), &Observed::new(), &cx)
            .expect("step");
        let text = drain.commands.join(" ");
        assert!(
            text.contains("0FA0") && text.contains("still busy") && text.contains("hk_ok=1; break"),
            "{text}"
        );
        let http = Check::Http {
            url: "http://127.0.0.1/up".into(),
            status: 200,
            body: None,
            headers: [("X-Hk-Check".to_string(), "app".to_string())].into_iter().collect(),
            expect_header: Some("X-Hk-Upstream: 127.0.0.1:4001".into()),
            connect_to: None,
            insecure: false,
        };
        let step = ready(vec![http]).step(&Diff::noop(), &Observed::new(), &cx).expect("step");
        let text = step.commands.join(" ");
        assert!(text.starts_with("{ hk_sleep 1.500;"), "{text}");
        assert!(text.contains("-H 'X-Hk-Check: app'") && text.contains("[xX]-[hH][kK]-[uU]"), "{text}");
        assert!(text.contains("journalctl -u app@4000.service") && !text.contains("still busy"), "{text}");
    }

    /// The header check matches as `grep -qixF` did: the whole line, any case, a CR dropped.
    #[test]
    fn plain_gets_to_an_ipv4_address_go_through_the_helper() {
        let none = indexmap::IndexMap::new();
        let host: indexmap::IndexMap<String, String> = [("host".to_string(), "app.test".to_string())].into();
        assert_eq!(
            helper_request("http://127.0.0.1:4001/up?a=b#frag", &none, None, false),
            Some(("127.0.0.1".into(), 4001, "/up?a=b".into(), "Host: 127.0.0.1:4001".into()))
        );
        assert_eq!(
            helper_request("http://app.test", &host, Some("127.0.0.1"), false),
            Some(("127.0.0.1".into(), 80, "/".into(), "host: app.test".into()))
        );
        assert_eq!(helper_request("https://127.0.0.1/", &none, None, false), None);
        assert_eq!(helper_request("http://localhost/", &none, None, false), None);
        assert_eq!(helper_request("http://127.0.0.1/", &none, None, true), None);
        assert_eq!(helper_request("http://u@127.0.0.1/", &none, None, false), None);
    }

    #[test]
    fn header_lines_match_whole_in_any_case() {
        let pattern = any_case_pattern("X-Hk-Upstream: 127.0.0.1:4001").expect("pattern");
        let matches = |line: &str| {
            let script = format!(
                "hk_h=$(printf '%s\\r' {}); hk_h=${{hk_h%[[:cntrl:]]}}; case $hk_h in {pattern}) exit 0;; esac; exit 1",
                q(line).expect("quote")
            );
            std::process::Command::new("sh").arg("-c").arg(script).status().expect("sh").success()
        };
        assert!(matches("x-hk-upstream: 127.0.0.1:4001"));
        assert!(matches("X-HK-UPSTREAM: 127.0.0.1:4001"));
        assert!(!matches("X-Hk-Upstream: 127.0.0.1:40011"));
        assert!(!matches("X-Hk-Upstream: 127.0.0.1:4000"));
        assert!(!matches("X-Hk-Upstream: 127x0.0.1:4001"));
    }
}
