//! Running a rules component: engine, compiled-code cache, a sandboxed store with limits,
//! and the call into `build`.

mod bindings;
mod cache;
mod error;
mod limits;
mod rules;
mod sandbox;
mod world;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use error::RulesError;
pub use limits::{LimitError, Limits};
pub use rules::Rules;
pub use sandbox::MemoryExceeded;
pub(crate) use sandbox::shared as shared_capabilities;
pub use world::{PACKAGE, world_name};

/// The default rules, built from `guest/` and embedded in the binary.
pub static DEFAULT_RULES: &[u8] = include_bytes!(env!("BERTH_DEFAULT_RULES"));
/// Their SHA-256, computed at build time.
const DEFAULT_RULES_SHA256: &str = env!("BERTH_DEFAULT_RULES_SHA256");

/// How often the deadline clock ticks.
const TICK: Duration = Duration::from_millis(10);

/// How rules are loaded and run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesOptions {
    /// What one call may use: `--rules-deadline`, `--rules-memory`.
    pub limits: Limits,
    /// Where compiled components are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
}

impl Default for RulesOptions {
    /// Default limits; the cache in `$BERTH_CACHE_DIR`, else `$XDG_CACHE_HOME/berth`, else
    /// `~/.cache/berth` (`BERTH_CACHE_DIR=""`: no cache).
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            cache_dir: crate::cache_dir::default_dir(),
        }
    }
}

impl RulesOptions {
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
    /// A component pulled from a registry: its reference, pinned to the manifest digest.
    Oci(Box<crate::oci::Reference>),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("default rules"),
            Source::File(path) => write!(f, "rules component {}", path.display()),
            Source::Oci(reference) => write!(f, "rules component {reference}"),
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

/// Epoch ticks for `deadline` (at least one, plus the tick in progress).
pub(crate) fn ticks(deadline: Duration) -> u64 {
    (deadline.as_millis() / TICK.as_millis()).max(1) as u64 + 1
}

/// Linear memory of an instance kept mapped when it is freed, zeroed for the next one.
/// None: zeroing on every build cost more than the page faults it saves (BENCHMARKS.md,
/// "Instance strategy": 50 µs per fresh build with none kept, 61 µs with 1 MiB).
const KEEP_RESIDENT: usize = 0;

/// How berth's engine allocates instances (public for the benchmarks, which compare it
/// with wasmtime's default and other amounts kept resident).
#[doc(hidden)]
pub fn instance_allocation(keep_resident: Option<usize>) -> InstanceAllocationStrategy {
    InstanceAllocationStrategy::Pooling(pool(keep_resident.unwrap_or(KEEP_RESIDENT)))
}

/// Instances at once in the pool: builds in flight (each with the default rules it may
/// call), across every thread of the process.
const POOLED_INSTANCES: u32 = 64;

/// The pooling allocator: every build gets a fresh instance, so its memory and tables come
/// from slots prepared once (their copy-on-write images mapped) and reset after use
/// rather than mapped anew each time. A slot
/// is as large as the largest memory cap berth accepts ([`Limits::MAX_MEMORY`], address space only),
/// so a component's own cap is enforced by its store's limiter, not by the pool.
fn pool(keep_resident: usize) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(POOLED_INSTANCES)
        .total_core_instances(POOLED_INSTANCES * 16)
        .total_memories(POOLED_INSTANCES * 4)
        .total_tables(POOLED_INSTANCES * 8)
        .max_memory_size(Limits::MAX_MEMORY)
        .table_elements(sandbox::TABLE_ELEMENTS)
        .linear_memory_keep_resident(keep_resident)
        .table_keep_resident(1 << 16);
    pool
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
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(instance_allocation(None));
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
