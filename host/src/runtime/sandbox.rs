//! The store state of a rules component: WASI with no capabilities, stopped clocks, fixed
//! randomness, captured stderr, and a cap on linear memory.

use std::time::Duration;

use wasmtime::component::{Linker, Resource};
use wasmtime::{ResourceLimiter, StoreContextMut};
use wasmtime_wasi::clocks::WasiClocksView;
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{
    Deterministic, HostMonotonicClock, HostWallClock, ResourceTable, WasiCtx, WasiCtxBuilder,
    WasiCtxView, WasiView,
};

/// Bytes of guest stderr kept (panic messages); writes beyond fail.
const STDERR_CAPACITY: usize = 64 << 10;
/// Largest random buffer one call may ask for; std asks for 16 bytes. The default (64 MiB)
/// would be host memory outside the cap.
const MAX_RANDOM: u64 = 4 << 10;
/// Table elements (function references) a component may have.
pub const TABLE_ELEMENTS: usize = 100_000;
/// WASI handles (streams, pollables) a component may hold at once; std needs a handful.
/// Each lives in host memory, outside the cap: the default allows a million.
const HANDLES: usize = 1024;
/// The WASI interface whose timers the sandbox replaces (the version wasmtime-wasi links).
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// The capabilities a store starts with, until a call sets the target's.
static NEWEST_KNOWN: std::sync::LazyLock<std::sync::Arc<crate::capabilities::Capabilities>> =
    std::sync::LazyLock::new(|| {
        std::sync::Arc::new(crate::capabilities::Capabilities::newest_known())
    });

/// `capabilities` as the stores of builds share them: the common offline case (the newest
/// known) without a copy.
pub(crate) fn shared(
    capabilities: &crate::capabilities::Capabilities,
) -> std::sync::Arc<crate::capabilities::Capabilities> {
    if *capabilities == **NEWEST_KNOWN {
        NEWEST_KNOWN.clone()
    } else {
        std::sync::Arc::new(capabilities.clone())
    }
}

/// What a rules component sees of the world: nothing it could depend on.
pub struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryCap,
    stderr: MemoryOutputPipe,
    /// When the running call must end (a nested `defaults` call gets what is left).
    pub deadline: Option<std::time::Instant>,
    /// The default rules, served to a contract 0.2 component's `defaults` import.
    pub defaults: Option<std::sync::Arc<super::bindings::v0_2::DefaultsServer>>,
    /// What the target cluster serves, for a contract 0.2 component's `cluster` import.
    pub capabilities: std::sync::Arc<crate::capabilities::Capabilities>,
}

impl Sandbox {
    /// No files, environment, arguments or network; clocks stopped at zero; randomness a
    /// fixed sequence; at most `memory` bytes of linear memory. stdout is discarded;
    /// stderr is kept to explain traps.
    pub fn new(memory: usize) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let wasi = WasiCtxBuilder::new()
            .stderr(stderr.clone())
            .wall_clock(StoppedClock)
            .monotonic_clock(StoppedClock)
            .secure_random(Deterministic::new(vec![0x5a]))
            .insecure_random(Deterministic::new(vec![0xa5]))
            .insecure_random_seed(0)
            .max_random_size(MAX_RANDOM)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(HANDLES);
        Self {
            wasi,
            table,
            memory: MemoryCap {
                limit: memory,
                used: 0,
            },
            stderr,
            deadline: None,
            defaults: None,
            capabilities: NEWEST_KNOWN.clone(),
        }
    }

    /// Linear memory the component may still grow by.
    pub fn memory_left(&self) -> usize {
        self.memory.limit.saturating_sub(self.memory.used)
    }

    /// The limiter the store consults when memories or tables grow.
    pub fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.memory
    }

    /// Bytes written to stderr so far.
    pub fn stderr_len(&self) -> usize {
        self.stderr.contents().len()
    }

    /// What was written to stderr after `start`, as text.
    pub fn stderr_since(&self, start: usize) -> String {
        let bytes = self.stderr.contents();
        String::from_utf8_lossy(bytes.get(start..).unwrap_or_default()).into_owned()
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// WASI for a rules component: everything std may import, with no capabilities behind it.
pub fn add_to_linker(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    // A timer would block the host thread in WASI, where the epoch deadline cannot stop
    // it: `sleep(1h)` would hold berth for an hour. With time stopped, every timer is
    // already due, so a sleeping guest spins and meets its deadline like any other loop.
    let mut clocks = linker.instance(MONOTONIC_CLOCK)?;
    // Defining it anew must fail: proof that the name is the one WASI linked above, and
    // that the override below replaces the real timers rather than sitting beside them.
    wasmtime::ensure!(
        clocks
            .func_wrap("subscribe-duration", timer_due_now)
            .is_err(),
        "{MONOTONIC_CLOCK} is not the clock interface wasmtime-wasi links"
    );
    linker.allow_shadowing(true);
    let mut clocks = linker.instance(MONOTONIC_CLOCK)?;
    clocks.func_wrap("subscribe-duration", timer_due_now)?;
    clocks.func_wrap("subscribe-instant", timer_due_now)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// `subscribe-duration` and `subscribe-instant` on a stopped clock: a pollable that is
/// ready at once, whatever the time asked for.
fn timer_due_now(
    mut store: StoreContextMut<'_, Sandbox>,
    _when: (u64,),
) -> wasmtime::Result<(Resource<DynPollable>,)> {
    let pollable = monotonic_clock::Host::subscribe_duration(&mut store.data_mut().clocks(), 0)?;
    Ok((pollable,))
}

/// The guest's linear memory grew past the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("linear memory would grow to {wanted} bytes, over the limit of {limit}")]
pub struct MemoryExceeded {
    /// The cap, in bytes.
    pub limit: usize,
    /// What all memories together would have held.
    pub wanted: usize,
}

/// Counts the linear memory of all of a store's memories against one cap. Going over it
/// traps at once with [`MemoryExceeded`], rather than letting `memory.grow` fail and the
/// guest turn that into an abort without a reason.
struct MemoryCap {
    limit: usize,
    used: usize,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let wanted = self.used.saturating_sub(current).saturating_add(desired);
        if wanted > self.limit {
            return Err(MemoryExceeded {
                limit: self.limit,
                wanted,
            }
            .into());
        }
        self.used = wanted;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        16
    }

    fn tables(&self) -> usize {
        16
    }

    fn memories(&self) -> usize {
        4
    }
}

/// A clock that always reads zero, so output cannot depend on time.
struct StoppedClock;

impl HostWallClock for StoppedClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for StoppedClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_cap_counts_every_memory() {
        let mut cap = MemoryCap {
            limit: 100,
            used: 0,
        };
        assert!(cap.memory_growing(0, 60, None).unwrap());
        assert!(cap.memory_growing(0, 30, None).unwrap());
        assert!(cap.memory_growing(60, 70, None).unwrap());
        let err = cap.memory_growing(70, 71, None).unwrap_err();
        assert_eq!(
            err.downcast_ref::<MemoryExceeded>(),
            Some(&MemoryExceeded {
                limit: 100,
                wanted: 101
            })
        );
    }

    #[test]
    fn the_clock_override_replaces_wasi_timers() {
        let engine = wasmtime::Engine::default();
        let mut linker = Linker::new(&engine);
        add_to_linker(&mut linker).expect("the sandbox links");
    }
}
