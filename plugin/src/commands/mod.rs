//! One file per Nushell command.

pub mod apply;
pub mod clean;
pub mod down;
pub mod exec;
pub mod instance;
pub mod instance_destroy;
pub mod instance_ensure;
pub mod instance_status;
pub mod plan;
pub mod release_build;
pub mod runs;
