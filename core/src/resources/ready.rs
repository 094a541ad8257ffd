//! `ready`: proof that the host is healthy after the resources it follows were applied — HTTP status
//! (and body), a TCP port, a systemd unit — polled until a timeout. It changes nothing: plans show it
//! as `read`, and a failing check fails the apply with the last answer (and the unit's journal).

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::command::ids_field;
use super::{Diff, Observed, Resource, ResourceKind, StepContext};
use crate::config::{Obj, type_name};
use crate::engine::probe::{Facts, ProbeBatch};
use crate::engine::script::Step;
use crate::model::{Action, FieldChange, Reason};
use crate::quote::q;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Http { url: String, status: u16, body: Option<String> },
    Tcp { host: String, port: u16 },
    Systemd { unit: String },
}

impl Check {
    fn describe(&self) -> String {
        match self {
            Check::Http { url, status, .. } => format!("http {url} → {status}"),
            Check::Tcp { host, port } => format!("tcp {host}:{port}"),
            Check::Systemd { unit } => format!("systemd {unit}"),
        }
    }

    /// A shell condition: true when the check passes; else `hk_last` says what was seen.
    fn condition(&self) -> Result<String> {
        Ok(match self {
            Check::Http { url, status, body } => {
                let url = q(url)?;
                let body_ok = match body {
                    Some(b) => format!("grep -qF -- {} \"$hk_tmp/ready.body\"", q(b)?),
                    None => ":".into(),
                };
                format!(
                    "{{ command -v curl >/dev/null 2>&1 || {{ hk_last='curl is not installed on the host (http checks need it)'; false; }}; }} && \
                     {{ hk_code=$(curl -sS -o \"$hk_tmp/ready.body\" -w '%{{http_code}}' --max-time 5 {url} 2>&1); \
                     [ \"$hk_code\" = {status} ] && {body_ok} || {{ hk_last=\"GET \"{url}\": $hk_code $(head -c 300 \"$hk_tmp/ready.body\" 2>/dev/null)\"; false; }}; }}"
                )
            }
            Check::Tcp { host, port } => {
                let (h, p) = (q(host)?, port);
                format!(
                    "{{ if command -v bash >/dev/null 2>&1; then bash -c 'exec 3<>\"/dev/tcp/$0/$1\"' {h} {p} 2>/dev/null; else nc -z -w 2 {h} {p} 2>/dev/null; fi || {{ hk_last=\"tcp \"{h}\":{p}: no connection\"; false; }}; }}"
                )
            }
            Check::Systemd { unit } => {
                let u = q(unit)?;
                format!(
                    "{{ systemctl is-active --quiet -- {u} || {{ hk_last=\"unit \"{u}\" is $(systemctl is-active -- {u} 2>&1)\"; false; }}; }}"
                )
            }
        })
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Ready {
    pub name: String,
    pub checks: Vec<Check>,
    pub timeout_s: u64,
    pub interval_ms: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

fn parse_check(obj: &Obj, i: usize, value: Value) -> Result<Check> {
    let field = format!("checks.{i}");
    let mut check = obj.child(&field, value)?;
    let keys = check.keys();
    let kind = match keys.as_slice() {
        [one] => one.clone(),
        _ => return obj.fail(&field, "a check is one of {http: {…}}, {tcp: {…}}, {systemd: {…}}"),
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
            Check::Http { url, status, body: inner.opt_str("body")? }
        }
        "tcp" => {
            let host = inner.opt_str("host")?.unwrap_or_else(|| "127.0.0.1".into());
            let port = inner.opt_u64("port")?.and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0);
            let Some(port) = port else { return inner.fail("port", "a port is 1-65535") };
            Check::Tcp { host, port }
        }
        "systemd" => {
            let mut unit = inner.req_str("unit")?;
            if !unit.contains('.') {
                unit.push_str(".service");
            }
            Check::Systemd { unit }
        }
        other => return obj.fail(&field, &format!("unknown check {other:?}: use http, tcp or systemd")),
    };
    inner.finish()?;
    check.finish()?;
    Ok(parsed)
}

impl Ready {
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
        let after = ids_field(obj, "after")?;
        Ok(Ready { name, checks, timeout_s, interval_ms, after })
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
        let mut journal = String::new();
        for check in &self.checks {
            if let Check::Systemd { unit } = check {
                journal.push_str(&format!(
                    "journalctl -u {} -n 10 --no-pager -o short-iso >&2 2>/dev/null || :; ",
                    q(unit)?
                ));
            }
        }
        let name = q(&format!("ready:{}", self.name))?;
        let interval = format!("{}.{:03}", self.interval_ms / 1000, self.interval_ms % 1000);
        let mut step = Step::new();
        step.run(format!(
            "{{ hk_deadline=$(( $(date +%s) + {timeout} )); hk_last=; hk_ok=; \
             while :; do \
               if {cond}; then hk_ok=1; break; fi; \
               if [ \"$(date +%s)\" -ge \"$hk_deadline\" ]; then \
                 printf '%s failed after {timeout} s: %s\\n' {name} \"$hk_last\" >&2; {journal}break; \
               fi; \
               sleep {interval}; \
             done; [ -n \"$hk_ok\" ]; }}",
            timeout = self.timeout_s,
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
