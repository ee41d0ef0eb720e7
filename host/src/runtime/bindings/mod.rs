//! The host's bindings, one private module per contract version.

pub mod v0_1;
pub mod v0_2;
