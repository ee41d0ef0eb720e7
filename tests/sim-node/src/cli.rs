//! Command-line options and the Kubernetes client they describe.

use std::{net::SocketAddr, path::PathBuf};

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
