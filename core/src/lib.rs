//! hk-core: the hk engine — desired state, plans, apply, transports. No Nushell dependency.

pub mod app;
pub mod config;
pub mod engine;
pub mod instance;
pub mod model;
pub mod packages;
pub mod plan_file;
pub mod progress;
pub mod quote;
pub mod release;
pub mod resources;
pub mod runs;
pub mod secrets;
pub mod trace;
pub mod transport;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
