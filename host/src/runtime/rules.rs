//! A loaded rules component: bound to the world of its contract version, one reused
//! instance, and the call into `build` with its limits; the default rules served to a
//! contract 0.2 component's `defaults` import.

use std::path::Path;
use std::sync::{Arc, Mutex};

use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store, Trap};

use super::bindings::{v0_1, v0_2};
use super::sandbox::{self, MemoryExceeded, Sandbox};
use super::{
    BuildResult, DEFAULT_RULES, DEFAULT_RULES_SHA256, Limits, Options, PACKAGE, RawObject, Refusal,
    RulesError, Source, cache, engine, ticks, world,
};
use crate::capabilities::Capabilities;
use crate::spec::{SiteConfig, Spec};

/// A loaded rules component, ready to build objects.
///
/// One instance is kept and reused across calls (a call costs microseconds, an instance
/// tens of them); a trap discards it and the next call starts from a fresh one.
pub struct Rules {
    source: Source,
    limits: Limits,
    bound: Bound,
    digest: String,
    from_cache: bool,
}

/// The component bound to the world of its contract version, and its live instance.
enum Bound {
    V0_1 {
        pre: v0_1::RulesPre<Sandbox>,
        live: Option<(Store<Sandbox>, v0_1::Rules)>,
    },
    V0_2 {
        pre: v0_2::RulesPre<Sandbox>,
        live: Option<(Store<Sandbox>, v0_2::Rules)>,
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
    pub fn default_rules(options: &Options) -> Result<Self, RulesError> {
        Self::load(
            Source::Default,
            DEFAULT_RULES,
            DEFAULT_RULES_SHA256,
            options,
        )
    }

    /// Load the component at `path`.
    pub fn from_file(path: &Path, options: &Options) -> Result<Self, RulesError> {
        let bytes = std::fs::read(path).map_err(|source| RulesError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(Source::File(path.to_owned()), &bytes, options)
    }

    /// Load a component from its bytes.
    pub fn from_bytes(source: Source, bytes: &[u8], options: &Options) -> Result<Self, RulesError> {
        Self::load(source, bytes, &cache::digest(bytes), options)
    }

    fn load(
        source: Source,
        bytes: &[u8],
        digest: &str,
        options: &Options,
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
        let world_error = |e| RulesError::World {
            source_name: source.clone(),
            version,
            source: e,
        };
        let bound = if version == "0.1.0" {
            let instance_pre = link(&engine, &component, &source, false)?;
            Bound::V0_1 {
                pre: v0_1::RulesPre::new(instance_pre).map_err(world_error)?,
                live: None,
            }
        } else {
            let defaults = defaults_server(&engine, options)?;
            let instance_pre = link(&engine, &component, &source, true)?;
            Bound::V0_2 {
                pre: v0_2::RulesPre::new(instance_pre).map_err(world_error)?,
                live: None,
                defaults,
            }
        };
        Ok(Self {
            source,
            limits: options.limits,
            bound,
            digest: digest.to_owned(),
            from_cache,
        })
    }

    /// The version of `berth:rules` the component was built for (`0.1.0`, `0.2.0`).
    pub fn contract_version(&self) -> &'static str {
        match self.bound {
            Bound::V0_1 { .. } => "0.1.0",
            Bound::V0_2 { .. } => "0.2.0",
        }
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
        &mut self,
        spec: &Spec,
        site: &SiteConfig,
        capabilities: &Capabilities,
        namespace: &str,
    ) -> Result<BuildResult, RulesError> {
        let limits = self.limits;
        let source = &self.source;
        let called = match &mut self.bound {
            Bound::V0_1 { pre, live } => {
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
                let new = || {
                    fresh(pre.engine(), source, &limits, None, |store| {
                        pre.instantiate(store)
                    })
                };
                call(live, new, &limits, |rules, store| {
                    let result = rules.call_build(store, &spec, &site, namespace)?;
                    Ok(result
                        .map(|objects| objects.into_iter().map(RawObject::from).collect())
                        .map_err(Refusal::from))
                })?
            }
            Bound::V0_2 {
                pre,
                live,
                defaults,
            } => {
                let (spec, site) = (v0_2::spec(spec), v0_2::site(site));
                let new = || {
                    let engine = pre.engine();
                    fresh(engine, source, &limits, Some(defaults), |store| {
                        pre.instantiate(store)
                    })
                };
                call(live, new, &limits, |rules, store| {
                    // What the `cluster` import answers during this call; copied only when
                    // it changes, so a batch of builds for one cluster pays nothing for it.
                    if *store.data().capabilities != *capabilities {
                        store.data_mut().capabilities = Arc::new(capabilities.clone());
                    }
                    let result = rules.call_build(store, &spec, &site, namespace)?;
                    Ok(result
                        .map(|objects| objects.into_iter().map(RawObject::from).collect())
                        .map_err(Refusal::from))
                })?
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

/// One call on the reused instance, made first if there is none: what the component
/// returned, or its trap with what it wrote to stderr meanwhile. After a trap the instance
/// is dropped: its state is not to be trusted.
fn call<R>(
    live: &mut Option<(Store<Sandbox>, R)>,
    new: impl FnOnce() -> Result<(Store<Sandbox>, R), RulesError>,
    limits: &Limits,
    build: impl FnOnce(&R, &mut Store<Sandbox>) -> wasmtime::Result<BuildResult>,
) -> Result<Result<BuildResult, (wasmtime::Error, String)>, RulesError> {
    let (mut store, rules) = match live.take() {
        Some(live) => live,
        None => new()?,
    };
    arm(&mut store, limits);
    let before = store.data().stderr_len();
    match build(&rules, &mut store) {
        Ok(result) => {
            *live = Some((store, rules));
            Ok(Ok(result))
        }
        Err(err) => Ok(Err((err, store.data().stderr_since(before)))),
    }
}

/// A new instance in a new store, or why it could not be made.
fn fresh<R>(
    engine: &Engine,
    source: &Source,
    limits: &Limits,
    defaults: Option<&Arc<v0_2::DefaultsServer>>,
    instantiate: impl FnOnce(&mut Store<Sandbox>) -> wasmtime::Result<R>,
) -> Result<(Store<Sandbox>, R), RulesError> {
    let mut store = new_store(engine, limits, defaults);
    let rules =
        instantiate(&mut store).map_err(|err| instantiate_error(source, limits, err, &store))?;
    Ok((store, rules))
}

/// A store for one instance: the sandbox, its memory cap, and the default rules for a
/// contract 0.2 component's `defaults` import.
fn new_store(
    engine: &Engine,
    limits: &Limits,
    defaults: Option<&Arc<v0_2::DefaultsServer>>,
) -> Store<Sandbox> {
    let mut sandbox = Sandbox::new(limits.memory);
    sandbox.defaults = defaults.cloned();
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
    options: &Options,
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
