//! Running a rules component: engine, compiled-code cache, a sandboxed store with limits,
//! and the call into `build`.

mod bindings;
mod cache;
mod limits;
mod sandbox;
mod world;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine, Store, Trap};

pub use bindings::wit;
pub use limits::{
    LimitError, Limits, MAX_DEADLINE, MAX_MEMORY, MIN_DEADLINE, MIN_MEMORY, parse_deadline,
    parse_memory,
};
pub use sandbox::MemoryExceeded;
use sandbox::Sandbox;
pub use world::{PACKAGE, SUPPORTED_VERSIONS, supported_worlds};

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
    /// Default limits; the cache in [`cache::default_dir`].
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            cache_dir: cache::default_dir(),
        }
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

/// Why rules could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The component file could not be read.
    #[error("cannot read rules component {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The engine could not be set up.
    #[error("cannot set up the wasm engine")]
    Engine(#[source] wasmtime::Error),
    /// The bytes are not a component, or it does not compile.
    #[error("{source_name}: not a valid wasm component")]
    Compile {
        source_name: Source,
        #[source]
        source: wasmtime::Error,
    },
    /// The component was built for another version of `berth:rules`.
    #[error(
        "{source_name}: built for {}@{found}; this berth supports {}",
        world::PACKAGE,
        supported_worlds()
    )]
    OtherVersion { source_name: Source, found: String },
    /// The component does not export the function `build`.
    #[error(
        "{source_name}: does not export the function `build` (its exports: {}); this berth supports {}",
        describe_exports(.exports),
        supported_worlds()
    )]
    MissingExport {
        source_name: Source,
        exports: Vec<String>,
    },
    /// The component's `build` has another type than the world's.
    #[error(
        "{source_name}: its `build` does not match the one of {} (the only world this berth supports)",
        supported_worlds()
    )]
    World {
        source_name: Source,
        #[source]
        source: wasmtime::Error,
    },
    /// The component imports something the sandbox does not provide.
    #[error(
        "{source_name}: imports something the rules sandbox does not provide (it offers WASI 0.2 with no capabilities)"
    )]
    Imports {
        source_name: Source,
        #[source]
        source: wasmtime::Error,
    },
    /// Instantiation failed (a trap in a start function).
    #[error("{source_name}: cannot be instantiated")]
    Instantiate {
        source_name: Source,
        #[source]
        source: wasmtime::Error,
    },
    /// The component ran past its deadline.
    #[error("{source_name}: build ran past its deadline of {deadline:?} and was stopped")]
    Deadline {
        source_name: Source,
        deadline: Duration,
    },
    /// The component tried to grow its memory past the cap.
    #[error(
        "{source_name}: build needed more than the memory limit of {} MiB and was stopped",
        limit >> 20
    )]
    Memory {
        source_name: Source,
        limit: usize,
        #[source]
        source: MemoryExceeded,
    },
    /// The component called `exit`.
    #[error("{source_name}: build called exit({code}) instead of returning")]
    Exit { source_name: Source, code: i32 },
    /// The component trapped (a panic, an abort). The message gives the trap and what the
    /// component wrote to stderr; the wasm backtrace is in `trap`, for the component's
    /// author, not in the message.
    #[error(
        "{source_name}: build failed inside the component ({}){}",
        trap.root_cause(),
        describe_stderr(.stderr)
    )]
    Trap {
        source_name: Source,
        stderr: String,
        trap: wasmtime::Error,
    },
    /// The component returned more than the output limit.
    #[error("{source_name}: returned {size} bytes of objects, more than the limit of {limit}")]
    OutputTooLarge {
        source_name: Source,
        size: usize,
        limit: usize,
    },
}

fn describe_exports(exports: &[String]) -> String {
    if exports.is_empty() {
        "none".into()
    } else {
        exports.join(", ")
    }
}

fn describe_stderr(stderr: &str) -> String {
    // Rust's hint about backtraces is for the component's author at a terminal, not for
    // berth's user: the component has no environment to set.
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.starts_with("note: run with `RUST_BACKTRACE=1`"))
        .collect();
    let stderr = lines.join("\n");
    let stderr = stderr.trim();
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
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
pub type BuildResult = Result<Vec<wit::K8sObject>, Refusal>;

/// A loaded rules component, ready to build objects.
///
/// One instance is kept and reused across calls (a call costs microseconds, an instance
/// tens of them); a trap discards it and the next call starts from a fresh one.
pub struct Rules {
    source: Source,
    limits: Limits,
    pre: bindings::RulesPre<Sandbox>,
    live: Option<(Store<Sandbox>, bindings::Rules)>,
    /// Whether the compiled code came from the on-disk cache.
    pub from_cache: bool,
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rules")
            .field("source", &self.source)
            .field("limits", &self.limits)
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
            from_cache,
        })
    }

    /// Where these rules came from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Build the objects for `spec` in `namespace`.
    pub fn build(
        &mut self,
        spec: &wit::Spec,
        site: &wit::SiteConfig,
        namespace: &str,
    ) -> Result<BuildResult, RulesError> {
        let (mut store, rules) = match self.live.take() {
            Some(live) => live,
            None => self.instantiate()?,
        };
        store.set_epoch_deadline(ticks(self.limits.deadline));
        let stderr_before = store.data().stderr_len();
        match rules.call_build(&mut store, spec, site, namespace) {
            Ok(result) => {
                self.live = Some((store, rules));
                let objects = match result {
                    Ok(objects) => objects,
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

/// The process-wide engine, with a thread ticking its epoch for deadlines.
fn engine() -> Result<Engine, RulesError> {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    if let Some(engine) = ENGINE.get() {
        return Ok(engine.clone());
    }
    let mut config = Config::new();
    config.wasm_component_model(true).epoch_interruption(true);
    let engine = Engine::new(&config).map_err(RulesError::Engine)?;
    let engine = ENGINE.get_or_init(|| engine).clone();
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
