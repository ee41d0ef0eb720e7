//! Builds the default rules component and hands its path to the crate, so that a plain
//! `cargo build` gives a `berth` with its rules embedded.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

fn main() {
    println!("cargo::rerun-if-env-changed=BERTH_RULES_WASM");
    // A prebuilt component (CI builds it once for clippy and tests) skips the nested build.
    if let Ok(prebuilt) = env::var("BERTH_RULES_WASM") {
        println!("cargo::rerun-if-changed={prebuilt}");
        embed(Path::new(&prebuilt));
        return;
    }
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest.parent().expect("host/ sits in the workspace root");
    for watched in ["guest/src", "guest/Cargo.toml", "wit", "Cargo.lock"] {
        println!("cargo::rerun-if-changed={}", root.join(watched).display());
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    // <target>/<profile>/build/berth-<hash>/out: share one guest build across profiles.
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .unwrap_or(&out_dir)
        .join("rules-component");
    if !wasm_target_installed() {
        fail(
            "the wasm32-wasip2 target is not installed: run `rustup target add wasm32-wasip2` \
             (`cargo xtask demo` and `cargo xtask test` add it themselves)",
        );
    }
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--release",
            "--package",
            "berth-rules",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        // The outer build's flags and wrappers (clippy-driver) are not for the guest.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => fail(&format!(
            "building the default rules component (berth-rules for wasm32-wasip2) failed ({status}); its errors are above"
        )),
        Err(e) => fail(&format!(
            "cannot run cargo to build the default rules component: {e}"
        )),
    }
    let wasm = target_dir.join("wasm32-wasip2/release/berth_rules.wasm");
    if !wasm.exists() {
        fail(&format!("{} was not built", wasm.display()));
    }
    embed(&wasm);
}

/// Hand the component's path and SHA-256 to the crate: the hash keys the compiled-code
/// cache, and computing it here spares every run of berth hashing the embedded bytes.
fn embed(wasm: &Path) {
    let bytes = std::fs::read(wasm).unwrap_or_else(|e| {
        fail(&format!(
            "cannot read the rules component {}: {e}",
            wasm.display()
        ))
    });
    // The crate embeds a copy of its own: the guest's target directory is shared by every
    // checkout that shares a cargo target directory, and another checkout's build there
    // would otherwise change the embedded bytes without this script running again (the
    // digest then named other bytes). The bytes embedded and the digest are of one build.
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let copy = out_dir.join("berth_rules.wasm");
    if let Err(e) = std::fs::write(&copy, &bytes) {
        fail(&format!("cannot write {}: {e}", copy.display()));
    }
    println!("cargo::rustc-env=BERTH_DEFAULT_RULES={}", copy.display());
    println!(
        "cargo::rustc-env=BERTH_DEFAULT_RULES_SHA256={}",
        hex::encode(Sha256::digest(&bytes))
    );
}

/// Whether the toolchain building berth has the wasm32-wasip2 standard library: without it
/// the nested build fails with a page of `can't find crate for std`.
fn wasm_target_installed() -> bool {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        // Unknown sysroot: let the build itself tell.
        .is_none_or(|sysroot| sysroot.join("lib/rustlib/wasm32-wasip2").is_dir())
}

/// Stop the build with one line saying what to do, not a build-script panic.
fn fail(message: &str) -> ! {
    println!("cargo::error={message}");
    std::process::exit(1);
}
