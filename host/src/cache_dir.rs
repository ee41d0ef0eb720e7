//! Where berth caches what it compiled and pulled: one directory for the rules runtime
//! and the registry client.

use std::path::{Path, PathBuf};

/// The cache directory: `$BERTH_CACHE_DIR`, else `$XDG_CACHE_HOME/berth`, else
/// `$HOME/.cache/berth`. `BERTH_CACHE_DIR=""` turns the cache off.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("BERTH_CACHE_DIR") {
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
        .map(|base| base.join("berth"))
}
