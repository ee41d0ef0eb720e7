//! One reconcile of a Component: parse its spec as the CLI does, render it with the
//! platform team's rules, apply it through the engine when the cluster does not hold it as
//! rendered, and say what was found in its status. Nothing changed: nothing written.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::ObjectRef as Key;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use super::ControllerError;
use super::metrics::Metrics;
use super::quiet::{Left, Quiet};
use super::remedy::{Before, Judged, Memory, backoff, before, judge, parse_duration};
use super::resource::{Component, Inventory};
use super::status::{Applied, Found, patch as status_patch, status};
use crate::cluster::{
    Action as Done, Cluster, ClusterError, DeployReport, Read, RolloutState, Watched,
};
use crate::spec::{InputError, Origin, SiteConfig, Spec};
use crate::{Capabilities, Rules};

/// The finalizer that makes deleting a Component remove its objects first.
pub const FINALIZER: &str = "berth.dev/cleanup";
/// `orphan` on a Component: deleting it leaves its objects (to the CLI).
pub const DELETION_POLICY: &str = "berth.dev/deletion-policy";
/// How long removing a deleted Component's objects may take before it is tried again.
const REMOVAL_TIMEOUT: Duration = Duration::from_secs(120);
/// The periodic look at a Component whose objects nobody changed, unless it says.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(600);
/// How long a rollout may take unless the Component says.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Attempts of a rollout unless the Component says.
const DEFAULT_RETRIES: u32 = 3;
/// An annotation whose new value resets a Stalled Component's attempts.
pub const RECONCILE_REQUESTED_AT: &str = "berth.dev/reconcile-requested-at";

/// What every reconcile shares.
pub struct Context {
    pub(super) client: Client,
    pub(super) rules: Rules,
    pub(super) site: SiteConfig,
    pub(super) capabilities: Capabilities,
    pub(super) recorder: Recorder,
    /// Failures in a row, per Component, for the back-off.
    pub(super) failures: Mutex<HashMap<Key<Component>, u32>>,
    /// Reconciles at work at once, over every namespace watched.
    pub(super) turns: tokio::sync::Semaphore,
    pub(super) metrics: Metrics,
    /// Each reconcile's generation and duration, until the log is told of it.
    pub(super) told: Mutex<HashMap<Key<Component>, Told>>,
    /// What the last reconcile of each Component left, to skip the reads of the next.
    pub(super) quiet: Quiet,
}

/// A reconcile's generation of the spec, and how long it took.
pub(super) type Told = (Option<i64>, Duration);

