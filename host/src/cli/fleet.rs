//! Many components in one call: each rendered on its own, then deployed, diffed,
//! undeployed or shown with bounded concurrency; one component's failure stops or
//! half-makes no other, and each outcome is reported.

use std::future::Future;
use std::io::IsTerminal;

use berth::Origin;
use berth::{Built, RenderError};
use berth::{Capabilities, Rendered, Rules, SiteConfig, Spec};
use berth::{Cluster, ClusterError, DeployReport, Status, UndoReport};
use futures::StreamExt;
use serde::Serialize;

use super::args::{Output, WaitArgs};
use super::error::CliError;
use super::exit_codes::ExitStatus;
use super::report;

/// Render every spec on its own: a spec that does not render, or builds an object an
/// earlier spec builds too, fails alone.
pub fn render_each(
    rules: &Rules,
    specs: &[(Origin, Spec)],
    site: &SiteConfig,
    capabilities: &Capabilities,
    namespace: &str,
) -> Vec<(String, Result<Rendered, RenderError>)> {
    let mut built = Built::default();
    let mut all = Vec::with_capacity(specs.len());
    for (origin, spec) in specs {
        let rendered = rules
            .render_from(origin, spec, site, capabilities, namespace)
            .and_then(|rendered| built.claim(origin, &rendered).map(|()| rendered));
        all.push((spec.component_name.clone(), rendered));
    }
    all
}

/// How one component's deploy ended.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// The component.
    pub component: String,
    /// `deployed`, `rolled out`, `rollout failed`, `failed`.
    pub result: &'static str,
    /// What deploy did, when it got that far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<DeployReport>,
    /// What was put back after a failed rollout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undone: Option<UndoReport>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Outcome {
    fn exit_status(&self) -> ExitStatus {
        match self.result {
            "failed" => ExitStatus::Error,
            "rollout failed" => ExitStatus::NotAvailable,
            _ => ExitStatus::Success,
        }
    }
}

/// How one component's deploy went, one spec or many.
pub struct Deployed {
    /// What deploy did.
    pub report: DeployReport,
    /// The rollout as waited for (`None`: not waited for).
    pub rollout: Option<Result<Status, ClusterError>>,
    /// What was put back after the rollout failed.
    pub undone: Option<UndoReport>,
}

/// Deploy one component, then wait for its rollout and put back what the deploy changed
/// if it fails, as `wait` says: the one path of every deploy, whether one spec or many.
/// `deployed` sees the report before the wait starts, `progress` each state while waiting.
pub async fn deploy_one(
    cluster: &Cluster,
    component: &str,
    rendered: Rendered,
    wait: &WaitArgs,
    deployed: impl FnOnce(&DeployReport),
    progress: impl FnMut(&Status),
) -> Result<Deployed, ClusterError> {
    let report = cluster.deploy(component, rendered).await?;
    deployed(&report);
    if !wait.wait {
        return Ok(Deployed {
            report,
            rollout: None,
            undone: None,
        });
    }
    let rollout = cluster.wait(component, wait.timeout, progress).await;
    let undone = match &rollout {
        Err(error) if rollout_failed(error) && !wait.keep_on_failure => {
            Some(cluster.undo(&report, wait.undo_timeout).await)
        }
        _ => None,
    };
    Ok(Deployed {
        report,
        rollout: Some(rollout),
        undone,
    })
}

