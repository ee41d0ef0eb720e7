//! A loaded rules component: bound to the world of its contract version, a fresh instance
//! for every build, and the call into `build` with its limits; the default rules served to
//! a contract 0.2 component's `defaults` import.

use std::path::Path;
use std::sync::{Arc, Mutex};

use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store, Trap};

use super::bindings::{v0_1, v0_2};
use super::sandbox::{self, MemoryExceeded, Sandbox};
use super::{
    BuildResult, DEFAULT_RULES, DEFAULT_RULES_SHA256, Limits, PACKAGE, RawObject, Refusal,
    RulesError, RulesOptions, Source, cache, engine, ticks, world,
};
use crate::capabilities::Capabilities;
use crate::spec::{SiteConfig, Spec};

/// A loaded rules component, ready to build objects; shared by reference across threads
/// and tasks (`Send + Sync`, every build `&self`).
///
/// Every build runs in a fresh store and instance, made from a pre-linked `InstancePre`:
/// nothing one build leaves in the component's memory or globals reaches the next (another
/// spec, perhaps another team's), and a trap leaves nothing behind.
pub struct Rules {
    source: Source,
    limits: Limits,
    bound: Bound,
    digest: String,
    from_cache: bool,
    /// Bytes of the component.
    size: usize,
    /// The component's imports and exports, for a registry's artifact config.
    interfaces: crate::oci::ComponentInfo,
}

/// The component bound to the world of its contract version.
enum Bound {
    V0_1 {
        pre: v0_1::RulesPre<Sandbox>,
    },
    V0_2 {
        pre: v0_2::RulesPre<Sandbox>,
        defaults: Arc<v0_2::DefaultsServer>,
    },
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rules")
            .field("source", &self.source)
            .field("limits", &self.limits)
            .field("digest", &self.digest)
            .field("contract", &self.contract_version())
            .field("from_cache", &self.from_cache)
            .finish_non_exhaustive()
    }
}

impl Rules {
    /// Load the embedded default rules.
    pub fn default_rules(options: &RulesOptions) -> Result<Self, RulesError> {
        Self::load(
            Source::Default,
            DEFAULT_RULES,
            DEFAULT_RULES_SHA256,
            options,
        )
    }

    /// Load the component at `path`.
    pub fn from_file(path: &Path, options: &RulesOptions) -> Result<Self, RulesError> {
        let bytes = std::fs::read(path).map_err(|source| RulesError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(Source::File(path.to_owned()), &bytes, options)
    }

    /// Load a component pulled from a registry; its digest was checked by the pull.
    pub fn from_pulled(
        pulled: &crate::oci::Pulled,
        options: &RulesOptions,
    ) -> Result<Self, RulesError> {
        let digest = (pulled.component_digest)
            .strip_prefix("sha256:")
            .unwrap_or(&pulled.component_digest);
        let source = Source::Oci(Box::new(pulled.reference.clone()));
        Self::load(source, &pulled.bytes, digest, options)
    }

    /// Load a component from its bytes.
    pub fn from_bytes(
        source: Source,
        bytes: &[u8],
        options: &RulesOptions,
    ) -> Result<Self, RulesError> {
        Self::load(source, bytes, &cache::digest(bytes), options)
    }

    fn load(
        source: Source,
        bytes: &[u8],
        digest: &str,
        options: &RulesOptions,
    ) -> Result<Self, RulesError> {
        options.limits.check().map_err(RulesError::Limits)?;
        let engine = engine()?;
        let (component, from_cache) =
            cache::load(&engine, bytes, digest, options.cache_dir.as_deref()).map_err(
                |source_err| RulesError::Compile {
                    source_name: source.clone(),
                    source: source_err,
                },
            )?;
        let version = world::check(&engine, &component).map_err(|mismatch| match mismatch {
            world::Mismatch::Version(found) => RulesError::OtherVersion {
                source_name: source.clone(),
                found,
            },
            world::Mismatch::MissingExport(exports) => RulesError::MissingExport {
                source_name: source.clone(),
                exports,
            },
        })?;
        let (imports, exports) = world::interfaces(&engine, &component);
        let interfaces = crate::oci::ComponentInfo { imports, exports };
        let world_error = |e| RulesError::World {
            source_name: source.clone(),
            version,
            source: e,
        };
        let bound = if version == "0.1.0" {
            let instance_pre = link(&engine, &component, &source, false)?;
            Bound::V0_1 {
                pre: v0_1::RulesPre::new(instance_pre).map_err(world_error)?,
            }
        } else {
            let defaults = defaults_server(&engine, options)?;
            let instance_pre = link(&engine, &component, &source, true)?;
            Bound::V0_2 {
                pre: v0_2::RulesPre::new(instance_pre).map_err(world_error)?,
                defaults,
            }
        };
        Ok(Self {
            source,
            limits: options.limits,
            bound,
            digest: digest.to_owned(),
            from_cache,
            size: bytes.len(),
            interfaces,
        })
    }

    /// The world the component implements: `berth:rules/rules@0.2.0`.
    pub fn world(&self) -> String {
        super::world_name(self.contract_version())
    }

    /// The version of `berth:rules` the component was built for (`0.1.0`, `0.2.0`).
    pub fn contract_version(&self) -> &'static str {
        match self.bound {
            Bound::V0_1 { .. } => "0.1.0",
            Bound::V0_2 { .. } => "0.2.0",
        }
    }

