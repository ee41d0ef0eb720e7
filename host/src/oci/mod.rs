//! Rules components in OCI registries: pulled by tag or digest, verified, cached by digest;
//! pushed in the wasm OCI artifact layout (the CNCF wasm working group's, which
//! wasm-pkg-tools use): config `application/vnd.wasm.config.v0+json`, one
//! `application/wasm` layer.

mod auth;
mod error;
mod http;
mod image;
mod reference;
mod store;

use std::path::PathBuf;
use std::time::Duration;

use ::http::{Method, StatusCode, header};
use bytes::Bytes;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub use auth::{Credentials, docker_config_path};
pub use error::OciError;
pub use reference::{Reference, ReferenceError};

/// Media type of the manifest berth pushes and reads.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of a wasm artifact's config.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// Media type of the component layer.
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";
/// Largest manifest berth reads.
const MAX_MANIFEST: u64 = 4 << 20;
/// Largest component berth pulls (a Python component is about 40 MiB).
const MAX_COMPONENT: u64 = 512 << 20;

/// Where components are cached and how a registry is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryOptions {
    /// Pulled manifests and components, by digest (`<dir>/oci/sha256/<hex>`); `None`
    /// pulls every time.
    pub cache_dir: Option<PathBuf>,
    /// Docker's config file, for registry credentials; `None` sends none.
    pub docker_config: Option<PathBuf>,
    /// Longest wait for one answer of the registry.
    pub timeout: Duration,
}

impl Default for RegistryOptions {
    /// berth's cache directory (as for compiled components), Docker's config file
    /// (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`), 30 s per request.
    fn default() -> Self {
        Self {
            cache_dir: crate::cache_dir::default_dir(),
            docker_config: docker_config_path(),
            timeout: Duration::from_secs(30),
        }
    }
}

/// A component pulled from a registry, checked against its digests.
#[derive(Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The reference, pinned to the manifest's digest.
    pub reference: Reference,
    /// `sha256:…` of the component's bytes: its layer digest, and the digest berth records
    /// on the objects it deploys.
    pub component_digest: String,
    /// The component.
    pub bytes: Vec<u8>,
    /// Requests sent to the registry (0: everything came from the cache).
    pub requests: u32,
}

impl std::fmt::Debug for Pulled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pulled")
            .field("reference", &self.reference)
            .field("component_digest", &self.component_digest)
            .field("size", &self.bytes.len())
            .field("requests", &self.requests)
            .finish()
    }
}

/// A component published to a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The reference, pinned to the manifest's digest.
    pub reference: Reference,
    /// `sha256:…` of the component's bytes.
    pub component_digest: String,
    /// The component's size in bytes.
    pub size: usize,
}

/// What describes a component in its artifact's config (the wasm OCI layout's fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComponentInfo {
    /// The interfaces and functions it imports, e.g. `berth:rules/defaults@0.2.0`.
    pub imports: Vec<String>,
    /// What it exports, e.g. `build`.
    pub exports: Vec<String>,
}

/// A registry client: one connection pool, credentials from Docker's config file.
#[derive(Debug)]
pub struct Registry {
    pool: http::Pool,
    options: RegistryOptions,
}

impl Registry {
    /// A client with `options`. Needs a tokio runtime to send requests.
    pub fn new(options: RegistryOptions) -> Result<Self, OciError> {
        Ok(Self {
            pool: http::pool()?,
            options,
        })
    }

