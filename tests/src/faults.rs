//! A control plane for fault tests only (its own state dir and ports, never the shared
//! one), whose API server a test may stop and start again.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::Cluster;

static FAULT_CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// The fault tests' cluster, started on first use in `<target>/berth-e2e-fault-cluster`
/// (stopped by up.sh's watchdog when this process exits). Its API server goes away during
/// tests, so they take [`exclusive`] first: one fault at a time.
pub fn fault_cluster() -> &'static Cluster {
    let started = FAULT_CLUSTER.get_or_init(|| {
        let dir = std::env::var_os("BERTH_E2E_FAULT_CLUSTER_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::target_dir().join("berth-e2e-fault-cluster"));
        crate::start(&dir)
    });
    match started {
        Ok(cluster) => cluster,
        Err(e) => panic!("no fault-test cluster: {e}"),
    }
}

/// A namespace of its own for a fault test, on the fault cluster, and an admin client.
pub async fn namespace(prefix: &str) -> (kube::Client, String) {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{Api, PostParams};
    let client = fault_cluster().admin_client().await;
    let name = crate::unique_name(prefix);
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    (client, name)
}

/// Delete a fault test's namespace (the namespace controller removes what is left).
pub async fn drop_namespace(client: &kube::Client, ns: &str) {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{Api, DeleteParams};
    let _ = Api::<Namespace>::all(client.clone())
        .delete(ns, &DeleteParams::default())
        .await;
}

/// The fault cluster to oneself while it is held: each fault test stops the API server
/// every other test would need.
#[derive(Debug)]
pub struct Exclusive {
    _lock: std::fs::File,
}

/// One fault test at a time, across threads and processes alike: an exclusive lock on a
/// file beside the fault cluster's kubeconfig (a lock belongs to the open file, so two
/// tests of one process exclude each other too), released when the guard drops.
pub async fn exclusive() -> Exclusive {
    let path = fault_cluster()
        .admin_kubeconfig
        .with_file_name("fault-tests.lock");
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::create(&path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        file.lock()
            .unwrap_or_else(|e| panic!("locking {}: {e}", path.display()));
        Exclusive { _lock: file }
    })
    .await
    .expect("the lock's thread")
}

/// The fault cluster's API server, stopped by [`Cluster::stop_apiserver`]: start it again
/// with [`Stopped::start`].
#[derive(Debug)]
#[must_use = "the API server stays down until started again"]
pub struct Stopped {
    state: PathBuf,
    url: String,
    command: String,
    at: Instant,
}

impl Cluster {
    /// Stop this cluster's kube-apiserver (SIGKILL: no graceful goodbye to its clients),
    /// keep it away for `down`, then start it again with the same command line, and wait
    /// until it answers `/readyz`. Returns how long it was unreachable in all.
    pub fn restart_apiserver(&self, down: Duration) -> Duration {
        let stopped = self.stop_apiserver();
        std::thread::sleep(down);
        stopped.start()
    }

    /// Kill this cluster's kube-apiserver (SIGKILL) and return once its port no longer
    /// answers.
    pub fn stop_apiserver(&self) -> Stopped {
        let state = self
            .state_dir
            .clone()
            .expect("only a cluster the harness started can be restarted");
        let pid =
            std::fs::read_to_string(state.join("kube-apiserver.pid")).expect("kube-apiserver.pid");
        let command = std::fs::read_to_string(state.join("kube-apiserver.cmd"))
            .expect("kube-apiserver.cmd (written by up.sh)");
        let env = std::fs::read_to_string(state.join("cluster.env")).expect("cluster.env");
        let url = env
            .lines()
            .find_map(|l| l.strip_prefix("API_URL="))
            .expect("API_URL in cluster.env")
            .to_owned();
        let at = Instant::now();
        let status = Command::new("kill")
            .args(["-KILL", pid.trim()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill kube-apiserver {pid}");
        let port = url.rsplit(':').next().expect("a port").to_owned();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_ok() {
            assert!(
                Instant::now() < deadline,
                "kube-apiserver still answers 30 s after SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Stopped {
            state,
            url,
            command,
            at,
        }
    }
}

impl Stopped {
    /// Start the API server again with the same command line and wait until it answers
    /// `/readyz` (60 s at most). Returns how long it was unreachable in all.
    pub fn start(self) -> Duration {
        let Self {
            state,
            url,
            command,
            at,
        } = self;
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(state.join("kube-apiserver.log"))
            .expect("kube-apiserver.log");
        // Not waited for: it outlives this call, and down.sh stops it by its pid file.
        #[allow(clippy::zombie_processes)]
        let child = Command::new("bash")
            .arg("-c")
            .arg(format!("exec {command}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start kube-apiserver again");
        // down.sh and the watchdog stop what the pid file names.
        std::fs::write(
            state.join("kube-apiserver.pid"),
            format!("{}\n", child.id()),
        )
        .expect("kube-apiserver.pid");
        let ca = state.join("pki/ca.crt");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = Command::new("curl")
                .args(["-sk", "--max-time", "1", "--cacert"])
                .arg(&ca)
                .arg(format!("{url}/readyz"))
                .output()
                .is_ok_and(|out| out.stdout == b"ok");
            if ready {
                return at.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "kube-apiserver did not come back within 60 s (log: {})",
                state.join("kube-apiserver.log").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