/// Reconcile `component`, `watched` keeping the versions of its objects.
pub async fn reconcile(
    component: Arc<Component>,
    context: Arc<Context>,
    watched: Watched,
) -> Result<Action, ControllerError> {
    if let Some(interval) = context.quiet.unchanged(&component, &watched) {
        // Nothing of it changed since a reconcile found it as declared: no request.
        return Ok(Action::requeue(interval));
    }
    let namespace = component.namespace().unwrap_or_default();
    let name = component.name_any();
    let api: Api<Component> = Api::namespaced(context.client.clone(), &namespace);
    let cluster = Cluster::new(context.client.clone(), namespace).for_component(&name);
    let waiting = context.metrics.waiting();
    let _turn = context.turns.acquire().await;
    drop(waiting);
    let key = format!("{}/{name}", cluster.namespace());
    if component.metadata.deletion_timestamp.is_some() {
        context.metrics.component(key, None);
        context.quiet.remember(Key::from_obj(&*component), None);
        return remove(&api, &cluster, &component).await;
    }
    if !component.finalizers().iter().any(|f| f == FINALIZER) {
        // The update wakes the next reconcile.
        let mut finalizers = component.finalizers().to_vec();
        finalizers.push(FINALIZER.to_owned());
        write_finalizers(&api, &component, finalizers).await?;
        return Ok(Action::await_change());
    }
    if component.spec.suspend {
        // Acknowledged once, in the status: from then on nothing of it is written.
        let generation = component.metadata.generation;
        let observed = component
            .status
            .as_ref()
            .and_then(|s| s.observed_generation);
        if observed != generation {
            let patch = json!({"status": {"observedGeneration": generation}});
            api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(ClusterError::api(format!(
                    "cannot write the status of Component {name}"
                )))?;
        }
        return Ok(Action::await_change());
    }
    // Read afresh: the status is where the last reconcile left what it did (an attempt, a
    // rollback), and the watch's copy may not have it yet.
    let read = api.get_opt(&name).await;
    let Some(component) =
        read.map_err(ClusterError::api(format!("cannot read Component {name}")))?
    else {
        context.metrics.component(key, None);
        return Ok(Action::await_change());
    };
    let generation = component.metadata.generation.unwrap_or_default();
    let seen = observe(&cluster, &component, &context).await?;
    let now = Timestamp::now().to_string();
    let previous = component.status.as_ref();
    let mut next = status(
        previous,
        generation,
        &seen.found,
        seen.applied.as_ref(),
        seen.revision,
        &now,
    );
    let time = |t: Option<Timestamp>| t.map(|t| t.to_string());
    next.failures = seen.memory.failures;
    next.last_good_revision = seen.memory.last_good_revision;
    next.last_applied_time = time(seen.memory.applied_at);
    next.last_failure_time = time(seen.memory.failed_at);
    next.last_handled_reconcile_at = seen.handled.clone();
    if let Some(ready) = next.conditions.iter().find(|c| c.type_ == "Ready") {
        let ready = (ready.status.clone(), ready.reason.clone());
        context.metrics.component(key, Some(ready));
    }
    let mut version = component.resource_version().unwrap_or_default();
    if previous != Some(&next) {
        // Conditional on the version read: a status written meanwhile is not overwritten.
        let mut patch = status_patch(previous, &next);
        patch["metadata"] = json!({"resourceVersion": component.resource_version()});
        let written = api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(ClusterError::api(format!(
                "cannot write the status of Component {name}"
            )))?;
        version = written.resource_version().unwrap_or_default();
    }
    let left = seen.left(version, &watched, cluster.namespace(), &name);
    context.quiet.remember(Key::from_obj(&component), left);
    if let Found::InvalidSpec(why) | Found::RulesRefused(why) = &seen.found {
        // Once per refusal: the next reconcile of the same spec finds it in the status.
        let told = previous
            .and_then(|p| p.conditions.iter().find(|c| c.type_ == "Ready"))
            .is_some_and(|c| &c.message == why && c.observed_generation == generation);
        if !told {
            let note = format!("generation {generation} refused: {why}");
            event(&context, &component, EventType::Warning, "Refused", note).await;
        }
    }
    match (seen.found, seen.wake) {
        (Found::ApplyFailed(message), _) => Err(ControllerError::Apply(message)),
        // A rollout's timeout, a retry: due then, unless the Deployment's watch wakes it.
        (_, Some(wake)) => Ok(Action::requeue(wake)),
        _ => Ok(Action::requeue(seen.interval)),
    }
}

/// What one reconcile found and did.
struct Seen {
    found: Found,
    /// What it applied, if it did.
    applied: Option<Applied>,
    /// The Deployment's revision.
    revision: Option<i64>,
    /// The remediation's state after it.
    memory: Memory,
    /// The reset annotation's value acted on.
    handled: Option<String>,
    /// When to look again at the latest.
    wake: Option<Duration>,
    /// When to look again if nothing is due.
    interval: Duration,
    /// What the check that found it as rendered read, if one did.
    read: Option<Vec<Read>>,
}

impl Seen {
    fn refused(found: Found, component: &Component) -> Self {
        let status = component.status.clone().unwrap_or_default();
        Seen {
            found,
            applied: None,
            revision: None,
            memory: memory(&status),
            handled: status.last_handled_reconcile_at,
            wake: None,
            interval: DEFAULT_INTERVAL,
            read: None,
        }
    }

    /// What this reconcile leaves for the next to skip its reads, the Component now at
    /// `version`: when it found a refused spec, or its objects as rendered and rolled out
    /// (and the watches agree with what it read); nothing due, nothing applied.
    fn left(
        &self,
        version: String,
        watched: &Watched,
        namespace: &str,
        name: &str,
    ) -> Option<Left> {
        if self.wake.is_some() || self.applied.is_some() {
            return None;
        }
        let objects = match (&self.found, &self.read) {
            (Found::InvalidSpec(_) | Found::RulesRefused(_), _) => None,
            (Found::Succeeded(_), Some(read)) => Some(watched.agrees(namespace, name, read)?),
            _ => return None,
        };
        Some(Left {
            version,
            objects,
            interval: self.interval,
        })
    }
}