/// Deploy every rendered component, at most `max_concurrency` at once, each waited for
/// (and undone when its rollout fails) as `wait` says.
pub async fn deploy(
    cluster: &Cluster,
    rendered: Vec<(String, Result<Rendered, RenderError>)>,
    wait: &WaitArgs,
    max_concurrency: usize,
    output: Output,
) -> ExitStatus {
    let jobs = rendered.into_iter().map(|(component, rendered)| {
        let label = component.clone();
        let job = async move {
            let rendered = match rendered {
                Ok(rendered) => rendered,
                Err(e) => return failed(component, None, &CliError::from(e)),
            };
            let done = deploy_one(cluster, &component, rendered, wait, |_| {}, |_| {}).await;
            let Deployed {
                report,
                rollout,
                undone,
            } = match done {
                Ok(done) => done,
                Err(e) => return failed(component, None, &CliError::from(e)),
            };
            let (result, error) = match rollout {
                None => ("deployed", None),
                Some(Ok(_)) => ("rolled out", None),
                Some(Err(error)) if rollout_failed(&error) => {
                    ("rollout failed", Some(error.to_string()))
                }
                Some(Err(e)) => return failed(component, Some(report), &CliError::from(e)),
            };
            Outcome {
                component,
                result,
                report: Some(report),
                undone,
                error,
            }
        };
        (label, job)
    });
    let outcomes = run_all(jobs, max_concurrency, "deploying", |o: &Outcome| {
        let line = match (&o.error, o.result) {
            (Some(e), _) => format!("{}: {}: {e}", o.component, o.result),
            (None, result) => format!("{}: {result}", o.component),
        };
        if output == Output::Text {
            let _ = report::write_stdout(&format!("{line}\n"));
            if let Some(undone) = &o.undone {
                report::undone(undone);
            }
        }
    })
    .await;
    if output == Output::Json {
        let _ = report::write_stdout(&format!("{}\n", report::json(&outcomes)));
    }
    worst(outcomes.iter().map(Outcome::exit_status))
}

fn failed(component: String, report: Option<DeployReport>, error: &CliError) -> Outcome {
    Outcome {
        component,
        result: "failed",
        report,
        undone: None,
        error: Some(crate::one_line(error)),
    }
}

/// Whether `error` says the rollout did not finish (not that berth could not look).
pub fn rollout_failed(error: &ClusterError) -> bool {
    matches!(
        error,
        ClusterError::Timeout { .. }
            | ClusterError::RolloutFailed { .. }
            | ClusterError::Deleted { .. }
    )
}

/// The exit status of several outcomes: an error above a rollout that did not finish above
/// success.
pub fn worst(statuses: impl Iterator<Item = ExitStatus>) -> ExitStatus {
    statuses
        .max_by_key(|s| match s {
            ExitStatus::Success => 0,
            ExitStatus::NotAvailable => 1,
            _ => 2,
        })
        .unwrap_or(ExitStatus::Success)
}

/// Run `jobs` (each with the name it shows as), at most `max_concurrency` at once, calling
/// `done` as each finishes. On a terminal, a live line on stderr names the jobs in flight,
/// as cargo shows its own; otherwise only `done`'s lines.
pub async fn run_all<T, F>(
    jobs: impl Iterator<Item = (String, F)>,
    max_concurrency: usize,
    verb: &str,
    mut done: impl FnMut(&T),
) -> Vec<T>
where
    F: Future<Output = T>,
{
    let live = std::io::stderr().is_terminal();
    let jobs: Vec<(String, F)> = jobs.collect();
    let total = jobs.len();
    // By the job's place: two jobs may show one name.
    let mut in_flight: Vec<(usize, String)> = Vec::new();
    let mut queue = jobs.into_iter().enumerate();
    let mut running = futures::stream::FuturesUnordered::new();
    let mut results = Vec::with_capacity(total);
    loop {
        while running.len() < max_concurrency.max(1) {
            let Some((index, (name, job))) = queue.next() else {
                break;
            };
            in_flight.push((index, name));
            running.push(async move { (index, job.await) });
        }
        if live {
            let names: Vec<&str> = in_flight.iter().map(|(_, name)| name.as_str()).collect();
            eprint!(
                "\r\x1b[K{verb} {}/{total}: {}",
                results.len(),
                names.join(", ")
            );
        }
        let Some((index, result)) = running.next().await else {
            break;
        };
        in_flight.retain(|(i, _)| *i != index);
        if live {
            eprint!("\r\x1b[K");
        }
        done(&result);
        results.push(result);
    }
    results
}
