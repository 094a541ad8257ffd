//! What the `hk deployment …` commands share: the signature (`--app`, `--root`, hosts as for `hk exec`), the
//! app's layout and hosts from a call, and the controller's view of a lock holder.

use hk_core::app::AppLayout;
use hk_core::engine::{failed_hosts_error, for_each_host};
use hk_core::transport::{Credentials, Target, Transport};
use nu_plugin::{EngineInterface, EvaluatedCall};
use nu_protocol::{Category, LabeledError, PipelineData, Signature, Span, SyntaxShape, Value};

use super::plan::{host_signature, input_record};
use crate::error::LabelErr;
use crate::load::{credentials, select_with};

/// `[TARGET] [CONFIG]` with the host flags, `--app` and `--root`.
pub fn app_signature(name: &str) -> Signature {
    host_signature(Signature::build(name))
        .named("app", SyntaxShape::String, "the app id (<service> or <service>-<destination>)", None)
        .named("root", SyntaxShape::String, "where apps live on the hosts (default /opt/hk)", None)
        .category(Category::Custom("hk".into()))
}

/// The app, its hosts (with how to reach them) and their credentials.
pub struct AppCall {
    pub layout: AppLayout,
    pub targets: Vec<(String, Target)>,
    pub credentials: Credentials,
    pub span: Span,
}

pub fn app_call(
    engine: &EngineInterface,
    call: &EvaluatedCall,
    input: PipelineData,
) -> Result<AppCall, LabeledError> {
    let span = call.head;
    let app: String = call.get_flag("app")?.ok_or_else(|| {
        LabeledError::new("hk deployment: --app is required").with_label("which app? e.g. --app hello", span)
    })?;
    let root: String = call.get_flag("root")?.unwrap_or_else(|| "/opt/hk".into());
    let layout = AppLayout::new(&root, &app).at(span)?;
    let selection = select_with(engine, call, input_record(input, span)?, true, 0)?;
    let credentials = credentials(engine, call, selection.targets.iter().map(|(_, t)| t))?;
    Ok(AppCall { layout, targets: selection.targets, credentials, span })
}

impl AppCall {
    /// The primary host (the first one given) and a connection to it: where the deploy lock lives.
    pub fn primary(&self) -> Result<(String, Box<dyn Transport>), LabeledError> {
        let Some((host, target)) = self.targets.first() else {
            return Err(LabeledError::new("hk deployment: no host")
                .with_label("name the app's primary host", self.span));
        };
        let transport = target.connect(&self.credentials).map_err(|e| {
            LabeledError::new(format!("hk: cannot reach host {host}: {}", e.root_cause()))
                .with_label(format!("{e:#}"), self.span)
                .with_help(format!(
                    "check that {host} is up and that its address, SSH user and port in the config are right; a host on an instance hk runs comes up with `hk instance ensure` (or `hk setup`)"
                ))
        })?;
        Ok((host.clone(), transport))
    }

    /// Run `work` on every host at once (at most `parallel`), one connection each; the results in
    /// the hosts' order, or one error naming every host that failed.
    pub fn on_each_host<T: Send>(
        &self,
        parallel: usize,
        work: impl Fn(&mut dyn Transport, &AppLayout) -> anyhow::Result<T> + Sync,
    ) -> Result<Vec<(String, T)>, LabeledError> {
        self.on_each_named_host(parallel, |_, transport, layout| work(transport, layout))
    }

    /// As [`AppCall::on_each_host`], `work` also told which host it is on.
    pub fn on_each_named_host<T: Send>(
        &self,
        parallel: usize,
        work: impl Fn(&str, &mut dyn Transport, &AppLayout) -> anyhow::Result<T> + Sync,
    ) -> Result<Vec<(String, T)>, LabeledError> {
        let names: Vec<String> = self.targets.iter().map(|(n, _)| n.clone()).collect();
        let results = for_each_host(&names, parallel, |host| {
            let (_, target) = self
                .targets
                .iter()
                .find(|(n, _)| n == host)
                .ok_or_else(|| anyhow::anyhow!("host {host} has no target"))?;
            let mut transport = target.connect(&self.credentials)?;
            work(host, transport.as_mut(), &self.layout)
        });
        let mut done = Vec::new();
        let mut failures = Vec::new();
        for (host, result) in results {
            match result {
                Ok(value) => done.push((host, value)),
                Err(e) => failures.push((host, format!("{e:#}"))),
            }
        }
        if !failures.is_empty() {
            return Err(failed_hosts_error(&failures)).at(self.span);
        }
        Ok(done)
    }
}

