//! The binding site of the host for `berth:rules@0.2.0`: the world `rules` (whose
//! `cluster` import berth answers from the capabilities of the call, and whose `defaults`
//! import it serves from its embedded default rules) and the world `default-rules` (those
//! default rules, serving it). The generated types stay in here;
//! berth's own records are converted at the call.

use std::time::Instant;

use wasmtime::Store;
use wasmtime::component::{HasSelf, Linker};

use super::super::sandbox::Sandbox;
use crate::spec;

mod rules_world {
    wasmtime::component::bindgen!({
        path: "../wit/berth-rules@0.2.0",
        world: "rules",
        // A nested build that runs out of time or memory stops the caller too.
        imports: { default: trappable },
    });
}

mod default_world {
    wasmtime::component::bindgen!({
        path: "../wit/berth-rules@0.2.0",
        world: "default-rules",
        with: {
            "berth:rules/types@0.2.0": super::rules_world::berth::rules::types,
            "berth:rules/cluster@0.2.0": super::rules_world::berth::rules::cluster,
        },
    });
}

use rules_world::berth::rules::types as wit;

pub use default_world::DefaultRulesPre;
pub use rules_world::RulesPre;
pub use wit::{K8sObject, SpecError};

/// The embedded default rules, ready to run for a component's `defaults` import.
pub struct DefaultsServer {
    pre: DefaultRulesPre<Sandbox>,
}

impl DefaultsServer {
    /// Serve `defaults` from the component behind `pre`.
    pub fn new(pre: DefaultRulesPre<Sandbox>) -> Self {
        Self { pre }
    }
}

/// Link the `cluster` and `defaults` imports (WASI is linked by the sandbox).
pub fn add_to_linker(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    rules_world::berth::rules::cluster::add_to_linker::<Sandbox, HasSelf<Sandbox>>(linker, |s| s)?;
    rules_world::berth::rules::defaults::add_to_linker::<Sandbox, HasSelf<Sandbox>>(linker, |s| s)
}

impl rules_world::berth::rules::cluster::Host for Sandbox {
    fn kube_version(&mut self) -> wasmtime::Result<String> {
        Ok(self.capabilities.kube_version.clone())
    }

    fn serves(&mut self, api_version: String) -> wasmtime::Result<bool> {
        Ok(self.capabilities.serves(&api_version))
    }
}

impl rules_world::berth::rules::defaults::Host for Sandbox {
    /// The default rules' objects, built in a store of their own that gets what is left of
    /// the caller's deadline and memory.
    fn build(
        &mut self,
        spec: wit::Spec,
        site: wit::SiteConfig,
        namespace: String,
    ) -> wasmtime::Result<Result<Vec<wit::K8sObject>, wit::SpecError>> {
        let Some(server) = self.defaults.clone() else {
            return Err(wasmtime::Error::msg(
                "the default rules called their own `defaults` import",
            ));
        };
        let remaining = self.deadline.map_or(std::time::Duration::ZERO, |at| {
            at.saturating_duration_since(Instant::now())
        });
        let mut nested = Sandbox::new(self.memory_left());
        nested.deadline = self.deadline;
        nested.capabilities = self.capabilities.clone();
        let mut store = Store::new(server.pre.engine(), nested);
        store.limiter(|sandbox| sandbox.limiter());
        store.set_epoch_deadline(super::super::ticks(remaining));
        let instance = server.pre.instantiate(&mut store)?;
        instance
            .berth_rules_defaults()
            .call_build(&mut store, &spec, &site, &namespace)
    }
}

// The conversion is shared, as text, with the render benchmark's raw bindings of the
// same world: it is written against `wit` and `spec` in scope.
include!("records_v0_2.in.rs");
