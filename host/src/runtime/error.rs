//! Why a rules component could not be loaded or run, one variant per failing step.

use std::path::PathBuf;
use std::time::Duration;

use super::world::{self, supported_worlds};
use super::{LimitError, MemoryExceeded, Source};

/// Why rules could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The limits asked for are outside what berth accepts.
    #[error("rules limits: {0}")]
    Limits(#[source] LimitError),
    /// The component file could not be read.
    #[error("cannot read rules component {}", path.display())]
    Read {
        /// Where.
        path: PathBuf,
        #[source]
        /// The underlying error.
        source: std::io::Error,
    },
    /// The engine could not be set up.
    #[error("cannot set up the wasm engine")]
    Engine(#[source] wasmtime::Error),
    /// The bytes are not a component, or it does not compile.
    #[error("{source_name}: not a valid wasm component")]
    Compile {
        /// The rules component.
        source_name: Source,
        #[source]
        /// The underlying error.
        source: wasmtime::Error,
    },
    /// The component was built for another version of `berth:rules`.
    #[error(
        "{source_name}: built for {}@{found}; this berth supports {}",
        world::PACKAGE,
        supported_worlds()
    )]
    OtherVersion {
        /// The rules component.
        source_name: Source,
        /// What was found.
        found: String,
    },
    /// The component does not export the function `build`.
    #[error(
        "{source_name}: does not export the function `build` (its exports: {}); this berth supports {}",
        describe_exports(.exports),
        supported_worlds()
    )]
    MissingExport {
        /// The rules component.
        source_name: Source,
        /// Its exports, with their kinds.
        exports: Vec<String>,
    },
    /// The component's `build` has another type than its contract version's world.
    #[error(
        "{source_name}: its `build` does not match the one of {}/rules@{version}, the version it names",
        world::PACKAGE
    )]
    World {
        /// The rules component.
        source_name: Source,
        /// The contract version the component names.
        version: &'static str,
        #[source]
        /// The underlying error.
        source: wasmtime::Error,
    },
    /// The component imports something the sandbox does not provide.
    #[error(
        "{source_name}: imports something the rules sandbox does not provide (it offers WASI 0.2 with no capabilities)"
    )]
    Imports {
        /// The rules component.
        source_name: Source,
        #[source]
        /// The underlying error.
        source: wasmtime::Error,
    },
    /// Instantiation failed (a trap in a start function).
    #[error("{source_name}: cannot be instantiated")]
    Instantiate {
        /// The rules component.
        source_name: Source,
        #[source]
        /// The underlying error.
        source: wasmtime::Error,
    },
    /// The component ran past its deadline.
    #[error("{source_name}: build ran past its deadline of {deadline:?} and was stopped")]
    Deadline {
        /// The rules component.
        source_name: Source,
        /// The deadline.
        deadline: Duration,
    },
    /// The component tried to grow its memory past the cap.
    #[error(
        "{source_name}: build needed more than the memory limit of {} MiB and was stopped",
        limit >> 20
    )]
    Memory {
        /// The rules component.
        source_name: Source,
        /// The limit, in bytes.
        limit: usize,
        #[source]
        /// The underlying error.
        source: MemoryExceeded,
    },
    /// The component called `exit`.
    #[error("{source_name}: build called exit({code}) instead of returning")]
    Exit {
        /// The rules component.
        source_name: Source,
        /// The exit code.
        code: i32,
    },
    /// The component trapped (a panic, an abort). The message gives the trap and what the
    /// component wrote to stderr; the wasm backtrace is in `trap`, for the component's
    /// author, not in the message.
    #[error(
        "{source_name}: build failed inside the component ({}){}",
        trap.root_cause(),
        describe_stderr(.stderr)
    )]
    Trap {
        /// The rules component.
        source_name: Source,
        /// What the component wrote to stderr.
        stderr: String,
        /// The trap, with the wasm backtrace.
        trap: wasmtime::Error,
    },
    /// The component returned more than the output limit.
    #[error("{source_name}: returned {size} bytes of objects, more than the limit of {limit}")]
    OutputTooLarge {
        /// The rules component.
        source_name: Source,
        /// Bytes returned.
        size: usize,
        /// The limit, in bytes.
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
