//! hk-core: the hk engine — desired state, plans, apply, transports. No Nushell dependency.

pub mod app;
pub mod change;
pub mod config;
pub mod dotenv;
pub mod engine;
pub mod fields;
pub mod instance;
pub mod local_file;
pub mod model;
pub mod packages;
pub mod plan_file;
pub mod progress;
pub mod quote;
pub mod release;
pub mod resources;
pub mod runs;
pub mod script;
pub mod secrets;
pub mod trace;
pub mod transport;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
