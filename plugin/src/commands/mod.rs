//! One file per Nushell command.

pub mod apply;
pub mod plan;
