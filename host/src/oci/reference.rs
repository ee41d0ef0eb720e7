//! `oci://REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST]`: where a rules component is published.

use std::fmt;

/// The scheme that marks a reference to a registry rather than a file.
pub const SCHEME: &str = "oci://";

/// A rules component in an OCI registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `host[:port]`, as written.
    pub registry: String,
    /// `team/rules`: lowercase path components.
    pub repository: String,
    /// `1.2.0`; `latest` when neither a tag nor a digest is given.
    pub tag: Option<String>,
    /// `sha256:…` of the manifest: pins the reference, checked on every pull.
    pub digest: Option<String>,
}

/// Why a reference cannot be used, with the reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid OCI reference `{reference}`: {reason}")]
pub struct ReferenceError {
    /// The reference as given.
    pub reference: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Reference {
    /// Parse `oci://REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST]` (the tag defaults to
    /// `latest`, as in Docker, unless a digest is given).
    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        let fail = |reason: &str| ReferenceError {
            reference: text.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| fail("it must start with oci://"))?;
        let (rest, digest) = match rest.split_once('@') {
            Some((rest, digest)) => {
                if !is_digest(digest) {
                    return Err(fail(
                        "the digest must be sha256: and 64 lowercase hex digits",
                    ));
                }
                (rest, Some(digest.to_owned()))
            }
            None => (rest, None),
        };
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| fail("it needs a registry and a repository: oci://REGISTRY/REPO"))?;
        if !is_registry(registry) {
            return Err(fail(
                "the registry must be a host name or address, with an optional :port",
            ));
        }
        // A tag follows the last `:` of the path, unless that `:` is inside a component.
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag)),
            _ => (path, None),
        };
        if !repository.split('/').all(is_path_component) {
            return Err(fail(
                "the repository must be lowercase letters, digits and separators (. _ __ -), in components split by /",
            ));
        }
        if let Some(tag) = tag
            && !is_tag(tag)
        {
            return Err(fail(
                "the tag must be letters, digits, _ . and -, at most 128, not starting with . or -",
            ));
        }
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_owned()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_owned()),
        };
        Ok(Self {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag,
            digest,
        })
    }

    /// Whether `text` names a registry (`oci://…`) rather than a file.
    pub fn is_oci(text: &str) -> bool {
        text.starts_with(SCHEME)
    }

    /// The manifest to ask for: the digest when pinned, else the tag.
    pub fn manifest_ref(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The same component pinned to `digest`, as a deploy records it.
    pub fn pinned(&self, digest: &str) -> Self {
        Self {
            digest: Some(digest.to_owned()),
            ..self.clone()
        }
    }

    /// Whether the registry is on this machine: plain HTTP is allowed there only (as Docker
    /// allows for localhost); anywhere else berth speaks HTTPS.
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => self.registry.split(':').next().unwrap_or_default(),
        };
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// `sha256:` and 64 lowercase hex digits: the only digest berth accepts or makes.
pub fn is_digest(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

fn is_registry(text: &str) -> bool {
    let (host, port) = match text.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((addr, rest)) => {
                if addr.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                (None, rest.strip_prefix(':'))
            }
            None => return false,
        },
        None => match text.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(text), None),
        },
    };
    let host_ok = host.is_none_or(|host| {
        !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    });
    host_ok && port.is_none_or(|port| port.parse::<u16>().is_ok_and(|p| p > 0))
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, the distribution spec's path component.
fn is_path_component(text: &str) -> bool {
    let bytes = text.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &text[start..i];
        let dashes = separator.bytes().all(|b| b == b'-');
        if !(matches!(separator, "." | "_" | "__") || dashes) {
            return false;
        }
    }
    true
}

/// `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
fn is_tag(text: &str) -> bool {
    let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
    text.len() <= 128
        && text
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && text.bytes().all(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn references_parse_as_docker_reads_them() {
        let r = Reference::parse("oci://localhost:5000/acme/rules:1.2.0").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("localhost:5000", "acme/rules")
        );
        assert_eq!(
            (r.tag.as_deref(), r.digest.as_deref()),
            (Some("1.2.0"), None)
        );
        assert_eq!(r.manifest_ref(), "1.2.0");
        assert!(r.is_loopback());

        let r = Reference::parse(&format!("oci://ghcr.io/acme/rules@{DIGEST}")).unwrap();
        assert_eq!((r.tag, r.digest.as_deref()), (None, Some(DIGEST)));
        assert!(!Reference::parse("oci://ghcr.io/a").unwrap().is_loopback());

        let r = Reference::parse("oci://127.0.0.1:5000/rules").unwrap();
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert!(r.is_loopback());
        assert!(
            Reference::parse("oci://[::1]:5000/rules:v1")
                .unwrap()
                .is_loopback()
        );

        let pinned = Reference::parse("oci://r.example/a/b:v1")
            .unwrap()
            .pinned(DIGEST);
        assert_eq!(
            pinned.to_string(),
            format!("oci://r.example/a/b:v1@{DIGEST}")
        );
        assert_eq!(pinned.manifest_ref(), DIGEST);
    }

    #[test]
    fn bad_references_say_what_is_wrong() {
        for (text, says) in [
            ("localhost:5000/rules", "oci://"),
            ("oci://localhost:5000", "registry and a repository"),
            ("oci://local_host/rules", "host name"),
            ("oci://localhost:99999/rules", "host name"),
            ("oci://localhost/Rules", "lowercase"),
            ("oci://localhost/a//b", "lowercase"),
            ("oci://localhost/a-/b", "lowercase"),
            ("oci://localhost/rules:-x", "the tag"),
            ("oci://localhost/rules@sha256:abc", "64 lowercase hex"),
            ("oci://localhost/rules@md5:0123", "sha256"),
        ] {
            let err = Reference::parse(text).expect_err(text);
            assert!(err.to_string().contains(says), "{text}: {err}");
            assert!(err.to_string().contains(text), "{text}: {err}");
        }
    }
}