    /// The component's size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The component's imports and exports by name (WASI's included), as a registry
    /// artifact describes it.
    pub fn interfaces(&self) -> &crate::oci::ComponentInfo {
        &self.interfaces
    }

    /// Where these rules came from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The SHA-256 of the component's bytes, in hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Whether the compiled code came from the on-disk cache (no compilation).
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }

    /// The limits each call runs under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Run the rules' `build` for `spec` in `namespace` of a cluster that serves
    /// `capabilities`: the objects as returned, or the rules' refusal. Use
    /// [`Rules::render`] for objects berth has checked.
    pub fn build(
        &self,
        spec: &Spec,
        site: &SiteConfig,
        capabilities: &Capabilities,
        namespace: &str,
    ) -> Result<BuildResult, RulesError> {
        self.build_shared(spec, site, &sandbox::shared(capabilities), namespace)
    }

    /// [`Rules::build`] with capabilities shared by the stores of a batch for one cluster
    /// rather than copied into each.
    pub(crate) fn build_shared(
        &self,
        spec: &Spec,
        site: &SiteConfig,
        capabilities: &Arc<Capabilities>,
        namespace: &str,
    ) -> Result<BuildResult, RulesError> {
        let limits = self.limits;
        let source = &self.source;
        let capabilities = capabilities.clone();
        let called = match &self.bound {
            Bound::V0_1 { pre } => {
                let spec = match v0_1::spec(spec) {
                    Ok(spec) => spec,
                    Err(field) => return Ok(Err(beyond_contract(source, field, "the spec"))),
                };
                let site = match v0_1::site(site) {
                    Ok(site) => site,
                    Err(field) => {
                        return Ok(Err(beyond_contract(source, field, "the site config")));
                    }
                };
                let mut store = new_store(pre.engine(), &limits, None, capabilities);
                let rules = instantiate(&mut store, source, &limits, |s| pre.instantiate(s))?;
                call(&mut store, &limits, |store| {
                    let result = rules.call_build(store, &spec, &site, namespace)?;
                    Ok(result
                        .map(|objects| objects.into_iter().map(RawObject::from).collect())
                        .map_err(Refusal::from))
                })
            }
            Bound::V0_2 { pre, defaults } => {
                let (spec, site) = (v0_2::spec(spec), v0_2::site(site));
                let mut store = new_store(pre.engine(), &limits, Some(defaults), capabilities);
                let rules = instantiate(&mut store, source, &limits, |s| pre.instantiate(s))?;
                call(&mut store, &limits, |store| {
                    let result = rules.call_build(store, &spec, &site, namespace)?;
                    Ok(result
                        .map(|objects| objects.into_iter().map(RawObject::from).collect())
                        .map_err(Refusal::from))
                })
            }
        };
        let objects: Vec<RawObject> = match called {
            Ok(Ok(objects)) => objects,
            Ok(Err(refusal)) => return Ok(Err(refusal)),
            Err((err, stderr)) => return Err(failure(&self.source, &limits, err, stderr)),
        };
        let size: usize = objects.iter().map(|o| o.json.len()).sum();
        if size > limits.output {
            return Err(RulesError::OutputTooLarge {
                source_name: self.source.clone(),
                size,
                limit: limits.output,
            });
        }
        Ok(Ok(objects))
    }
}

impl From<v0_1::K8sObject> for RawObject {
    fn from(o: v0_1::K8sObject) -> Self {
        RawObject {
            api_version: o.api_version,
            kind: o.kind,
            name: o.name,
            json: o.json,
        }
    }
}

impl From<v0_1::SpecError> for Refusal {
    fn from(e: v0_1::SpecError) -> Self {
        Refusal {
            field: e.field,
            message: e.message,
        }
    }
}

impl From<v0_2::SpecError> for Refusal {
    fn from(e: v0_2::SpecError) -> Self {
        Refusal {
            field: e.field,
            message: e.message,
        }
    }
}

impl From<v0_2::K8sObject> for RawObject {
    fn from(o: v0_2::K8sObject) -> Self {
        RawObject {
            api_version: o.api_version,
            kind: o.kind,
            name: o.name,
            json: o.json,
        }
    }
}

/// The call into a fresh instance: what the component returned, or its trap with what it
/// wrote to stderr meanwhile.
fn call(
    store: &mut Store<Sandbox>,
    limits: &Limits,
    build: impl FnOnce(&mut Store<Sandbox>) -> wasmtime::Result<BuildResult>,
) -> Result<BuildResult, (wasmtime::Error, String)> {
    // Instantiating had a deadline of its own; the build gets the whole of its own.
    arm(store, limits);
    let before = store.data().stderr_len();
    build(store).map_err(|err| (err, store.data().stderr_since(before)))
}

