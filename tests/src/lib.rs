//! The test harness shared by every test, bench and fuzz target: a real local Kubernetes
//! control plane for berth's end-to-end tests, test components built from the workspace,
//! the spec records as the guest's, and running the `berth` binary.
//!
//! [`cluster()`] uses the cluster named by `BERTH_KUBECONFIG` if set (and, for the limited
//! user, `BERTH_LIMITED_KUBECONFIG` or a `limited.kubeconfig` beside it). Otherwise it starts
//! one with `tests/cluster/up.sh`, once per test process, in a state dir shared by all test
//! processes of this target dir (`<target>/berth-e2e-cluster`, or `BERTH_E2E_CLUSTER_DIR`).
//! Each process registers itself as an owner; up.sh's watchdog stops the cluster a second
//! or two after the last owner exits, so nothing is left behind whether the tests pass,
//! fail or panic.
//!
//! Runners: `cargo test` (the README's test command; one process per test binary, its
//! tests on threads) and `cargo nextest` (one process per test) both work, because what
//! tests share across processes is taken by file locks, never by a lock in memory: the
//! fault tests' turn ([`faults::exclusive`]) and each process's node ports
//! ([`Cluster::node_port`]). Every process a test runs has a time limit ([`command`]).

use std::{
    future::Future,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
    time::{Duration, Instant},
};

use kube::config::{KubeConfigOptions, Kubeconfig};

use command::OutputWithin as _;

pub mod command;
pub mod components;
pub mod faults;
pub mod guest_records;
pub mod proxy;
pub mod python;
pub mod registry;

/// The namespace the limited user may use, as `up.sh` sets it up.
pub const LIMITED_NAMESPACE: &str = "limited";

/// A running cluster the tests may use.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Admin (`system:masters`) kubeconfig.
    pub admin_kubeconfig: PathBuf,
    /// Kubeconfig of a user limited by RBAC to [`LIMITED_NAMESPACE`], if known.
    pub limited_kubeconfig: Option<PathBuf>,
    /// State dir (logs) when the harness started the cluster itself.
    pub state_dir: Option<PathBuf>,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// The cluster for this test process; starts it on first use. Panics with the start log if
/// it cannot be had.
pub fn cluster() -> &'static Cluster {
    match CLUSTER.get_or_init(find_or_start) {
        Ok(c) => c,
        Err(e) => panic!("no test cluster: {e}"),
    }
}

fn find_or_start() -> Result<Cluster, String> {
    if let Some(admin) = std::env::var_os("BERTH_KUBECONFIG").filter(|v| !v.is_empty()) {
        let admin = PathBuf::from(admin);
        let limited = std::env::var_os("BERTH_LIMITED_KUBECONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                let beside = admin.with_file_name("limited.kubeconfig");
                beside.is_file().then_some(beside)
            });
        return Ok(Cluster {
            admin_kubeconfig: admin,
            limited_kubeconfig: limited,
            state_dir: None,
        });
    }
    start(&state_dir())
}

/// The workspace root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The `berth` binary at `exe` (a test's `env!("CARGO_BIN_EXE_berth")`), run from the
/// workspace root as a user would run it there.
pub fn berth_command(exe: &str) -> Command {
    let mut command = Command::new(exe);
    command.current_dir(repo_root());
    command
}

/// `<target>/berth-e2e-cluster`, found from the test binary's path (`<target>/<profile>/deps/`).
fn state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BERTH_E2E_CLUSTER_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    target_dir().join("berth-e2e-cluster")
}

/// The cargo target directory of the test binary (`<target>/<profile>/deps/<name>`).
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(std::env::temp_dir)
}

/// Start (or join) the cluster of state dir `dir`, this process one of its owners.
fn start(dir: &Path) -> Result<Cluster, String> {
    let dir = dir.to_owned();
    let up = repo_root().join("tests/cluster/up.sh");
    let started = Instant::now();
    // up.sh may provision the control plane first (a build from source, once a machine).
    let out = Command::new(&up)
        .env("BERTH_CLUSTER_DIR", &dir)
        .env("BERTH_CLUSTER_OWNER_PID", std::process::id().to_string())
        .output_within(command::BUILD_LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Kept beside the state dir (up.sh wipes the dir itself on a fresh start).
    let _ = std::fs::write(dir.with_extension("up.log"), out.stderr.as_slice());
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}); its output:\n{stderr}",
            up.display(),
            out.status
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let admin = stdout
        .lines()
        .last()
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "{} printed no kubeconfig path:\n{stdout}\n{stderr}",
                up.display()
            )
        })?;
    eprintln!(
        "berth-e2e: cluster ready in {:.1?} (state and logs in {})",
        started.elapsed(),
        dir.display()
    );
    Ok(Cluster {
        limited_kubeconfig: Some(admin.with_file_name("limited.kubeconfig")),
        admin_kubeconfig: admin,
        state_dir: Some(dir),
    })
}

