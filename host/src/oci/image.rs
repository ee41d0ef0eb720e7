//! An OCI image layout directory read for a push: `index.json` naming one manifest, the
//! manifest naming its config and layers, every blob read from `blobs/sha256/` and checked
//! against its digest before anything is sent.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{OciError, reference, sha256};

/// What a push sends: the blobs (config and layers), then the manifest.
pub struct Layout {
    pub media_type: String,
    pub manifest: Vec<u8>,
    pub blobs: Vec<Vec<u8>>,
}

impl Layout {
    /// Read the layout at `dir`.
    pub fn read(dir: &Path) -> Result<Self, OciError> {
        let bad = |reason: String| OciError::Layout {
            path: dir.to_owned(),
            reason,
        };
        let index: Value = serde_json::from_slice(&file(dir, &dir.join("index.json"))?)
            .map_err(|e| bad(format!("index.json is not JSON ({e})")))?;
        let manifests = index["manifests"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let [entry] = manifests else {
            return Err(bad(format!(
                "index.json names {} manifests, not one",
                manifests.len()
            )));
        };
        let media_type = entry["mediaType"]
            .as_str()
            .ok_or_else(|| bad("index.json's manifest has no mediaType".into()))?
            .to_owned();
        let manifest = blob(dir, &entry["digest"])?;
        let parsed: Value = serde_json::from_slice(&manifest)
            .map_err(|e| bad(format!("the manifest is not JSON ({e})")))?;
        let layers = parsed["layers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut blobs = vec![blob(dir, &parsed["config"]["digest"])?];
        for layer in layers {
            blobs.push(blob(dir, &layer["digest"])?);
        }
        Ok(Self {
            media_type,
            manifest,
            blobs,
        })
    }
}

/// The blob `digest` names, checked against it.
fn blob(dir: &Path, digest: &Value) -> Result<Vec<u8>, OciError> {
    let bad = |reason: String| OciError::Layout {
        path: dir.to_owned(),
        reason,
    };
    let digest = digest
        .as_str()
        .filter(|d| reference::is_digest(d))
        .ok_or_else(|| bad(format!("{digest} is not a sha256 digest")))?;
    let path: PathBuf = dir
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let bytes = file(dir, &path)?;
    let found = sha256(&bytes);
    if found != digest {
        return Err(bad(format!(
            "{} has digest {found}, not {digest}",
            path.display()
        )));
    }
    Ok(bytes)
}

fn file(dir: &Path, path: &Path) -> Result<Vec<u8>, OciError> {
    std::fs::read(path).map_err(|e| OciError::Layout {
        path: dir.to_owned(),
        reason: format!("cannot read {}: {e}", path.display()),
    })
}