/// A new instance in `store`, or why it could not be made.
fn instantiate<R>(
    store: &mut Store<Sandbox>,
    source: &Source,
    limits: &Limits,
    instantiate: impl FnOnce(&mut Store<Sandbox>) -> wasmtime::Result<R>,
) -> Result<R, RulesError> {
    instantiate(store).map_err(|err| instantiate_error(source, limits, err, store))
}

/// A store for one build: the sandbox, its memory cap, what the target cluster serves,
/// and the default rules for a contract 0.2 component's `defaults` import.
fn new_store(
    engine: &Engine,
    limits: &Limits,
    defaults: Option<&Arc<v0_2::DefaultsServer>>,
    capabilities: Arc<Capabilities>,
) -> Store<Sandbox> {
    let mut sandbox = Sandbox::new(limits.memory);
    sandbox.defaults = defaults.cloned();
    sandbox.capabilities = capabilities;
    let mut store = Store::new(engine, sandbox);
    store.limiter(|sandbox| sandbox.limiter());
    arm(&mut store, limits);
    store
}

/// Start the deadline of one call (instantiating counts as one).
fn arm(store: &mut Store<Sandbox>, limits: &Limits) {
    store.set_epoch_deadline(ticks(limits.deadline));
    store.data_mut().deadline = Some(std::time::Instant::now() + limits.deadline);
}

/// A component linked into the sandbox (and, for contract 0.2, the `defaults` import).
fn link(
    engine: &Engine,
    component: &Component,
    source: &Source,
    with_defaults: bool,
) -> Result<wasmtime::component::InstancePre<Sandbox>, RulesError> {
    let mut linker = Linker::new(engine);
    sandbox::add_to_linker(&mut linker).map_err(RulesError::Engine)?;
    if with_defaults {
        v0_2::add_to_linker(&mut linker).map_err(RulesError::Engine)?;
    }
    linker
        .instantiate_pre(component)
        .map_err(|e| RulesError::Imports {
            source_name: source.clone(),
            source: e,
        })
}

/// The embedded default rules, compiled and linked once per process, to serve the
/// `defaults` import of contract 0.2 components.
fn defaults_server(
    engine: &Engine,
    options: &RulesOptions,
) -> Result<Arc<v0_2::DefaultsServer>, RulesError> {
    static SERVER: Mutex<Option<Arc<v0_2::DefaultsServer>>> = Mutex::new(None);
    let mut slot = SERVER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(server) = slot.as_ref() {
        return Ok(server.clone());
    }
    let (component, _) = cache::load(
        engine,
        DEFAULT_RULES,
        DEFAULT_RULES_SHA256,
        options.cache_dir.as_deref(),
    )
    .map_err(|source| RulesError::Compile {
        source_name: Source::Default,
        source,
    })?;
    let instance_pre = link(engine, &component, &Source::Default, true)?;
    let pre = v0_2::DefaultRulesPre::new(instance_pre).map_err(|source| RulesError::World {
        source_name: Source::Default,
        version: "0.2.0",
        source,
    })?;
    let server = Arc::new(v0_2::DefaultsServer::new(pre));
    *slot = Some(server.clone());
    Ok(server)
}

/// The refusal of a key a contract 0.1.0 component has no place for.
fn beyond_contract(source: &Source, field: String, whose: &str) -> Refusal {
    Refusal {
        message: format!(
            "{whose} uses it, but the component ({source}) is built for {PACKAGE}@0.1.0, which has no place for it (it needs {PACKAGE}@0.2.0)"
        ),
        field,
    }
}

/// The error for a call that did not return: which limit stopped it, or the trap.
fn failure(source: &Source, limits: &Limits, err: wasmtime::Error, stderr: String) -> RulesError {
    let source_name = source.clone();
    if err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        RulesError::Deadline {
            source_name,
            deadline: limits.deadline,
        }
    } else if let Some(exceeded) = err.downcast_ref::<MemoryExceeded>() {
        RulesError::Memory {
            source_name,
            limit: limits.memory,
            source: *exceeded,
        }
    } else if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
        RulesError::Exit {
            source_name,
            code: exit.0,
        }
    } else {
        RulesError::Trap {
            source_name,
            stderr,
            trap: err,
        }
    }
}

/// The error for an instantiation that failed: a limit, or a trap in a start function.
fn instantiate_error(
    source: &Source,
    limits: &Limits,
    err: wasmtime::Error,
    store: &Store<Sandbox>,
) -> RulesError {
    match failure(source, limits, err, store.data().stderr_since(0)) {
        RulesError::Trap { trap, .. } => RulesError::Instantiate {
            source_name: source.clone(),
            source: trap,
        },
        limit => limit,
    }
}

// Embedders share one loaded component across threads and tasks.
const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<Rules>();
};
