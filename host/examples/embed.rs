//! Embedding berth: render a spec held in memory with the default rules, deploy it, wait
//! for the rollout, and remove it again. `cargo xtask test` runs it on the local control
//! plane; elsewhere: `KUBECONFIG=… cargo run -p berth --example embed`.

use std::time::Duration;

use berth::{Cluster, Connection, Rules, RulesOptions, SiteConfig, Spec};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut spec = Spec::new("embedded", "nginx:1.27");
    spec.replicas = 2;
    spec.ports.push("80:0".into());
    let cluster = Cluster::connect(&Connection::default()).await?;
    let capabilities = cluster.capabilities().await?;
    let rules = Rules::default_rules(&RulesOptions::default())?;
    let site = SiteConfig::default();
    let rendered = rules.render(&spec, &site, &capabilities, cluster.namespace())?;
    println!("{} built by the {}", rendered.component, rendered.rules);
    let report = cluster.deploy(&spec.component_name, rendered).await?;
    for (object, action) in &report.actions {
        println!("{object} {action}");
    }
    let timeout = Duration::from_secs(60);
    let status = cluster.wait(&spec.component_name, timeout, |_| {}).await?;
    println!(
        "{} ({} of {} ready)",
        status.rollout.message(),
        status.ready,
        status.desired
    );

    let removed = cluster
        .undeploy_and_wait(&spec.component_name, timeout)
        .await?;
    println!("removed {} objects", removed.deleted.len());
    Ok(())
}
