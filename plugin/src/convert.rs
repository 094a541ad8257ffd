//! The only place where hk-core types and Nushell values meet.

use hk_core::model::{Event, FieldChange, HostIdentity, HostPlan, PlanRow};
use hk_core::resources::Resource;
use hk_core::transport::Target;
use nu_protocol::{LabeledError, Record, Span, Value};
use serde::Deserialize;

/// A Nushell value as JSON-like data (what hk-core reads configs from).
pub fn value_to_json(value: &Value) -> Result<serde_json::Value, LabeledError> {
    use serde_json::Value as J;
    Ok(match value {
        Value::Nothing { .. } => J::Null,
        Value::Bool { val, .. } => J::Bool(*val),
        Value::Int { val, .. } => J::from(*val),
        Value::Float { val, .. } => serde_json::Number::from_f64(*val).map(J::Number).unwrap_or(J::Null),
        Value::String { val, .. } | Value::Glob { val, .. } => J::String(val.clone()),
        Value::Filesize { val, .. } => J::from(val.get()),
        // A duration keeps its unit so configs read it as time, not as a bare number.
        Value::Duration { val, .. } => J::String(format!("{val}ns")),
        Value::Date { val, .. } => J::String(val.to_rfc3339()),
        Value::Binary { val, .. } => J::Array(val.iter().map(|b| J::from(*b)).collect()),
        Value::List { vals, .. } => J::Array(vals.iter().map(value_to_json).collect::<Result<_, _>>()?),
        Value::Record { val, .. } => {
            let mut map = serde_json::Map::new();
            for (k, v) in val.iter() {
                map.insert(k.clone(), value_to_json(v)?);
            }
            J::Object(map)
        }
        Value::Error { error, .. } => return Err(LabeledError::from(*error.clone())),
        other => {
            return Err(LabeledError::new(format!("hk cannot use a {} value here", other.get_type()))
                .with_label("not plain data", other.span()));
        }
    })
}

/// JSON-like data as a Nushell value.
pub fn json_to_value(json: &serde_json::Value, span: Span) -> Value {
    use serde_json::Value as J;
    match json {
        J::Null => Value::nothing(span),
        J::Bool(b) => Value::bool(*b, span),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::int(i, span),
            None => Value::float(n.as_f64().unwrap_or_default(), span),
        },
        J::String(s) => Value::string(s.clone(), span),
        J::Array(items) => Value::list(items.iter().map(|v| json_to_value(v, span)).collect(), span),
        J::Object(map) => {
            let mut record = Record::with_capacity(map.len());
            for (k, v) in map {
                record.push(k.clone(), json_to_value(v, span));
            }
            Value::record(record, span)
        }
    }
}

fn opt_string(value: &Option<String>, span: Span) -> Value {
    match value {
        Some(s) => Value::string(s.clone(), span),
        None => Value::nothing(span),
    }
}

fn to_json_value<T: serde::Serialize>(item: &T, span: Span) -> Value {
    match serde_json::to_value(item) {
        Ok(json) => json_to_value(&json, span),
        Err(e) => Value::error(LabeledError::new(format!("hk: cannot encode value: {e}")).into(), span),
    }
}

/// Which optional columns a plan table has: each is left out when no row of the plan needs it.
#[derive(Clone, Copy)]
pub struct PlanColumns {
    /// Only down plans explain rows (what cannot be undone).
    pub note: bool,
    /// Only rows that change something carry what apply needs.
    pub spec: bool,
    /// A plan where nothing changes has nothing to summarize.
    pub summary: bool,
}

impl PlanColumns {
    pub fn of(rows: &[PlanRow]) -> Self {
        PlanColumns {
            note: rows.iter().any(|row| !row.note.is_empty()),
            spec: rows.iter().any(|row| row.action.applies()),
            summary: rows.iter().any(|row| !row.changes.is_empty()),
        }
    }
}

/// A plan row, with `spec` carrying what apply needs (the desired resource, how to reach the host
/// and who it must be), so a filtered table can be piped straight into `hk apply`. `columns` says
/// whether the table has `note` and `spec` (every row of a table has each, or none).
pub fn row_to_value(row: &PlanRow, host: &HostPlan, columns: PlanColumns, span: Span) -> Value {
    let changes = row
        .changes
        .iter()
        .map(|c| {
            let mut r = Record::with_capacity(3);
            r.push("field", Value::string(c.field.clone(), span));
            r.push("from", opt_string(&c.from, span));
            r.push("to", opt_string(&c.to, span));
            Value::record(r, span)
        })
        .collect();
    // A row that changes nothing is never applied: it carries no spec, which keeps big no-op plans light.
    let spec = columns.spec.then(|| {
        if !row.action.applies() {
            return Value::nothing(span);
        }
        let mut spec = Record::with_capacity(4);
        spec.push("resource", to_json_value(&row.resource, span));
        spec.push("target", to_json_value(&host.target, span));
        spec.push("identity", to_json_value(&host.identity, span));
        if host.origin != Default::default() {
            spec.push("origin", to_json_value(&host.origin, span));
        }
        if !host.roots.is_unset() {
            spec.push("roots", to_json_value(&host.roots, span));
        }
        Value::record(spec, span)
    });
    // What matters first, so an 80-column terminal shows it: host, action, type, name, summary.
    let mut r = Record::with_capacity(12);
    r.push("host", Value::string(row.host.clone(), span));
    r.push("action", Value::string(row.action.as_str(), span));
    r.push("type", Value::string(row.rtype.clone(), span));
    r.push("name", Value::string(row.name.clone(), span));
    if columns.summary {
        r.push("summary", Value::string(summary(&row.changes), span));
    }
    r.push("reason", Value::string(row.reason.as_str(), span));
    if columns.note {
        r.push("note", Value::string(row.note.clone(), span));
    }
    r.push("changes", Value::list(changes, span));
    r.push("id", Value::string(row.id.clone(), span));
    r.push("reversible", Value::bool(row.reversible, span));
    r.push("fingerprint", Value::string(row.fingerprint.clone(), span));
    if let Some(spec) = spec {
        r.push("spec", spec);
    }
    Value::record(r, span)
}

