//! berth's default rules: one component spec and the site config in, Kubernetes objects out.
//!
//! The logic is plain Rust over the WIT records, so it is unit-tested natively and a site
//! can reuse it as a library: implement [`Rules`] to change naming or labelling, keep the
//! rest, add objects of its own ([`Rules::extra_objects`]), and export it with
//! [`export_rules!`]. The wasm export glue lives in `component`.

mod alloc;
mod component;
mod container;
mod deployment;
mod error;
mod labels;
mod model;
mod msb;
mod ports;
mod probe;
mod quantity;
mod rules;
mod service;
mod sidecars;
mod volumes;

pub use alloc::FreeLists;
#[doc(hidden)]
pub use component::bindings as __bindings;
pub use component::{K8sObject, SiteConfig, Spec, SpecError, cluster, types};
pub use error::{FieldError, Result};
pub use labels::Labels;
pub use ports::{PortMapping, Protocol, parse_port};
pub use probe::parse_interval;
pub use rules::{
    DefaultRules, ExtensionsOf, Rules, Workload, build, defaults, extensions, object,
    site_extensions,
};
/// The JSON library of [`object`] and [`extensions`], for a site's crate (`json!`).
pub use serde_json;
