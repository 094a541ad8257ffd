//! One file per Nushell command.

pub mod apply;
pub mod clean;
pub mod down;
pub mod plan;
pub mod release_build;
pub mod runs;
