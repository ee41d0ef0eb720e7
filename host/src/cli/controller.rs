//! `berth controller`: run the controller with the platform team's rules and site config,
//! one of several replicas (a Lease elects the one that reconciles), a line on stderr for
//! each reconcile.

use berth::{Cluster, Connection, Controller, Happening, LeaseConfig, SERVICE_ACCOUNT};
use serde_json::json;

use super::args::{ElectionArgs, LogFormat, RulesArgs, RulesLocation};
use super::error::CliError;
use super::exit_codes::ExitStatus;
use super::setup::site_and_rules;

/// Run until SIGINT or SIGTERM, watching `namespaces` (none: every namespace).
pub async fn run(
    connection: &Connection,
    namespaces: Vec<String>,
    with: &RulesArgs,
    election: &ElectionArgs,
    (http, format): (Option<std::net::SocketAddr>, LogFormat),
) -> Result<ExitStatus, CliError> {
    // A controller must not change its rules behind anyone's back: a tag can move.
    if let Some(RulesLocation::Oci(reference)) = &with.rules
        && reference.digest.is_none()
    {
        return Err(CliError::UnpinnedRules(reference.to_string()));
    }
    let (site, rules) = site_and_rules(with).await?;
    let cluster = Cluster::connect(connection).await?;
    let log = Log(format);
    let watching = if namespaces.is_empty() {
        "every namespace".to_owned()
    } else {
        namespaces.join(", ")
    };
    let digest = format!("sha256:{}", rules.digest());
    log.say(
        "info",
        &format!("berth controller: rules {digest}, watching {watching}"),
        json!({"rules": digest, "namespaces": namespaces}),
    );
    let mut controller = Controller::new(&cluster, rules, site).namespaces(namespaces);
    if !election.no_leader_election {
        let lease =
            LeaseConfig::new(SERVICE_ACCOUNT.0, &election.lease).duration(election.lease_duration);
        let name = format!("{}/{}", SERVICE_ACCOUNT.0, election.lease);
        log.say(
            "info",
            &format!("berth controller: waiting to lead (Lease {name})"),
            json!({"lease": name}),
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
        log.say(
            "info",
            &format!("berth controller: /metrics, /healthz, /readyz on http://{bound}"),
            json!({"http": bound.to_string()}),
        );
        tokio::spawn(super::probes::serve(listener, controller.metrics()));
    }
    controller.run(|happening| log.happened(happening)).await?;
    Ok(ExitStatus::Success)
}

/// The controller's log on stderr: a line of text, or of JSON, per thing that happened.
struct Log(LogFormat);

impl Log {
    /// `message` as text, or as a JSON object with `fields`, the time and the level.
    fn say(&self, level: &str, message: &str, fields: serde_json::Value) {
        match self.0 {
            LogFormat::Text => eprintln!("{message}"),
            LogFormat::Json => {
                let mut line = json!({
                    "time": k8s_openapi::jiff::Timestamp::now().to_string(),
                    "level": level,
                    "msg": message,
                });
                if let (Some(line), serde_json::Value::Object(fields)) =
                    (line.as_object_mut(), fields)
                {
                    line.extend(fields);
                }
                eprintln!("{line}");
            }
        }
    }

    fn happened(&self, happening: Happening) {
        match happening {
            Happening::Reconciled {
                component,
                generation,
                took,
                outcome,
            } => {
                let ms = took.as_secs_f64() * 1000.0;
                let mut fields = json!({
                    "component": component, "generation": generation,
                    "result": if outcome.is_ok() { "success" } else { "error" },
                    "duration_ms": (ms * 10.0).round() / 10.0,
                });
                let generation =
                    generation.map_or_else(String::new, |g| format!("generation {g}, "));
                match outcome {
                    Ok(()) => self.say(
                        "info",
                        &format!("reconciled {component} ({generation}{ms:.1} ms)"),
                        fields,
                    ),
                    Err(error) => {
                        fields["error"] = json!(error);
                        self.say(
                            "error",
                            &format!(
                                "reconcile of {component} failed ({generation}{ms:.1} ms): {error}"
                            ),
                            fields,
                        );
                    }
                }
            }
            Happening::WatchFailed(error) => {
                self.say(
                    "error",
                    &format!("watch failed: {error}"),
                    json!({"error": error}),
                );
            }
            Happening::Leading(true) => {
                self.say("info", "leading: reconciling", json!({"leading": true}))
            }
            Happening::Leading(false) => self.say(
                "info",
                "no longer leading: stopped reconciling",
                json!({"leading": false}),
            ),
            Happening::LeaseFailed(why) => {
                self.say(
                    "error",
                    &format!("cannot lead: {why}"),
                    json!({"error": why}),
                );
            }
            _ => {}
        }
    }
}
