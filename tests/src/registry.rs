//! A real OCI registry for a test: Debian's `docker-registry` (CNCF distribution) on a
//! loopback port, with htpasswd basic auth and its own storage; stopped when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary `apt-get install docker-registry` puts on PATH (`cargo xtask test` does).
const BINARY: &str = "docker-registry";
/// The user the registry accepts.
pub const USER: &str = "berth-ci";
/// Its password.
pub const PASSWORD: &str = "reg-pass-7f3a";

/// A running registry.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    /// `127.0.0.1:<port>`.
    pub address: String,
}

impl Registry {
    /// Start a registry with basic auth for [`USER`]; panics, saying how to install it, if
    /// the binary is missing, or with its log if it does not come up within 10 s.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let address = format!("127.0.0.1:{port}");
        let hash = bcrypt::hash(PASSWORD, 4).expect("bcrypt");
        std::fs::write(dir.path().join("htpasswd"), format!("{USER}:{hash}\n")).expect("htpasswd");
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\nhttp:\n  addr: {address}\nauth:\n  htpasswd:\n    realm: berth-tests\n    path: {htpasswd}\n",
            root = dir.path().join("storage").display(),
            htpasswd = dir.path().join("htpasswd").display(),
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log file");
        let child = Command::new(BINARY)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {BINARY} ({e}): `apt-get install docker-registry` (cargo xtask test installs it)")
            });
        let registry = Self {
            child,
            dir,
            address,
        };
        registry.wait_ready();
        registry
    }

    /// `oci://127.0.0.1:<port>/<path>`.
    pub fn reference(&self, path: &str) -> String {
        format!("oci://{}/{path}", self.address)
    }

    /// A Docker config directory (for `DOCKER_CONFIG`) holding `user:password` for this
    /// registry, written as `docker login` writes it.
    pub fn docker_config(&self, user: &str, password: &str) -> PathBuf {
        use base64::Engine as _;
        let dir = self
            .dir
            .path()
            .join(format!("docker-{user}-{}", password.len()));
        std::fs::create_dir_all(&dir).expect("docker config dir");
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let config = format!(
            r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
            self.address
        );
        std::fs::write(dir.join("config.json"), config).expect("docker config");
        dir
    }

    /// Where the registry keeps the blob `sha256:<hex>` (to tamper with it).
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Until `/v2/` answers (401: it is up and asks for credentials).
    fn wait_ready(&self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if std::net::TcpStream::connect(&self.address).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{BINARY} did not listen on {} within 10 s:\n{}",
            self.address,
            self.log()
        );
    }

    /// The registry's storage directory.
    pub fn storage(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
