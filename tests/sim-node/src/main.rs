//! `berth-sim-node`: a simulated kubelet that registers a Node, runs pods on paper and serves exec.

mod cli;
mod exec;
mod node;
mod pods;
mod podstatus;
mod probes;
mod process;
mod runtime;
mod tls;

use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser as _;
use tokio::signal::unix::{SignalKind, signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = cli::Args::parse();
    let grace_cap = args.grace_cap()?;
    let client = cli::client(&args).await?;

    tokio::fs::create_dir_all(&args.work_dir)
        .await
        .with_context(|| format!("creating work dir {}", args.work_dir.display()))?;

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding the kubelet endpoint on {}", args.listen))?;
    let port = listener.local_addr()?.port();
    let acceptor = tls::acceptor().context("making the kubelet TLS certificate")?;
    eprintln!("sim-node: kubelet endpoint on https://127.0.0.1:{port}");

    let node = node::NodeAgent::new(client.clone(), args.node_name.clone(), port, grace_cap);
    node.register().await.context("registering the Node")?;
    eprintln!(
        "sim-node: registered node {} (grace cap {grace_cap:?})",
        args.node_name
    );

    let (runtime, requeue_rx) = runtime::Runtime::new(args.work_dir.join("pods"), grace_cap);
    let exec_ctx = Arc::new(exec::ExecContext::new(client.clone(), runtime.clone()));
    let sim = pods::PodSim::new(client, args.node_name.clone(), runtime, requeue_rx);

    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;

    let ready_file = args.ready_file.clone();
    let mut exec_task = tokio::spawn(exec::serve(listener, acceptor, exec_ctx));
    let mut node_task = tokio::spawn(async move { node.heartbeat_loop().await });
    let mut pod_task = tokio::spawn(async move { sim.run(ready_file).await });

    let outcome = tokio::select! {
        _ = sigterm.recv() => { eprintln!("sim-node: SIGTERM, stopping"); Ok(()) }
        _ = sigint.recv() => { eprintln!("sim-node: SIGINT, stopping"); Ok(()) }
        r = &mut exec_task => Err(anyhow::anyhow!("exec server stopped: {r:?}")),
        r = &mut node_task => Err(anyhow::anyhow!("node heartbeat stopped: {r:?}")),
        r = &mut pod_task => Err(anyhow::anyhow!("pod simulation stopped: {r:?}")),
    };
    exec_task.abort();
    node_task.abort();
    pod_task.abort();
    outcome
}
