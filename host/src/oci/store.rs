//! Pulled manifests and components on disk, content-addressed: `<cache>/oci/sha256/<hex>`.

use std::path::{Path, PathBuf};

use super::sha256;

/// The digest cache; without a directory it holds nothing.
pub(super) struct Store {
    dir: Option<PathBuf>,
}

impl Store {
    pub fn new(cache_dir: Option<&Path>) -> Self {
        Self {
            dir: cache_dir.map(|dir| dir.join("oci/sha256")),
        }
    }

    /// The content of `digest`, if cached and intact: a file whose bytes no longer hash to
    /// its name is ignored (and pulled again).
    pub fn get(&self, digest: &str) -> Option<Vec<u8>> {
        let path = self.path(digest)?;
        let bytes = std::fs::read(path).ok()?;
        (sha256(&bytes) == digest).then_some(bytes)
    }

    /// Keep `bytes` under `digest`, atomically: a reader never sees half a file. Cache
    /// trouble (an unwritable directory) only costs a pull next time.
    pub fn put(&self, digest: &str, bytes: &[u8]) {
        let Some(path) = self.path(digest) else {
            return;
        };
        let dir = path.parent().expect("a cache file has a directory");
        let tmp = dir.join(format!(".{}.tmp", std::process::id()));
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    fn path(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        Some(self.dir.as_ref()?.join(hex))
    }
}
