//! berth: turn component specs into Kubernetes objects through a sandboxed rules
//! component, and operate them on a cluster.

pub mod cli;
pub mod cluster;
pub mod error;
pub mod objects;
pub mod render;
pub mod report;
pub mod runtime;
pub mod spec;

pub use error::Error;
