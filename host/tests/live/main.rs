//! The tests against a local control plane (and a real registry): the lifecycle of a
//! component, every verb, the controller, kinds beyond the defaults, fleets, faults of the API server and
//! of the network, rules from a registry, Python rules. One binary: each test binary links
//! wasmtime and kube again.

mod common;

mod controller;
mod faults;
mod fleet;
mod kinds;
mod lifecycle;
mod oci;
mod proxy_faults;
mod python_rules;
mod verbs;
