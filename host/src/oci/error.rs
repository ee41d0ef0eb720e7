//! What can go wrong between berth and a registry, each variant named after the step.

use std::path::PathBuf;

pub use super::reference::ReferenceError;

/// Why pulling or pushing a rules component failed. Credentials never appear in it.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The reference cannot be used.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// Docker's config file exists but its credentials cannot be read.
    #[error("cannot read registry credentials from {path}: {reason}")]
    Credentials {
        /// The config file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// HTTPS could not be set up (no usable root certificates on this machine).
    #[error("cannot set up HTTPS for registries")]
    Tls(#[source] std::io::Error),
    /// An OCI image layout directory that cannot be pushed as it is.
    #[error("{}: not an OCI image layout berth can push: {reason}", path.display())]
    Layout {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The registry could not be reached, or the connection broke.
    #[error("cannot reach registry {registry}: {reason}")]
    Unreachable {
        /// `host[:port]`.
        registry: String,
        /// The connection error.
        reason: String,
    },
    /// The registry did not answer in time.
    #[error("registry {registry} did not answer within {seconds} s")]
    Timeout {
        /// `host[:port]`.
        registry: String,
        /// The per-request timeout.
        seconds: u64,
    },
    /// The registry refused the credentials, or asked for some and berth has none.
    #[error("registry {registry} refused access to {repository}: {reason}")]
    Unauthorized {
        /// `host[:port]`.
        registry: String,
        /// The repository asked for.
        repository: String,
        /// Which: no credentials, or wrong ones.
        reason: String,
    },
    /// The manifest or blob does not exist.
    #[error("{reference}: {what} not found in the registry")]
    NotFound {
        /// The reference pulled.
        reference: String,
        /// `manifest` or `blob sha256:…`.
        what: String,
    },
    /// The registry answered a request with an unexpected status.
    #[error("registry {registry}: {step} failed with HTTP {status}{detail}")]
    Status {
        /// `host[:port]`.
        registry: String,
        /// The request: `pulling the manifest of …`.
        step: String,
        /// The HTTP status.
        status: u16,
        /// The start of the registry's error body, if any (`: …`).
        detail: String,
    },
    /// Content did not match the digest it was asked for or described with.
    #[error("{reference}: the {what} has digest {found}, expected {expected}; refusing it")]
    DigestMismatch {
        /// The reference pulled.
        reference: String,
        /// `manifest` or `component layer`.
        what: &'static str,
        /// The digest asked for.
        expected: String,
        /// The digest of what came.
        found: String,
    },
    /// The artifact is not a wasm component in the wasm OCI layout.
    #[error("{reference} is not a wasm component artifact: {reason}")]
    NotWasm {
        /// The reference pulled.
        reference: String,
        /// What is not as expected.
        reason: String,
    },
    /// Content was larger than berth accepts.
    #[error("{reference}: the {what} is larger than {limit} bytes; refusing it")]
    TooLarge {
        /// The reference pulled.
        reference: String,
        /// `manifest` or `component layer`.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
}