/// The remediation's state, as the status keeps it.
fn memory(status: &super::resource::ComponentStatus) -> Memory {
    let time = |t: &Option<String>| t.as_deref().and_then(|t| t.parse().ok());
    Memory {
        failures: status.failures,
        last_good_revision: status.last_good_revision,
        applied_at: time(&status.last_applied_time),
        failed_at: time(&status.last_failure_time),
    }
}

/// Render `component`, apply it when due, judge its rollout and remedy a failed one.
async fn observe(
    cluster: &Cluster,
    component: &Component,
    context: &Context,
) -> Result<Seen, ControllerError> {
    let name = component.name_any();
    let generation = component.metadata.generation.unwrap_or_default();
    let origin = Origin::named("spec.component");
    let spec = match Spec::from_value(&origin, component.spec.component.clone()) {
        Ok(spec) => spec,
        Err(error) => {
            return Ok(Seen::refused(
                Found::InvalidSpec(invalid(&error)),
                component,
            ));
        }
    };
    if spec.component_name != name {
        let message = format!(
            "spec.component.component_name: {:?} is not the Component's name {name:?}",
            spec.component_name
        );
        return Ok(Seen::refused(Found::InvalidSpec(message), component));
    }
    let durations = (
        duration(
            "spec.timeout",
            component.spec.timeout.as_deref(),
            DEFAULT_TIMEOUT,
        ),
        duration(
            "spec.interval",
            component.spec.interval.as_deref(),
            DEFAULT_INTERVAL,
        ),
    );
    let (timeout, interval) = match durations {
        (Ok(timeout), Ok(interval)) => (timeout, interval),
        (Err(message), _) | (_, Err(message)) => {
            return Ok(Seen::refused(Found::InvalidSpec(message), component));
        }
    };
    let retries = component
        .spec
        .remediation
        .as_ref()
        .and_then(|r| r.retries)
        .unwrap_or(DEFAULT_RETRIES);
    let started = std::time::Instant::now();
    let rendered = context.rules.render(
        &spec,
        &context.site,
        &context.capabilities,
        cluster.namespace(),
    );
    context.metrics.rendered(started.elapsed());
    let rendered = match rendered {
        Ok(rendered) => rendered,
        Err(error) => {
            let message = crate::one_line::one_line(&error);
            return Ok(Seen::refused(Found::RulesRefused(message), component));
        }
    };
    let digest = rendered.rules_digest.clone();
    let status = component.status.clone().unwrap_or_default();
    let mut memory = memory(&status);
    let requested = component.annotations().get(RECONCILE_REQUESTED_AT).cloned();
    let reset = requested.is_some() && requested != status.last_handled_reconcile_at;
    let fresh = status.last_applied_generation != Some(generation)
        || status.rules_digest.as_deref() != Some(digest.as_str());
    if fresh || reset {
        memory.failures = 0;
    }
    let now = Timestamp::now();
    let mut wake = None;
    let mut read = None;
    let apply = match before(&memory, fresh || reset, retries, now) {
        Before::Apply => true,
        Before::IfNotCurrent => {
            read = cluster.current(&name, &rendered).await?;
            read.is_none()
        }
        Before::Later(left) => {
            wake = Some(left);
            false
        }
        Before::GaveUp => false,
    };
    let mut applied = None;
    if apply {
        let report = match cluster.deploy(&name, rendered).await {
            Ok(report) => report,
            Err(error) => {
                let message = crate::one_line::one_line(&error);
                let mut seen = Seen::refused(Found::ApplyFailed(message), component);
                seen.handled = requested;
                return Ok(seen);
            }
        };
        let note = format!(
            "applied generation {generation}: {}",
            changes(&report).unwrap_or_else(|| "nothing changed".to_owned())
        );
        event(context, component, EventType::Normal, "Applied", note).await;
        if let Some(taken) = drift(&report) {
            event(
                context,
                component,
                EventType::Normal,
                "DriftCorrected",
                taken,
            )
            .await;
        }
        memory.applied_at = Some(now);
        applied = Some(Applied {
            generation,
            rules_digest: digest,
            inventory: inventory(&report),
        });
    }
    let state = cluster.status(&name).await?;
    let revision = state.revision.as_deref().and_then(|r| r.parse().ok());
    let gave_up = |memory: &Memory, last: &str| {
        Found::RolloutFailed(format!(
            "{} failed rollouts, the last: {last}; no more attempts until the spec, the rules \
             or the annotation {RECONCILE_REQUESTED_AT} change",
            memory.failures
        ))
    };
    let judged = judge(&memory, &state.rollout, timeout, now);
    if matches!(judged, Judged::RolledBack(_)) && matches!(state.rollout, RolloutState::Done(_)) {
        // The rollback made the good template the newest revision: its number now.
        memory.last_good_revision = revision;
    }
    let found = match judged {
        Judged::Succeeded(message) => {
            memory.failures = 0;
            memory.last_good_revision = revision;
            Found::Succeeded(message)
        }
        Judged::Progressing(message, left) => {
            wake = Some(left);
            Found::Progressing(message)
        }
        // Given up: the message that said why stays (the rollback's own rollout is not news).
        Judged::RolledBack(message) if memory.failures >= retries => status
            .conditions
            .iter()
            .find(|c| c.type_ == "Stalled" && c.reason == "RolloutFailed")
            .map_or_else(
                || gave_up(&memory, &message),
                |c| Found::RolloutFailed(c.message.clone()),
            ),
        Judged::RolledBack(message) => {
            wake = wake.or(Some(backoff(memory.failures)));
            Found::RolledBack(format!(
                "attempt {} of {retries} failed and was rolled back ({message}); next attempt in {:?}",
                memory.failures,
                wake.unwrap_or_default()
            ))
        }
        Judged::Failed(why) => {
            memory.failures += 1;
            memory.failed_at = Some(now);
            let back = match memory.last_good_revision {
                Some(good) if Some(good) != revision => {
                    cluster.rollback(&name, good).await?;
                    let note =
                        format!("revision {revision:?} {why}; rolled back to revision {good}");
                    event(context, component, EventType::Warning, "RolledBack", note).await;
                    format!("rolled back to revision {good}")
                }
                _ => "no earlier revision to roll back to".to_owned(),
            };
            if memory.failures >= retries {
                event(
                    context,
                    component,
                    EventType::Warning,
                    "Stalled",
                    why.clone(),
                )
                .await;
                gave_up(&memory, &format!("{why} ({back})"))
            } else {
                wake = Some(backoff(memory.failures));
                Found::RolledBack(format!(
                    "attempt {} of {retries}: {why}; {back}; next attempt in {:?}",
                    memory.failures,
                    backoff(memory.failures)
                ))
            }
        }
    };
    Ok(Seen {
        found,
        applied,
        revision,
        memory,
        handled: requested,
        wake,
        interval,
        read,
    })
}

