//! The Python example rules component, built once per test process.
//!
//! `examples/python-rules/build.sh` builds it with componentize-py (installed from PyPI on
//! first use) into the test's target directory, where it stays until its inputs change.

use crate::command::{BUILD_LIMIT, OutputWithin as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The Python rules component, built if out of date: `<target>/python-rules.wasm`.
pub fn python_rules() -> PathBuf {
    static BUILT: OnceLock<Mutex<Option<PathBuf>>> = OnceLock::new();
    // One build at a time; the tests after the first get the path at once.
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    built.get_or_insert_with(build).clone()
}

fn build() -> PathBuf {
    let script = crate::repo_root().join("examples/python-rules/build.sh");
    // The test binary is `<target>/<profile>/deps/<name>`: the script builds into
    // `<target>`, as `just python-rules` does into cargo's, and is up to date the next time.
    let target_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| crate::repo_root().join("target"));
    let out = Command::new(&script)
        .env("CARGO_TARGET_DIR", &target_dir)
        .output_within(BUILD_LIMIT);
    assert!(
        out.status.success(),
        "{} failed ({}): it needs python3 with venv and pip, and PyPI for componentize-py \
         on first use; it printed:\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let wasm = stdout.lines().last().map(PathBuf::from).unwrap_or_default();
    assert!(
        wasm.is_file(),
        "{} printed no component path:\n{stdout}",
        script.display()
    );
    wasm
}
