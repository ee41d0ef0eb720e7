//! `berth controller`: run the controller with the platform team's rules and site config,
//! a line on stderr for each reconcile.

use berth::{Cluster, Connection, Controller};

use super::args::{RulesArgs, RulesLocation};
use super::error::CliError;
use super::exit_codes::ExitStatus;
use super::setup::site_and_rules;

/// Run until SIGINT or SIGTERM, watching `namespaces` (none: every namespace).
pub async fn run(
    connection: &Connection,
    namespaces: Vec<String>,
    with: &RulesArgs,
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
    Controller::new(&cluster, rules, site)
        .namespaces(namespaces)
        .run(|reconciled| match reconciled.outcome {
            Ok(()) => eprintln!("reconciled {}", reconciled.component),
            // No Component: a watch failed (tried again after a back-off).
            Err(error) if reconciled.component.is_empty() => eprintln!("watch failed: {error}"),
            Err(error) => eprintln!("reconcile of {} failed: {error}", reconciled.component),
        })
        .await?;
    Ok(ExitStatus::Success)
}
