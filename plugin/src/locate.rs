//! Pointing at a config field by its path (`resources.3.mode`): the span of a piped value, the nu
//! cell path of a config file's field, and line and column of an offset in a file.

use nu_protocol::{Span, Value};

/// The path's parts: list indexes as numbers, record keys as text.
fn parts(field: &str) -> impl Iterator<Item = Part<'_>> {
    field.split('.').filter(|p| !p.is_empty()).map(|p| match p.parse::<usize>() {
        Ok(i) => Part::Index(i),
        Err(_) => Part::Key(p),
    })
}

enum Part<'a> {
    Index(usize),
    Key(&'a str),
}

/// The span of the deepest value along `field` that the piped config holds (the field itself, or
/// the record it is missing from); `None` when nothing there has a span of its own.
pub fn span_of(config: &Value, field: &str) -> Option<Span> {
    let mut current = config;
    for part in parts(field) {
        let next = match (part, current) {
            (Part::Index(i), Value::List { vals, .. }) => vals.get(i),
            (Part::Key(k), Value::Record { val, .. }) => val.get(k),
            (Part::Index(i), Value::Record { val, .. }) => val.get(i.to_string()),
            _ => None,
        };
        match next {
            Some(value) => current = value,
            None => break,
        }
    }
    let span = current.span();
    (span != Span::unknown()).then_some(span)
}

/// The nu cell path (`.resources.3."mode"`) of the deepest value along `field` that `config` holds.
pub fn cell_path(config: &serde_json::Value, field: &str) -> String {
    let mut current = config;
    let mut out = String::new();
    for part in parts(field) {
        let (next, member) = match (part, current) {
            (Part::Index(i), serde_json::Value::Array(items)) => (items.get(i), format!(".{i}")),
            (Part::Key(k), serde_json::Value::Object(map)) => (map.get(k), format!(".{}", quoted(k))),
            (Part::Index(i), serde_json::Value::Object(map)) => {
                (map.get(&i.to_string()), format!(".{}", quoted(&i.to_string())))
            }
            _ => (None, String::new()),
        };
        match next {
            Some(value) => {
                current = value;
                out.push_str(&member);
            }
            None => break,
        }
    }
    out
}

/// A nu double-quoted string (JSON's escapes are nu's).
fn quoted(key: &str) -> String {
    serde_json::to_string(key).unwrap_or_else(|_| "\"\"".into())
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn line_column(text: &[u8], offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cell_paths_stop_where_the_config_does() {
        let config = json!({"resources": [{"type": "dir"}, {"type": "file", "contnet": "x"}]});
        assert_eq!(cell_path(&config, "resources.1.contnet"), r#"."resources".1."contnet""#);
        assert_eq!(cell_path(&config, "resources.1.content"), r#"."resources".1"#);
        assert_eq!(cell_path(&config, "hosts.web"), "");
    }

    #[test]
    fn lines_and_columns_count_from_one() {
        let text = "{\n  résumé: 1, x: 2\n}".as_bytes();
        let offset = text.windows(2).position(|w| w == b"x:").expect("x");
        assert_eq!(line_column(text, offset), (2, 14));
        assert_eq!(line_column(text, 0), (1, 1));
    }

    #[test]
    fn piped_values_give_their_own_spans() {
        let inner = Value::string("x", Span::new(10, 13));
        let mut record = nu_protocol::Record::new();
        record.push("contnet", inner);
        let resource = Value::record(record, Span::new(5, 20));
        let mut top = nu_protocol::Record::new();
        top.push("resources", Value::list(vec![resource], Span::new(1, 30)));
        let config = Value::record(top, Span::new(0, 31));
        assert_eq!(span_of(&config, "resources.0.contnet"), Some(Span::new(10, 13)));
        assert_eq!(span_of(&config, "resources.0.content"), Some(Span::new(5, 20)));
    }
}
