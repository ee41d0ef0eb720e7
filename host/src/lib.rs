//! berth: turn component specs into Kubernetes objects through a sandboxed rules
//! component, and operate them on a cluster.
//!
//! The way in: load a [`Rules`] component, build a [`Spec`] (in code, with [`Spec::parse`]
//! or [`load_specs`]), [`Rules::render`] it into checked [`Rendered`] objects, and
//! [`Cluster::deploy`] them. Each layer has its own error type: [`InputError`] (spec and
//! site-config text), [`RulesError`] (loading and running the rules), [`RenderError`]
//! (the rules' refusal, objects the host refuses), [`ClusterError`] (cluster operations),
//! [`OciError`] (rules components in registries).
//! `examples/embed.rs` renders a spec held in memory and deploys it.
//!
//! Every module is private; what is public is listed here, grouped by layer.

#![warn(missing_docs)]

mod cache_dir;
mod capabilities;
mod cluster;
mod controller;
mod kinds;
mod objects;
mod oci;
mod one_line;
mod render;
mod runtime;
mod selector;
mod spec;

// The input: a component spec and the site config, as text or built in code.
pub use spec::{
    EnvValue, Filebeat, InputError, LogInfo, MsbService, Origin, Probe, ResourceAmounts, Resources,
    SiteConfig, Spec, Tls, TlsInfo, Volume, VolumeSource, load_site, load_spec, load_specs,
    parse_site, parse_spec, parse_specs,
};

// The rules: loaded, sandboxed, run; what a cluster serves, as they see it.
pub use capabilities::Capabilities;
pub use runtime::{
    BuildResult, LimitError, Limits, MemoryExceeded, RawObject, Refusal, Rules, RulesError,
    RulesOptions, Source,
};

// What the rules built, as the host checked it.
pub use kinds::{AllowedKinds, DEFAULT_KINDS, KindName, KindNameError};
pub use objects::{InvalidObject, Object, ObjectRef, Problem, Rendered};
pub use render::{Built, Format, FormatError, RenderError, Secrets, format_rendered};
pub use selector::SelectorError;

// Operating components on a cluster.
pub use cluster::{
    Action, COMPONENT_LABEL, CONTROLLED_BY_ANNOTATION, Change, Cluster, ClusterError,
    ComponentSummary, Connection, DeployReport, ExecLine, ExecOutcome, Gate, MANAGED_BY,
    MANAGED_BY_LABEL, ObjectDiff, RENDERED_HASH_ANNOTATION, RULES_DIGEST_ANNOTATION, Revision,
    Rollback, RolloutState, Scaled, Scope, Sent, Status, Stream, TakenOver, UndeployReport,
    UndoReport, Upgraded,
};

// The controller: Components declared in the cluster, kept as declared.
pub use controller::{
    Component, ComponentSpec, ComponentStatus, Condition, Controller, ControllerError,
    DEFAULT_LEASE_DURATION, DELETION_POLICY, FINALIZER, Happening, Install, Inventory, LeaseConfig,
    Metrics, RECONCILE_REQUESTED_AT, Remediation, SERVICE_ACCOUNT, crd, rbac,
};

// Rules components in OCI registries.
pub use oci::{
    ComponentInfo, Credentials, OciError, Pulled, Pushed, Reference, ReferenceError, Registry,
    RegistryOptions,
};

/// What benchmarks, fuzz targets and tests reach into; not part of the API.
#[doc(hidden)]
pub mod hooks {
    pub use crate::capabilities::NEWEST_KNOWN_VERSION;
    pub use crate::cluster::applyset_id;
    pub use crate::oci::sha256;
    pub use crate::one_line::one_line;
    pub use crate::runtime::{DEFAULT_RULES, instance_allocation};
}
