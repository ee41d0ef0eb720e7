//! On-disk cache of compiled components, keyed by the component's SHA-256 and the engine's
//! compatibility hash (wasmtime version and settings), so a second run skips compilation.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The SHA-256 of a component, in hex: the first half of its cache key.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The compiled component for `bytes` (whose [`digest`] is `digest`), from `dir` when it
/// holds a usable copy; compiled and stored there otherwise. Returns whether it came from
/// the cache. Cache trouble (unwritable directory, stale file) only costs a compilation.
pub fn load(
    engine: &Engine,
    bytes: &[u8],
    digest: &str,
    dir: Option<&Path>,
) -> wasmtime::Result<(Component, bool)> {
    let Some(dir) = dir else {
        return Ok((Component::new(engine, bytes)?, false));
    };
    let path = dir.join(key(engine, digest));
    if path.is_file() {
        // SAFETY: the file was written by `Component::serialize` of this berth under a
        // name that binds it to these component bytes and this engine's settings, in a
        // directory of the user's own; wasmtime checks the header and version again.
        if let Ok(component) = unsafe { Component::deserialize_file(engine, &path) } {
            return Ok((component, true));
        }
    }
    let component = Component::new(engine, bytes)?;
    if let Ok(compiled) = component.serialize() {
        store(dir, &path, &compiled);
    }
    Ok((component, false))
}

/// File name of a compiled component: content hash, then engine hash.
fn key(engine: &Engine, digest: &str) -> String {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{digest}-{:016x}.cwasm", hasher.finish())
}

/// Write atomically: a reader never sees half a file.
fn store(dir: &Path, path: &Path, compiled: &[u8]) {
    let tmp = dir.join(format!(".{}.tmp", std::process::id()));
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&tmp, compiled))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}