    /// The component `reference` names. A reference pinned by digest whose manifest and
    /// component are cached sends no request; a tag sends one to resolve it.
    pub async fn pull(&self, reference: &Reference) -> Result<Pulled, OciError> {
        let cache = store::Store::new(self.options.cache_dir.as_deref());
        if let Some(digest) = &reference.digest
            && let Some(manifest) = cache.get(digest)
            && let Ok(layer) = component_layer(reference, &manifest)
            && let Some(bytes) = cache.get(&layer.digest)
        {
            return Ok(Pulled {
                reference: reference.clone(),
                component_digest: layer.digest,
                bytes: bytes.to_vec(),
                requests: 0,
            });
        }
        let credentials = self.credentials(reference)?;
        let mut session = http::Session::new(
            &self.pool,
            reference,
            credentials,
            "pull",
            self.options.timeout,
        );
        let url = session.url(&format!("manifests/{}", reference.manifest_ref()));
        let accept = [(header::ACCEPT, MANIFEST_MEDIA_TYPE)];
        let answer = session
            .send(
                Method::GET,
                &url,
                &accept,
                Bytes::new(),
                (MAX_MANIFEST, "manifest"),
            )
            .await?;
        match answer.status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Err(not_found(reference, "manifest")),
            _ => {
                return Err(session.status(format!("pulling the manifest of {reference}"), &answer));
            }
        }
        let digest = sha256(&answer.body);
        if let Some(expected) = &reference.digest
            && *expected != digest
        {
            return Err(mismatch(reference, "manifest", expected, digest));
        }
        let layer = component_layer(reference, &answer.body)?;
        cache.put(&digest, &answer.body);
        let pinned = reference.pinned(&digest);
        if let Some(bytes) = cache.get(&layer.digest) {
            return Ok(Pulled {
                reference: pinned,
                component_digest: layer.digest,
                bytes: bytes.to_vec(),
                requests: session.requests,
            });
        }
        if layer.size > MAX_COMPONENT {
            return Err(OciError::TooLarge {
                reference: reference.to_string(),
                what: "component layer",
                limit: MAX_COMPONENT,
            });
        }
        let url = session.url(&format!("blobs/{}", layer.digest));
        let answer = session
            .send(
                Method::GET,
                &url,
                &[],
                Bytes::new(),
                (layer.size, "component layer"),
            )
            .await?;
        match answer.status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => {
                return Err(not_found(reference, &format!("blob {}", layer.digest)));
            }
            _ => return Err(session.status(format!("pulling {}", layer.digest), &answer)),
        }
        let found = sha256(&answer.body);
        if found != layer.digest || answer.body.len() as u64 != layer.size {
            return Err(mismatch(reference, "component layer", &layer.digest, found));
        }
        if !answer.body.starts_with(COMPONENT_HEADER) {
            return Err(OciError::NotWasm {
                reference: reference.to_string(),
                reason: "its layer is not a wasm component (wrong header)".into(),
            });
        }
        cache.put(&layer.digest, &answer.body);
        Ok(Pulled {
            reference: pinned,
            component_digest: layer.digest,
            bytes: answer.body.to_vec(),
            requests: session.requests,
        })
    }

    /// Publish the image of the OCI image layout `layout` (its index's one manifest, its
    /// config and layers, each checked against its digest) at `reference` (a tag);
    /// returns the reference pinned to the manifest's digest.
    pub async fn push_image(
        &self,
        reference: &Reference,
        layout: &std::path::Path,
    ) -> Result<Reference, OciError> {
        let image = image::Layout::read(layout)?;
        let mut session = self.push_session(reference)?;
        for blob in &image.blobs {
            upload(&mut session, reference, blob).await?;
        }
        put_manifest(&mut session, reference, &image.media_type, image.manifest).await
    }

    /// Publish `component` at `reference` (a tag; a digest cannot be chosen) in the wasm
    /// OCI layout, described by `info`. The same component and info always make the same
    /// manifest, so pushing twice gives the same digest.
    pub async fn push(
        &self,
        reference: &Reference,
        component: &[u8],
        info: &ComponentInfo,
    ) -> Result<Pushed, OciError> {
        let mut session = self.push_session(reference)?;
        let component_digest = sha256(component);
        let config = serde_json::to_vec(&json!({
            "architecture": "wasm",
            "os": "wasip2",
            "layerDigests": [component_digest],
            "component": {"exports": info.exports, "imports": info.imports},
        }))
        .expect("a JSON value serializes");
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": descriptor(CONFIG_MEDIA_TYPE, &config),
            "layers": [descriptor(LAYER_MEDIA_TYPE, component)],
        }))
        .expect("a JSON value serializes");
        upload(&mut session, reference, &config).await?;
        upload(&mut session, reference, component).await?;
        let pinned = put_manifest(&mut session, reference, MANIFEST_MEDIA_TYPE, manifest).await?;
        Ok(Pushed {
            reference: pinned,
            component_digest,
            size: component.len(),
        })
    }

    /// A session that may push to `reference`, which names a tag (the registry gives the
    /// digest).
    fn push_session<'a>(&'a self, reference: &'a Reference) -> Result<http::Session<'a>, OciError> {
        if reference.digest.is_some() {
            return Err(OciError::Reference(ReferenceError {
                reference: reference.to_string(),
                reason: "push takes a tag; the registry gives the digest".into(),
            }));
        }
        let credentials = self.credentials(reference)?;
        Ok(http::Session::new(
            &self.pool,
            reference,
            credentials,
            "pull,push",
            self.options.timeout,
        ))
    }

    fn credentials(&self, reference: &Reference) -> Result<Option<Credentials>, OciError> {
        match &self.options.docker_config {
            Some(path) => auth::credentials_for(path, &reference.registry),
            None => Ok(None),
        }
    }
}

