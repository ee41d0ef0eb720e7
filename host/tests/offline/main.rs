//! The tests that need neither a control plane nor a registry: the contract versions, the
//! render as a user runs it, the rules runtime, hostile components against the sandbox, a
//! site's own rules. One binary (`cargo xtask test --quick` runs it): each test binary links
//! wasmtime and kube again.

mod contract;
mod render;
mod runtime;
mod sandbox;
mod site_rules;