/// This machine's host name, as a lock holder records it.
pub fn controller_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}

/// A holder is provably gone when it ran on this machine and its process no longer exists.
pub fn holder_gone(holder: &serde_json::Value) -> bool {
    let host = holder.get("host").and_then(|h| h.as_str()).unwrap_or_default();
    let pid = holder.get("pid").and_then(|p| p.as_u64());
    match pid {
        Some(pid) if !host.is_empty() && host == controller_name() => {
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
        }
        _ => false,
    }
}

/// Seconds since the epoch as a Nushell date (nothing when out of range).
pub fn epoch_date(seconds: i64, span: Span) -> Value {
    match chrono::DateTime::from_timestamp(seconds, 0) {
        Some(d) => Value::date(d.fixed_offset(), span),
        None => Value::nothing(span),
    }
}

/// "locked by who (pid P on H) since T: message" for errors and status lines.
pub fn describe_holder(holder: &serde_json::Value, since: Option<i64>) -> String {
    let field =
        |k: &str| holder.get(k).map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
    let who = field("who").unwrap_or_else(|| "someone".into());
    let mut text = who;
    if let (Some(pid), Some(host)) = (field("pid"), field("host")) {
        text.push_str(&format!(" (pid {pid} on {host})"));
    }
    if let Some(version) = field("version") {
        text.push_str(&format!(", deploying {version}"));
    }
    if let Some(since) = since.and_then(|s| chrono::DateTime::from_timestamp(s, 0)) {
        let age = chrono::Utc::now().signed_duration_since(since).num_seconds().max(0);
        text.push_str(&format!(", since {} ({} ago)", since.format("%Y-%m-%d %H:%M:%SZ"), human_age(age)));
    }
    if let Some(message) = field("message").filter(|m| !m.is_empty()) {
        text.push_str(&format!(": {message}"));
    }
    text
}

fn human_age(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

/// `--read-ahead CONFIG` of `hk deployment lock --facts` and `hk deployment facts`: the config of
/// the first plan on each host (a release in it need not be built yet: only paths are read), read
/// at the end of their script and kept on the SSH session for that plan, with the runs' roots its
/// tracked apply will have (`--runs-root`, `--backups-root`). See `engine::read_ahead`.
pub struct FirstReading {
    next: hk_core::config::Config,
    roots: hk_core::runs::Roots,
    hashes: Option<std::path::PathBuf>,
}

/// What a script takes to read ahead: the reading and the hash cache it completes.
pub type Pending<'a> =
    (hk_core::engine::read_ahead::Ahead, Option<&'a mut hk_core::engine::hash_cache::HashCache>);

impl FirstReading {
    pub fn from_call(
        engine: &EngineInterface,
        call: &EvaluatedCall,
    ) -> Result<Option<FirstReading>, LabeledError> {
        let Some(next) = call.get_flag::<Value>("read-ahead")? else { return Ok(None) };
        let next =
            hk_core::fields::for_reading(|| crate::load::load_config(engine, call, Some(next), None, &[]))?;
        Ok(Some(FirstReading {
            next,
            roots: super::plan::roots(call)?,
            hashes: super::plan::hash_cache_dir(engine)?,
        }))
    }

    /// `read` on `host` with what to read ahead there (none on a session that keeps nothing).
    pub fn around<T>(
        &self,
        host: &str,
        target: &Target,
        transport: &mut dyn Transport,
        read: impl FnOnce(&mut dyn Transport, Option<Pending<'_>>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        if !transport.keeps_readings() {
            return read(transport, None);
        }
        let mut cache =
            self.hashes.as_ref().map(|dir| hk_core::engine::hash_cache::HashCache::load(dir, target));
        let roots = self.roots.or(&self.next.roots.get(host).cloned().unwrap_or_default());
        let ahead = hk_core::engine::read_ahead::Ahead::new(
            &self.next.resources_for(host),
            Some(&roots),
            cache.as_ref(),
            &[],
        );
        let done = read(transport, Some((ahead, cache.as_mut())));
        if let Some(cache) = &cache {
            cache.save();
        }
        done
    }
}

/// The flags of [`FirstReading`].
pub fn read_ahead_flags(sig: Signature, first: &str) -> Signature {
    super::plan::roots_flags(sig).named(
        "read-ahead",
        SyntaxShape::Record(Default::default()),
        format!("the config of the plan that comes first on {first} (a release in it need not be built yet), read in the same exec and kept on the SSH session for that plan, tracked under --runs-root and --backups-root as its apply will be"),
        None,
    )
}
