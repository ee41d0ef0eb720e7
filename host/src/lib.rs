//! berth: turn component specs into Kubernetes objects through a sandboxed rules
//! component, and operate them on a cluster.
//!
//! The way in: load a [`Rules`] component, build a [`Spec`] (in code or with
//! [`Spec::parse`]), [`Rules::render`] it into checked [`Rendered`] objects, and
//! [`Cluster::deploy`] them. Each layer has its own error type: [`InputError`] (spec and
//! site-config text), [`RulesError`] (loading and running the rules), [`RenderError`]
//! (the rules' refusal, objects the host refuses), [`ClusterError`] (cluster operations),
//! [`oci::OciError`] (rules components in registries).
//! `examples/embed.rs` renders a spec held in memory and deploys it.

#![warn(missing_docs)]

mod cache_dir;
pub mod capabilities;
pub mod cluster;
pub mod kinds;
pub mod objects;
pub mod oci;
pub mod render;
pub mod runtime;
pub mod selector;
pub mod spec;

pub use capabilities::Capabilities;
pub use cluster::{Cluster, ClusterError, Connection};
pub use kinds::{AllowedKinds, KindName};
pub use objects::{InvalidObject, ObjectRef, Rendered};
pub use render::{Format, RenderError};
pub use runtime::{Limits, Rules, RulesError, RulesOptions, Source};
pub use spec::{InputError, Origin, SiteConfig, Spec};
