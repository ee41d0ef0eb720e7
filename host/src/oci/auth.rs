//! Registry credentials from Docker's config file, and the registry's authentication
//! challenge (`WWW-Authenticate: Basic …` or `Bearer realm=…,service=…,scope=…`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::OciError;

/// A user name and password for one registry. Never printed: `Debug` shows the user only.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

impl Credentials {
    /// Credentials from a user name and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The `Authorization` header value of HTTP basic authentication.
    pub(super) fn basic(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!("Basic {}", STANDARD.encode(pair))
    }
}

/// Docker's config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => std::env::var_os("HOME").map(|home| Path::new(&home).join(".docker/config.json")),
    }
}

#[derive(serde::Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(serde::Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// The credentials `path` holds for `registry` (`docker login` writes them as
/// `auths.<registry>.auth`, base64 of `user:password`); `None` when the file or the entry
/// does not exist. A file that exists but cannot be read or parsed is an error: pulling
/// anonymously instead would fail later with a misleading "unauthorized".
pub fn credentials_for(path: &Path, registry: &str) -> Result<Option<Credentials>, OciError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(OciError::Credentials {
                path: path.to_owned(),
                reason: source.to_string(),
            });
        }
    };
    let bad = |reason: String| OciError::Credentials {
        path: path.to_owned(),
        reason,
    };
    let config: DockerConfig = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    // Docker keys entries by host, sometimes as a URL (`https://host/v1/`).
    let entry = config.auths.iter().find_map(|(key, entry)| {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default();
        (host == registry).then_some(entry)
    });
    let Some(entry) = entry else {
        return Ok(None);
    };
    if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
        return Ok(Some(Credentials::new(username, password)));
    }
    let Some(auth) = &entry.auth else {
        return Ok(None);
    };
    let what = format!("auths.{registry}.auth");
    let decoded = STANDARD
        .decode(auth.trim())
        .map_err(|_| bad(format!("{what} is not base64")))?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad(format!("{what} is not UTF-8")))?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or_else(|| bad(format!("{what} is not user:password")))?;
    Ok(Some(Credentials::new(username, password)))
}

/// How a registry asks to be authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP basic authentication with the credentials.
    Basic,
    /// A token from `realm`, for `service` and `scope` (the distribution token protocol).
    Bearer {
        /// URL of the token server.
        realm: String,
        /// What to ask the token for: the registry's name for itself.
        service: Option<String>,
        /// The access asked for, e.g. `repository:acme/rules:pull`.
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parse a `WWW-Authenticate` header value.
    pub fn parse(header: &str) -> Option<Self> {
        let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parameters(params);
        Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        })
    }
}

/// `key="value",key=value` pairs; commas inside quotes belong to the value (scopes have
/// them: `repository:a:pull,push`).
fn parameters(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.split_once('"') {
                Some((value, after)) => (value, after),
                None => (quoted, ""),
            },
            None => after.split_once(',').unwrap_or((after, "")),
        };
        out.insert(key, value.to_owned());
        rest = after.trim_start_matches([',', ' ']);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_of_basic_and_token_registries() {
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://ghcr.io/token".into(),
                service: Some("ghcr.io".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(Challenge::parse("Negotiate"), None);
    }

    #[test]
    fn docker_config_entries_by_host_or_url_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = STANDARD.encode("ci:s3cret:with-colon");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths": {{"localhost:5000": {{"auth": "{auth}"}},
                   "https://index.docker.io/v1/": {{"username": "u", "password": "p"}},
                   "bad.example": {{"auth": "%%"}}}}}}"#
            ),
        )
        .unwrap();
        let found = credentials_for(&path, "localhost:5000").unwrap().unwrap();
        assert_eq!(found, Credentials::new("ci", "s3cret:with-colon"));
        assert!(!format!("{found:?}").contains("s3cret"));
        let hub = credentials_for(&path, "index.docker.io").unwrap().unwrap();
        assert_eq!(hub, Credentials::new("u", "p"));
        assert_eq!(credentials_for(&path, "other:5000").unwrap(), None);
        let err = credentials_for(&path, "bad.example")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("auths.bad.example.auth is not base64"),
            "{err}"
        );
        assert_eq!(
            credentials_for(&dir.path().join("none.json"), "localhost:5000").unwrap(),
            None
        );
    }
}