/// The duration a field of the Component's spec gives (`default` when absent), or why it
/// is not one.
fn duration(field: &str, text: Option<&str>, default: Duration) -> Result<Duration, String> {
    let Some(text) = text else {
        return Ok(default);
    };
    parse_duration(text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{field}: {text:?} is not a duration (500ms, 30s, 5m, 1h)"))
}

/// A refused spec's message, naming the field under `spec.component`.
fn invalid(error: &InputError) -> String {
    match error {
        InputError::Field { field, message, .. } if field == "(top level)" => {
            format!("spec.component: {message}")
        }
        InputError::Field { field, message, .. } => format!("spec.component.{field}: {message}"),
        other => other.to_string(),
    }
}

/// The kinds and count of what `report` left on the cluster.
fn inventory(report: &DeployReport) -> Inventory {
    let kept: Vec<_> = report
        .actions
        .iter()
        .filter(|(_, action)| *action != Done::Deleted)
        .map(|(object, _)| object)
        .collect();
    let kinds: BTreeSet<String> = kept
        .iter()
        .map(|o| match crate::kinds::group_of(&o.api_version) {
            "" => o.kind.clone(),
            group => format!("{}.{group}", o.kind),
        })
        .collect();
    Inventory {
        kinds: kinds.into_iter().collect(),
        count: i64::try_from(kept.len()).unwrap_or(i64::MAX),
    }
}

/// What `report` changed, for the Event; `None` when nothing.
fn changes(report: &DeployReport) -> Option<String> {
    let changed: Vec<String> = report
        .actions
        .iter()
        .filter(|(_, action)| *action != Done::Unchanged)
        .map(|(object, action)| format!("{object} {action}"))
        .collect();
    (!changed.is_empty()).then(|| changed.join(", "))
}

/// The fields `report`'s apply took back from other managers, for the Event: `Deployment/
/// dep-web: spec.template.spec.containers[name=web].image from kubectl-edit`; `None` when
/// none.
fn drift(report: &DeployReport) -> Option<String> {
    let taken: Vec<String> = report
        .taken_over
        .iter()
        .map(|(object, taken)| {
            format!(
                "{object}: {} from {}",
                taken.fields.join(", "),
                taken.manager
            )
        })
        .collect();
    (!taken.is_empty()).then(|| format!("put back {}", taken.join("; ")))
}

/// Remove a deleted Component's objects (unless it orphans them), then its finalizer.
async fn remove(
    api: &Api<Component>,
    cluster: &Cluster,
    component: &Component,
) -> Result<Action, ControllerError> {
    if !component.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let orphan = component
        .annotations()
        .get(DELETION_POLICY)
        .is_some_and(|p| p == "orphan");
    let name = component.name_any();
    let done = if orphan {
        // Handed back to the CLI: the controller's mark goes, the objects stay.
        cluster.release(&name).await
    } else {
        cluster
            .undeploy_and_wait(&name, REMOVAL_TIMEOUT)
            .await
            .map(drop)
    };
    match done {
        Ok(()) | Err(ClusterError::NotFound { .. }) => {}
        Err(error) => return Err(ControllerError::Cluster(error)),
    }
    let finalizers = component
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    write_finalizers(api, component, finalizers).await?;
    Ok(Action::await_change())
}

/// Set `component`'s finalizers, conditional on the resource version read (a concurrent
/// change makes it fail, and the next reconcile sees it).
async fn write_finalizers(
    api: &Api<Component>,
    component: &Component,
    finalizers: Vec<String>,
) -> Result<(), ControllerError> {
    let patch = json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": component.resource_version(),
    }});
    api.patch(
        &component.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map(drop)
    .map_err(ClusterError::api(format!(
        "cannot write the finalizers of Component {}",
        component.name_any()
    )))
    .map_err(ControllerError::Cluster)
}

