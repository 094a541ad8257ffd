//! anyhow errors from hk-core become Nushell errors with a span at the command boundary.

use hk_core::config::ConfigError;
use nu_protocol::{LabeledError, Span};

/// Turn an engine error into a labeled error pointing at `span` (the argument or command it came from).
pub fn labeled(err: anyhow::Error, span: Span) -> LabeledError {
    let text = format!("{err:#}");
    let headline = match err.downcast_ref::<ConfigError>() {
        Some(config) => format!("hk: invalid config at {}", config.field),
        None => format!("hk: {}", err.root_cause().to_string().lines().next().unwrap_or("error")),
    };
    LabeledError::new(headline).with_label(text, span)
}

/// Shorthand for map_err with [`labeled`].
pub trait LabelErr<T> {
    fn at(self, span: Span) -> Result<T, LabeledError>;
}

impl<T> LabelErr<T> for anyhow::Result<T> {
    fn at(self, span: Span) -> Result<T, LabeledError> {
        self.map_err(|e| labeled(e, span))
    }
}