impl Cluster {
    /// A client with admin rights. Make one per test (clients belong to one tokio runtime).
    pub async fn admin_client(&self) -> kube::Client {
        client_for(&self.admin_kubeconfig).await
    }

    /// A client for the user limited to [`LIMITED_NAMESPACE`]. Panics if none is configured.
    pub async fn limited_client(&self) -> kube::Client {
        let path = self.limited_kubeconfig.as_ref().unwrap_or_else(|| {
            panic!("no limited kubeconfig: set BERTH_LIMITED_KUBECONFIG or put limited.kubeconfig beside BERTH_KUBECONFIG")
        });
        client_for(path).await
    }

    /// Node port `slot` (0 to 9) of a block of ten that this test process holds alone
    /// among every process using this cluster (node ports are cluster-wide): the block is
    /// taken by an exclusive lock on a file beside the kubeconfig, held until the process
    /// exits, so it is safe under `cargo test` (a process per test binary) and `cargo
    /// nextest` (a process per test) alike.
    pub fn node_port(&self, slot: u16) -> u16 {
        assert!(slot < 10, "ten node ports per test process");
        static BLOCK: OnceLock<u16> = OnceLock::new();
        let block = *BLOCK.get_or_init(|| {
            let dir = self.admin_kubeconfig.with_file_name("node-port-blocks");
            std::fs::create_dir_all(&dir)
                .unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
            // 30000-32699: the default node port range, in blocks of ten. A block no
            // process had yet first (a failed test's namespace may still hold the ports
            // of a block it had), then one free now.
            let take = |block: &u16, fresh: bool| {
                let path = dir.join(format!("{block}.lock"));
                let file = if fresh {
                    match std::fs::File::create_new(&path) {
                        Ok(file) => file,
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return false,
                        Err(e) => panic!("creating {}: {e}", path.display()),
                    }
                } else {
                    std::fs::File::open(&path)
                        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()))
                };
                let held = file.try_lock().is_ok();
                if held {
                    // Kept open, and so locked, for the life of the process.
                    std::mem::forget(file);
                }
                held
            };
            (0..270)
                .find(|block| take(block, true))
                .or_else(|| (0..270).find(|block| take(block, false)))
                .expect("all 270 blocks of node ports are held by other test processes")
        });
        30000 + block * 10 + slot
    }

    /// Where to look when something failed.
    pub fn logs_hint(&self) -> String {
        match &self.state_dir {
            Some(dir) => format!("component logs in {}", dir.display()),
            None => format!("cluster from {}", self.admin_kubeconfig.display()),
        }
    }
}

async fn client_for(path: &Path) -> kube::Client {
    let kubeconfig = Kubeconfig::read_from(path)
        .unwrap_or_else(|e| panic!("reading kubeconfig {}: {e}", path.display()));
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("loading kubeconfig {}: {e}", path.display()));
    kube::Client::try_from(config).unwrap_or_else(|e| panic!("building a kube client: {e}"))
}

/// What one look at a condition found.
#[derive(Debug)]
pub enum Check<T> {
    /// The condition holds; here is what the caller wanted.
    Done(T),
    /// Not yet; the text says what was seen, for the failure message.
    Pending(String),
}

/// Polls `look` until it is [`Check::Done`], panicking after `timeout` with what was seen last.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut look: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Check<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match look().await {
            Check::Done(v) => return v,
            Check::Pending(seen) => {
                if Instant::now() >= deadline {
                    panic!("timed out after {timeout:?} waiting for {what}; last seen: {seen}");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A name unlikely to clash with other test runs on the same cluster.
pub fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}-{}-{:x}", std::process::id(), nanos % 0xfffff)
}
