//! One file per Nushell command.

pub mod apply;
pub mod clean;
pub mod deployment;
pub mod deployment_audit;
pub mod deployment_audit_add;
pub mod deployment_facts;
pub mod deployment_finish;
pub mod deployment_lock;
pub mod deployment_remove;
pub mod deployment_unlock;
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
pub mod release_stale;
pub mod runs;
pub mod target;
