//! One file per Nushell command.

pub mod app;
pub mod app_audit;
pub mod app_audit_add;
pub mod app_facts;
pub mod app_lock;
pub mod app_unlock;
pub mod apply;
pub mod clean;
pub mod dotenv;
pub mod down;
pub mod exec;
pub mod group;
pub mod instance;
pub mod instance_destroy;
pub mod instance_ensure;
pub mod instance_status;
pub mod plan;
pub mod release_build;
pub mod runs;
pub mod target;