/// The first bytes of a component (a core module has version 1, layer 0).
const COMPONENT_HEADER: &[u8] = b"\0asm\x0d\x00\x01\x00";

/// Put `manifest` at `reference`; the reference pinned to its digest.
async fn put_manifest(
    session: &mut http::Session<'_>,
    reference: &Reference,
    media_type: &str,
    manifest: Vec<u8>,
) -> Result<Reference, OciError> {
    let url = session.url(&format!("manifests/{}", reference.manifest_ref()));
    let content_type = [(header::CONTENT_TYPE, media_type)];
    let manifest_digest = sha256(&manifest);
    let answer = session
        .send(
            Method::PUT,
            &url,
            &content_type,
            manifest.into(),
            (1 << 20, "answer"),
        )
        .await?;
    if answer.status != StatusCode::CREATED {
        return Err(session.status(format!("pushing the manifest of {reference}"), &answer));
    }
    Ok(reference.pinned(&manifest_digest))
}

/// A blob, unless the registry has it already: one monolithic upload.
async fn upload(
    session: &mut http::Session<'_>,
    reference: &Reference,
    blob: &[u8],
) -> Result<(), OciError> {
    let digest = sha256(blob);
    let url = session.url(&format!("blobs/{digest}"));
    let answer = session
        .send(Method::HEAD, &url, &[], Bytes::new(), (0, "answer"))
        .await?;
    if answer.status == StatusCode::OK {
        return Ok(());
    }
    let url = session.url("blobs/uploads/");
    let answer = session
        .send(Method::POST, &url, &[], Bytes::new(), (1 << 20, "answer"))
        .await?;
    let location = answer
        .headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok());
    let (StatusCode::ACCEPTED, Some(location)) = (answer.status, location) else {
        return Err(session.status(format!("starting an upload to {reference}"), &answer));
    };
    let location = session.resolve(location);
    let separator = if location.contains('?') { '&' } else { '?' };
    let url = format!("{location}{separator}digest={digest}");
    let headers = [(header::CONTENT_TYPE, "application/octet-stream")];
    let answer = session
        .send(
            Method::PUT,
            &url,
            &headers,
            Bytes::copy_from_slice(blob),
            (1 << 20, "answer"),
        )
        .await?;
    if answer.status != StatusCode::CREATED {
        return Err(session.status(format!("uploading {digest}"), &answer));
    }
    Ok(())
}

/// The layer of a manifest that holds the component.
struct Layer {
    digest: String,
    size: u64,
}

/// The component layer of a wasm artifact's manifest, or why it is not one.
fn component_layer(reference: &Reference, manifest: &[u8]) -> Result<Layer, OciError> {
    let not_wasm = |reason: String| OciError::NotWasm {
        reference: reference.to_string(),
        reason,
    };
    let manifest: Value = serde_json::from_slice(manifest)
        .map_err(|e| not_wasm(format!("its manifest is not JSON ({e})")))?;
    let config_type = manifest["config"]["mediaType"].as_str().unwrap_or("none");
    if config_type != CONFIG_MEDIA_TYPE {
        return Err(not_wasm(format!(
            "its config has media type {config_type}, not {CONFIG_MEDIA_TYPE}"
        )));
    }
    let layers = manifest["layers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let [layer] = layers else {
        return Err(not_wasm(format!(
            "it has {} layers, not one {LAYER_MEDIA_TYPE} layer",
            layers.len()
        )));
    };
    let media_type = layer["mediaType"].as_str().unwrap_or("none");
    if media_type != LAYER_MEDIA_TYPE {
        return Err(not_wasm(format!(
            "its layer has media type {media_type}, not {LAYER_MEDIA_TYPE}"
        )));
    }
    let digest = layer["digest"].as_str().filter(|d| reference::is_digest(d));
    let (Some(digest), Some(size)) = (digest, layer["size"].as_u64()) else {
        return Err(not_wasm("its layer has no sha256 digest and size".into()));
    };
    Ok(Layer {
        digest: digest.to_owned(),
        size,
    })
}

/// An OCI descriptor of `blob`.
fn descriptor(media_type: &str, blob: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256(blob), "size": blob.len()})
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn not_found(reference: &Reference, what: &str) -> OciError {
    OciError::NotFound {
        reference: reference.to_string(),
        what: what.to_owned(),
    }
}

fn mismatch(reference: &Reference, what: &'static str, expected: &str, found: String) -> OciError {
    OciError::DigestMismatch {
        reference: reference.to_string(),
        what,
        expected: expected.to_owned(),
        found,
    }
}
