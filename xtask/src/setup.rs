//! First-use setup: what the commands need beyond rustup's stable toolchain, each installed
//! once, with a line saying what and how long before it starts.

use crate::run::{program, script};

const WASM_TARGET: &str = "wasm32-wasip2";

/// The toolchain of `rust-toolchain.toml` with the wasm target and `components`. rustup adds
/// neither to a toolchain that is already installed, so ask it to.
pub fn toolchain(components: &[&str]) -> Result<(), String> {
    if !program("rustup").arg("--version").succeeds() {
        return Err(
            "rustup is not on PATH: install it (https://rustup.rs), then run this again".into(),
        );
    }
    let installed = program("rustup")
        .args(["target", "list", "--installed"])
        .quiet()
        .output()?;
    if !installed.lines().any(|t| t.trim() == WASM_TARGET) {
        say(&format!(
            "adding the {WASM_TARGET} target to the Rust toolchain (rustup, ~30 s, once)"
        ));
        program("rustup")
            .args(["target", "add", WASM_TARGET])
            .run()?;
    }
    if components.is_empty() {
        return Ok(());
    }
    let installed = program("rustup")
        .args(["component", "list", "--installed"])
        .quiet()
        .output()?;
    let missing: Vec<&str> = components
        .iter()
        .copied()
        .filter(|c| {
            !installed
                .lines()
                .any(|line| line.starts_with(&format!("{c}-")))
        })
        .collect();
    if !missing.is_empty() {
        say(&format!(
            "adding {} to the Rust toolchain (rustup, ~30 s, once)",
            missing.join(" and ")
        ));
        program("rustup")
            .args(["component", "add"])
            .args(&missing)
            .run()?;
    }
    Ok(())
}

/// The control plane's binaries and Debian packages (tests/cluster/provision.sh: a few
/// seconds when cached, ~10 min the first time on a machine; it says which).
pub fn control_plane() -> Result<(), String> {
    script("tests/cluster/provision.sh").output().map(drop)
}

/// Debian packages the tests run (a real registry: `docker-registry`), installed with
/// apt-get when missing; a few seconds, once.
pub fn debian_packages(packages: &[&str], why: &str) -> Result<(), String> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !program("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .quiet()
                .output()
                .is_ok_and(|status| status.contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    say(&format!(
        "installing {} from Debian {why} (apt-get, ~10 s, once)",
        missing.join(" ")
    ));
    let install = || {
        program("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .run()
    };
    // The lists may be missing or stale on a new machine.
    install().or_else(|_| {
        program("apt-get").args(["update", "-q"]).run()?;
        install()
    })
}

fn say(what: &str) {
    eprintln!("berth setup: {what}");
}
