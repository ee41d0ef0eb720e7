//! `berth controller`: run the controller with the platform team's rules and site config,
//! one of several replicas (a Lease elects the one that reconciles), a line on stderr for
//! each reconcile.

use berth::{Cluster, Connection, Controller, Happening, LeaseConfig, SERVICE_ACCOUNT};

use super::args::{ElectionArgs, RulesArgs, RulesLocation};
use super::error::CliError;
use super::exit_codes::ExitStatus;
use super::setup::site_and_rules;

/// Run until SIGINT or SIGTERM, watching `namespaces` (none: every namespace).
pub async fn run(
    connection: &Connection,
    namespaces: Vec<String>,
    with: &RulesArgs,
    election: &ElectionArgs,
    http: Option<std::net::SocketAddr>,
) -> Result<ExitStatus, CliError> {
    // A controller must not change its rules behind anyone's back: a tag can move.
    if let Some(RulesLocation::Oci(reference)) = &with.rules
        && reference.digest.is_none()
    {
        return Err(CliError::UnpinnedRules(reference.to_string()));
    }
    let (site, rules) = site_and_rules(with).await?;
    let cluster = Cluster::connect(connection).await?;
    let watching = if namespaces.is_empty() {
        "every namespace".to_owned()
    } else {
        namespaces.join(", ")
    };
    eprintln!(
        "berth controller: rules sha256:{}, watching {watching}",
        rules.digest()
    );
    let mut controller = Controller::new(&cluster, rules, site).namespaces(namespaces);
    if !election.no_leader_election {
        let lease =
            LeaseConfig::new(SERVICE_ACCOUNT.0, &election.lease).duration(election.lease_duration);
        eprintln!(
            "berth controller: waiting to lead (Lease {}/{})",
            SERVICE_ACCOUNT.0, election.lease
        );
        controller = controller.leader_election(lease);
    }
    if let Some(address) = http {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| CliError::Listen(address, e))?;
        let bound = listener
            .local_addr()
            .map_err(|e| CliError::Listen(address, e))?;
        eprintln!("berth controller: /metrics, /healthz, /readyz on http://{bound}");
        tokio::spawn(super::probes::serve(listener, controller.metrics()));
    }
    controller
        .run(|happening| match happening {
            Happening::Reconciled {
                component,
                outcome: Ok(()),
            } => eprintln!("reconciled {component}"),
            Happening::Reconciled {
                component,
                outcome: Err(error),
            } => eprintln!("reconcile of {component} failed: {error}"),
            Happening::WatchFailed(error) => eprintln!("watch failed: {error}"),
            Happening::Leading(true) => eprintln!("leading: reconciling"),
            Happening::Leading(false) => eprintln!("no longer leading: stopped reconciling"),
            Happening::LeaseFailed(why) => eprintln!("cannot lead: {why}"),
            _ => {}
        })
        .await?;
    Ok(ExitStatus::Success)
}
