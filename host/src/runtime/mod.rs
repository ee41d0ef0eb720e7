//! Running a rules component: engine, compiled-code cache, a sandboxed store with limits,
//! and the call into `build`.

mod bindings;
mod cache;
mod error;
mod limits;
mod sandbox;
mod world;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine, Store, Trap};

pub use error::RulesError;
pub use limits::{LimitError, Limits, MAX_DEADLINE, MAX_MEMORY, MIN_DEADLINE, MIN_MEMORY};
pub use sandbox::MemoryExceeded;
use sandbox::Sandbox;
pub use world::{PACKAGE, SUPPORTED_VERSIONS, supported_worlds};

use crate::spec::{SiteConfig, Spec};

/// The default rules, built from `guest/` and embedded in the binary.
pub static DEFAULT_RULES: &[u8] = include_bytes!(env!("BERTH_DEFAULT_RULES"));
/// Their SHA-256, computed at build time.
const DEFAULT_RULES_SHA256: &str = env!("BERTH_DEFAULT_RULES_SHA256");

/// How often the deadline clock ticks.
const TICK: Duration = Duration::from_millis(10);

/// How rules are loaded and run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// What one call may use: `--rules-deadline`, `--rules-memory`.
    pub limits: Limits,
    /// Where compiled components are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
}

impl Default for Options {
    /// Default limits; the cache in `$BERTH_CACHE_DIR`, else `$XDG_CACHE_HOME/berth`, else
    /// `~/.cache/berth` (`BERTH_CACHE_DIR=""`: no cache).
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            cache_dir: cache::default_dir(),
        }
    }
}

impl Options {
    /// Wall time one build may take (10 ms to 10 min, checked when the rules load).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.limits.deadline = deadline;
        self
    }

    /// Linear memory the component may use, in bytes (1 MiB to 4 GiB, checked when the
    /// rules load).
    pub fn memory(mut self, bytes: usize) -> Self {
        self.limits.memory = bytes;
        self
    }

    /// Where compiled components are cached; `None` compiles on every load.
    pub fn cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache_dir = dir;
        self
    }
}

/// Where a rules component came from, to name it in errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The rules embedded in berth.
    Default,
    /// A component file given with `--rules`.
    File(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("default rules"),
            Source::File(path) => write!(f, "rules component {}", path.display()),
        }
    }
}

/// A spec the rules refused: the field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Refusal {
    /// Path of the offending field (`ports[1]`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// The outcome of one call: objects, or the rules' refusal of the spec.
pub type BuildResult = Result<Vec<RawObject>, Refusal>;

/// An object as the rules returned it, before berth checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawObject {
    /// `apps/v1`, `v1`, …
    pub api_version: String,
    /// `Deployment`, `Service`, …
    pub kind: String,
    /// The name the rules declared.
    pub name: String,
    /// The object, as JSON.
    pub json: String,
}

/// A loaded rules component, ready to build objects.
///
/// One instance is kept and reused across calls (a call costs microseconds, an instance
/// tens of them); a trap discards it and the next call starts from a fresh one.
pub struct Rules {
    source: Source,
    limits: Limits,
    pre: bindings::RulesPre<Sandbox>,
    live: Option<(Store<Sandbox>, bindings::Rules)>,
    digest: String,
    from_cache: bool,
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rules")
            .field("source", &self.source)
            .field("limits", &self.limits)
            .field("digest", &self.digest)
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
        world::check(&engine, &component).map_err(|mismatch| match mismatch {
            world::Mismatch::Version(found) => RulesError::OtherVersion {
                source_name: source.clone(),
                found,
            },
            world::Mismatch::MissingExport(exports) => RulesError::MissingExport {
                source_name: source.clone(),
                exports,
            },
        })?;
        let mut linker = Linker::new(&engine);
        sandbox::add_to_linker(&mut linker).map_err(RulesError::Engine)?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(|e| RulesError::Imports {
                source_name: source.clone(),
                source: e,
            })?;
        let pre = bindings::RulesPre::new(instance_pre).map_err(|e| RulesError::World {
            source_name: source.clone(),
            source: e,
        })?;
        Ok(Self {
            source,
            limits: options.limits,
            pre,
            live: None,
            digest: digest.to_owned(),
            from_cache,
        })
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

