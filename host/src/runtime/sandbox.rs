//! The store state of a rules component: WASI with no capabilities, fixed clocks and
//! randomness, captured stderr and a memory limit.

use std::time::Duration;

use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{
    Deterministic, HostMonotonicClock, HostWallClock, ResourceTable, WasiCtx, WasiCtxBuilder,
    WasiCtxView, WasiView,
};

/// Bytes of guest stderr kept (panic messages); writing more traps.
const STDERR_CAPACITY: usize = 64 << 10;

/// What a rules component sees of the world: nothing it could depend on.
pub struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    stderr: MemoryOutputPipe,
}

impl Sandbox {
    /// No files, environment, arguments or network; clocks stopped at zero; randomness a
    /// fixed sequence. stdout is discarded; stderr is kept to explain traps.
    pub fn new(memory: usize) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let wasi = WasiCtxBuilder::new()
            .stderr(stderr.clone())
            .wall_clock(StoppedClock)
            .monotonic_clock(StoppedClock)
            .secure_random(Deterministic::new(vec![0x5a]))
            .insecure_random(Deterministic::new(vec![0xa5]))
            .insecure_random_seed(0)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(memory)
            .instances(16)
            .tables(16)
            .memories(4)
            .trap_on_grow_failure(true)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limits,
            stderr,
        }
    }

    /// The limiter the store consults when memory or tables grow.
    pub fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.limits
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
