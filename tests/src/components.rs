//! Test components built from the workspace (wasm32-wasip2, release) once per test process,
//! with cargo, into a target directory of their own beside the test's (`<target>/test-components`).

use crate::command::{BUILD_LIMIT, OutputWithin as _};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The component of the workspace package `package`, built if out of date.
pub fn component(package: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    // One build at a time: parallel tests would only queue on cargo's lock anyway.
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    built
        .entry(package.to_owned())
        .or_insert_with(|| build(package))
        .clone()
}

fn build(package: &str) -> PathBuf {
    let root = crate::repo_root();
    // Beside the host's own build, not in it, like host/build.rs does: this build never
    // waits on the outer cargo's lock. The test binary is `<target>/<profile>/deps/<name>`.
    let target_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(std::env::temp_dir)
        .join("test-components");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--locked",
            "--quiet",
            "--target",
            "wasm32-wasip2",
        ])
        .args(["--package", package])
        .arg("--target-dir")
        .arg(&target_dir)
        // The outer build's flags and wrappers are not for wasm.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .output_within(BUILD_LIMIT);
    assert!(
        out.status.success(),
        "building {package} for wasm32-wasip2 failed (`rustup target add wasm32-wasip2`?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wasm = target_dir
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", package.replace('-', "_")));
    assert!(wasm.is_file(), "{} was not built", wasm.display());
    wasm
}