/// Publish an Event about `component`; one that cannot be written is not a failure of the
/// reconcile.
async fn event(
    context: &Context,
    component: &Component,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note.chars().take(1024).collect()),
        action: reason.to_owned(),
        secondary: None,
    };
    let _ = context
        .recorder
        .publish(&event, &component.object_ref(&()))
        .await;
}

/// After a failed reconcile: again after a back-off that doubles with each failure in a
/// row, from 1 s to 5 min.
pub fn error_policy(
    component: Arc<Component>,
    _error: &ControllerError,
    context: Arc<Context>,
) -> Action {
    let mut failures = context
        .failures
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let count = failures.entry(Key::from_obj(&*component)).or_default();
    *count = count.saturating_add(1);
    Action::requeue(backoff(*count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_spec_names_the_path_under_spec_component() {
        let origin = Origin::named("spec.component");
        let error = Spec::from_value(
            &origin,
            json!({"component_name": "web", "image": "web:1", "ports": ["80:0", {"a": 1}]}),
        )
        .unwrap_err();
        assert!(
            invalid(&error).starts_with("spec.component.ports[1]: "),
            "{}",
            invalid(&error)
        );
        let error = Spec::from_value(
            &origin,
            json!({"component_name": "web", "image": "web:1", "imagee": "x"}),
        )
        .unwrap_err();
        assert!(
            invalid(&error).starts_with("spec.component"),
            "{}",
            invalid(&error)
        );
        assert!(invalid(&error).contains("imagee"), "{}", invalid(&error));
    }
}