/// A row's changes on one line: `mode 0644→0600, content` (long values, such as content hashes,
/// by their field's name alone).
pub fn summary(changes: &[FieldChange]) -> String {
    fn short(v: &Option<String>) -> Option<&str> {
        v.as_deref().filter(|t| t.len() <= 16 && !t.starts_with("sha256:"))
    }
    changes
        .iter()
        .map(|c| match (short(&c.from), short(&c.to), &c.from, &c.to) {
            (Some(from), Some(to), _, _) => format!("{} {from}→{to}", c.field),
            (None, Some(to), None, _) => format!("{} {to}", c.field),
            (Some(from), None, _, None) => format!("{} {from}→-", c.field),
            _ => c.field.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Deserialize)]
struct RowIn {
    host: String,
    id: String,
    #[serde(rename = "type")]
    rtype: String,
    name: String,
    action: hk_core::model::Action,
    #[serde(default)]
    changes: Vec<FieldChange>,
    reason: hk_core::model::Reason,
    reversible: bool,
    fingerprint: String,
    #[serde(default)]
    note: String,
    spec: SpecIn,
}

#[derive(Deserialize)]
struct SpecIn {
    resource: Resource,
    target: Target,
    identity: HostIdentity,
    #[serde(default)]
    origin: hk_core::model::Origin,
    #[serde(default)]
    roots: hk_core::runs::Roots,
}

/// A row piped into `hk apply`, back to a plan row and its host; `None` for a row that changes nothing.
pub fn value_to_row(value: &Value, index: usize) -> Result<Option<(PlanRow, HostPlan)>, LabeledError> {
    let span = value.span();
    let record = value.as_record().map_err(|_| {
        LabeledError::new("hk apply: input must be plan rows")
            .with_label(format!("row {index} is a {}, not a record", value.get_type()), span)
    })?;
    // A `read` row is a check (`ready`): it runs at apply time like a change.
    let changes_nothing = matches!(record.get("action").and_then(|a| a.as_str().ok()), Some("noop"));
    if changes_nothing {
        return Ok(None);
    }
    if record.get("spec").is_none_or(|s| s.is_nothing()) {
        return Err(LabeledError::new("hk apply: a row has no `spec` column")
            .with_label(format!("row {index} lacks `spec`"), span)
            .with_help("pipe rows straight from `hk plan` or `hk down` (filtering with `where` is fine; keep all columns), or use --plan FILE"));
    }
    let json = value_to_json(value)?;
    let row: RowIn = serde_json::from_value(json).map_err(|e| {
        LabeledError::new("hk apply: a row is not a plan row").with_label(format!("row {index}: {e}"), span)
    })?;
    let host = HostPlan {
        target: row.spec.target,
        identity: row.spec.identity,
        release: None,
        origin: row.spec.origin,
        roots: row.spec.roots,
    };
    let plan_row = PlanRow {
        host: row.host,
        id: row.id,
        rtype: row.rtype,
        name: row.name,
        action: row.action,
        changes: row.changes,
        reason: row.reason,
        reversible: row.reversible,
        fingerprint: row.fingerprint,
        resource: row.spec.resource,
        note: row.note,
    };
    Ok(Some((plan_row, host)))
}

pub fn event_to_value(event: &Event, span: Span) -> Value {
    // What a person looks for first, as in a plan: where, how it went, what.
    let mut r = Record::with_capacity(7);
    r.push("host", Value::string(event.host.clone(), span));
    r.push("status", Value::string(event.status.as_str(), span));
    r.push("action", Value::string(event.action.as_str(), span));
    r.push("id", Value::string(event.id.clone(), span));
    // Rounded to the millisecond: a person reads them.
    let ms = i64::try_from(event.duration.as_millis()).unwrap_or(i64::MAX / 1_000_000);
    r.push("duration", Value::duration(ms.saturating_mul(1_000_000), span));
    r.push("message", Value::string(event.message.clone(), span));
    r.push("time", Value::date(event.time.fixed_offset(), span));
    Value::record(r, span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_fit_one_line() {
        let c = |field: &str, from: Option<&str>, to: Option<&str>| {
            FieldChange::new(field, from.map(str::to_string), to.map(str::to_string))
        };
        let changes = [
            c("mode", Some("0644"), Some("0600")),
            c("content", Some("sha256:0123456789ab (3 B)"), Some("sha256:ba9876543210 (4 B)")),
            c("kind", None, Some("directory")),
            c("target", Some("releases/v1"), None),
        ];
        assert_eq!(summary(&changes), "mode 0644→0600, content, kind directory, target releases/v1→-");
        assert_eq!(summary(&[]), "");
    }
}
