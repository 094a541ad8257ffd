//! One file per Nushell command.

pub mod apply;
pub mod down;
pub mod plan;
pub mod runs;