    /// Run the rules' `build` for `spec` in `namespace`: the objects as returned, or the
    /// rules' refusal. Use [`Rules::render`] for objects berth has checked.
    pub fn build(
        &mut self,
        spec: &Spec,
        site: &SiteConfig,
        namespace: &str,
    ) -> Result<BuildResult, RulesError> {
        let spec = match bindings::spec(spec) {
            Ok(spec) => spec,
            Err(field) => return Ok(Err(self.beyond_contract(field, "the spec"))),
        };
        let site = match bindings::site(site) {
            Ok(site) => site,
            Err(field) => return Ok(Err(self.beyond_contract(field, "the site config"))),
        };
        let (mut store, rules) = match self.live.take() {
            Some(live) => live,
            None => self.instantiate()?,
        };
        store.set_epoch_deadline(ticks(self.limits.deadline));
        let stderr_before = store.data().stderr_len();
        match rules.call_build(&mut store, &spec, &site, namespace) {
            Ok(result) => {
                self.live = Some((store, rules));
                let objects: Vec<RawObject> = match result {
                    Ok(objects) => objects
                        .into_iter()
                        .map(|o| RawObject {
                            api_version: o.api_version,
                            kind: o.kind,
                            name: o.name,
                            json: o.json,
                        })
                        .collect(),
                    Err(e) => {
                        return Ok(Err(Refusal {
                            field: e.field,
                            message: e.message,
                        }));
                    }
                };
                let size: usize = objects.iter().map(|o| o.json.len()).sum();
                if size > self.limits.output {
                    return Err(RulesError::OutputTooLarge {
                        source_name: self.source.clone(),
                        size,
                        limit: self.limits.output,
                    });
                }
                Ok(Ok(objects))
            }
            // The instance is dropped here: after a trap its state is not to be trusted.
            Err(err) => {
                let stderr = store.data().stderr_since(stderr_before);
                Err(self.failure(err, stderr))
            }
        }
    }

    /// The refusal of a key this component's contract version has no place for.
    fn beyond_contract(&self, field: String, whose: &str) -> Refusal {
        Refusal {
            message: format!(
                "{whose} uses it, but the component ({}) is built for {PACKAGE}@0.1.0, which has no place for it (it needs {PACKAGE}@0.2.0)",
                self.source
            ),
            field,
        }
    }

    /// The error for a call that did not return: which limit stopped it, or the trap.
    fn failure(&self, err: wasmtime::Error, stderr: String) -> RulesError {
        let source_name = self.source.clone();
        if err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            RulesError::Deadline {
                source_name,
                deadline: self.limits.deadline,
            }
        } else if let Some(exceeded) = err.downcast_ref::<MemoryExceeded>() {
            RulesError::Memory {
                source_name,
                limit: self.limits.memory,
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

    fn instantiate(&self) -> Result<(Store<Sandbox>, bindings::Rules), RulesError> {
        let mut store = Store::new(self.pre.engine(), Sandbox::new(self.limits.memory));
        store.limiter(|sandbox| sandbox.limiter());
        store.set_epoch_deadline(ticks(self.limits.deadline));
        let rules = match self.pre.instantiate(&mut store) {
            Ok(rules) => rules,
            Err(err) => {
                let stderr = store.data().stderr_since(0);
                return Err(match self.failure(err, stderr) {
                    RulesError::Trap { trap, .. } => RulesError::Instantiate {
                        source_name: self.source.clone(),
                        source: trap,
                    },
                    limit => limit,
                });
            }
        };
        Ok((store, rules))
    }
}

fn ticks(deadline: Duration) -> u64 {
    (deadline.as_millis() / TICK.as_millis()).max(1) as u64 + 1
}

/// The process-wide engine, with one thread ticking its epoch for deadlines. Behind a
/// mutex, not a racy check-then-set: two tickers would halve every deadline.
fn engine() -> Result<Engine, RulesError> {
    static ENGINE: Mutex<Option<Engine>> = Mutex::new(None);
    let mut slot = ENGINE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(engine) = slot.as_ref() {
        return Ok(engine.clone());
    }
    let mut config = Config::new();
    config.wasm_component_model(true).epoch_interruption(true);
    let engine = Engine::new(&config).map_err(RulesError::Engine)?;
    let weak = Arc::new(engine.weak());
    std::thread::Builder::new()
        .name("berth-rules-deadline".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .map_err(|e| RulesError::Engine(e.into()))?;
    *slot = Some(engine.clone());
    Ok(engine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_time_hash_is_the_hash_of_the_embedded_rules() {
        // A stale hash would load another component's compiled code from the cache.
        assert_eq!(DEFAULT_RULES_SHA256, cache::digest(DEFAULT_RULES));
    }
}
