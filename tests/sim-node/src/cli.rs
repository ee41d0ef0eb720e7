//! Command-line options and the Kubernetes client they describe.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// A simulated node for berth's local control plane.
#[derive(Debug, clap::Parser)]
#[command(version, about)]
pub struct Args {
    /// Name of the Node object to register.
    #[arg(long, default_value = "sim-node")]
    pub node_name: String,

    /// Kubeconfig to use (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,

    /// Directory for per-pod scratch directories (exec runs commands there).
    #[arg(long)]
    pub work_dir: PathBuf,

    /// Address of the kubelet (exec) endpoint; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// File created once the node is registered and the pod watch has synced.
    #[arg(long)]
    pub ready_file: Option<PathBuf>,

    /// Longest a deleted pod stays Terminating (and a container killed by its liveness
    /// probe takes to stop), in ms, whatever its grace period says
    /// [default: $BERTH_SIM_GRACE_CAP_MS, else 1000].
    #[arg(long)]
    pub grace_cap_ms: Option<u64>,
}

/// Environment variable for `--grace-cap-ms` (read here: clap's `env` feature is off).
pub const GRACE_CAP_ENV: &str = "BERTH_SIM_GRACE_CAP_MS";

/// The default grace cap. A second: a test polling every 250 ms sees a deleted pod
/// Terminating several times, and exec sessions meet the end of the grace rather than a
/// race with the deletion; yet each of the suite's many deletions (rollouts, scale-downs,
/// undeploys, namespace drops; in parallel) costs only about a second, not 30.
pub const DEFAULT_GRACE_CAP: Duration = Duration::from_millis(1000);

impl Args {
    /// `--grace-cap-ms`, else `$BERTH_SIM_GRACE_CAP_MS`, else [`DEFAULT_GRACE_CAP`].
    pub fn grace_cap(&self) -> anyhow::Result<Duration> {
        if let Some(ms) = self.grace_cap_ms {
            return Ok(Duration::from_millis(ms));
        }
        match std::env::var(GRACE_CAP_ENV) {
            Ok(v) if !v.trim().is_empty() => v
                .trim()
                .parse()
                .map(Duration::from_millis)
                .with_context(|| format!("{GRACE_CAP_ENV}={v:?} is not a number of ms")),
            Ok(_) | Err(std::env::VarError::NotPresent) => Ok(DEFAULT_GRACE_CAP),
            Err(e) => Err(anyhow::anyhow!("{GRACE_CAP_ENV}: {e}")),
        }
    }
}

/// Builds the client from `--kubeconfig`, or infers it like kubectl does.
pub async fn client(args: &Args) -> anyhow::Result<kube::Client> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .context("loading kubeconfig")?
        }
        None => kube::Config::infer()
            .await
            .context("inferring kube config")?,
    };
    kube::Client::try_from(config).context("building the kube client")
}
