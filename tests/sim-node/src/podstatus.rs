//! The pod status a simulated pod should have at a given moment, from its spec and what its
//! containers are doing (pure, unit-tested).

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::{
    api::core::v1::{Container, Pod},
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::{SignedDuration, Timestamp},
};
use serde_json::{Value, json};

/// Image substring that keeps a container from ever becoming Ready (test knob).
pub const NEVER_READY_MARKER: &str = "never-ready";

/// How a container's previous run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Terminated {
    pub exit_code: i32,
    pub reason: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
}

/// What one simulated container is doing, as the node's runtime knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerView {
    /// When the current run started.
    pub started_at: Timestamp,
    pub restart_count: i32,
    pub last_terminated: Option<Terminated>,
    /// The exec readiness probe's settled result; `None` when no exec probe decides.
    pub probe_ready: Option<bool>,
    /// Being killed (a failed liveness probe): not ready until it runs again.
    pub stopping: bool,
}

impl ContainerView {
    /// A container that started at `started_at` and never restarted.
    pub fn fresh(started_at: Timestamp) -> Self {
        Self {
            started_at,
            restart_count: 0,
            last_terminated: None,
            probe_ready: None,
            stopping: false,
        }
    }
}

/// What the runtime knows of a pod's containers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodView {
    /// The pod is being deleted: its containers are stopping, none is ready.
    pub terminating: bool,
    /// By container name; a container missing here counts as started with the pod.
    pub containers: BTreeMap<String, ContainerView>,
}

/// What [`desired`] decided for a pod.
#[derive(Debug, PartialEq)]
pub struct Plan {
    /// A merge patch for the pod's status subresource, if it differs from what is there.
    pub patch: Option<Value>,
    /// When to look at the pod again because a container becomes Ready then.
    pub recheck_in: Option<Duration>,
}

/// Whether a container is one the simulation never reports Ready.
pub fn never_ready(container: &Container) -> bool {
    container
        .image
        .as_deref()
        .is_some_and(|image| image.contains(NEVER_READY_MARKER))
}

/// Initial delay of a readiness probe that is not an exec one (those count as passing
/// once it is over); exec probes run for real and decide through [`ContainerView`].
fn ready_delay(container: &Container) -> Duration {
    let secs = container
        .readiness_probe
        .as_ref()
        .and_then(|probe| probe.initial_delay_seconds)
        .unwrap_or(0);
    Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

fn time_value(t: Timestamp) -> Value {
    serde_json::to_value(Time(t)).unwrap_or(Value::Null)
}

fn container_id(uid: &str, name: &str, run: i32) -> String {
    format!("sim://{uid}/{name}/{run}")
}

/// Whether container `c` is ready at `now`, or when to look again if it becomes so later.
fn container_ready(
    c: &Container,
    view: &ContainerView,
    published_restarts: i32,
    now: Timestamp,
) -> (bool, Option<Duration>) {
    if never_ready(c) || view.stopping {
        return (false, None);
    }
    // A restart is shown not ready at least once, however quickly the container is back.
    if published_restarts < view.restart_count {
        return (false, Some(Duration::ZERO));
    }
    if let Some(ready) = view.probe_ready {
        return (ready, None);
    }
    let delay = SignedDuration::try_from(ready_delay(c)).unwrap_or(SignedDuration::MAX);
    let elapsed = now.duration_since(view.started_at);
    if elapsed >= delay {
        (true, None)
    } else {
        (false, Some((delay - elapsed).unsigned_abs()))
    }
}

/// The parts of a status [`desired`] decides, to tell whether a patch would change anything.
fn projection(status: &Value) -> Value {
    let conditions: BTreeMap<String, Value> = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["type"].as_str().unwrap_or("").to_owned(),
                c["status"].clone(),
            )
        })
        .collect();
    let containers: Vec<Value> = status["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let state = |field: &str| match &c[field] {
                Value::Null => json!({}),
                v => v.clone(),
            };
            json!([
                c["name"],
                c["ready"],
                c["restartCount"],
                state("state"),
                state("lastState")
            ])
        })
        .collect();
    json!([status["phase"], conditions, containers])
}

/// Computes the status of a pod running on the simulated node at `now`.
///
/// `pod_ip` is used when the pod has none yet; `view` is what its containers are doing.
/// Returns no patch when the pod already shows the same phase, readiness, runs and
/// restarts, so watch events caused by our own patches settle.
pub fn desired(pod: &Pod, now: Timestamp, pod_ip: &str, view: &PodView) -> Plan {
    let status = pod.status.clone().unwrap_or_default();
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default();
    let started = status.start_time.as_ref().map_or(now, |t| t.0);
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let published_restarts = |name: &str| {
        status
            .container_statuses
            .as_ref()
            .and_then(|ss| ss.iter().find(|s| s.name == name))
            .map_or(0, |s| s.restart_count)
    };

    let mut recheck: Option<Duration> = None;
    let mut all_ready = !containers.is_empty();
    let mut container_statuses = Vec::with_capacity(containers.len());
    for c in &containers {
        let cv = view
            .containers
            .get(&c.name)
            .cloned()
            .unwrap_or_else(|| ContainerView::fresh(started));
        let (ready, later) = if view.terminating {
            (false, None)
        } else {
            container_ready(c, &cv, published_restarts(&c.name), now)
        };
        if let Some(later) = later {
            recheck = Some(recheck.map_or(later, |r| r.min(later)));
        }
        all_ready &= ready;
        let image = c.image.clone().unwrap_or_default();
        let last_state = match &cv.last_terminated {
            Some(t) => json!({ "terminated": {
                "exitCode": t.exit_code,
                "reason": t.reason,
                "startedAt": time_value(t.started_at),
                "finishedAt": time_value(t.finished_at),
                "containerID": container_id(&uid, &c.name, cv.restart_count - 1),
            } }),
            None => json!({}),
        };
        container_statuses.push(json!({
            "name": c.name,
            "image": image,
            "imageID": format!("sim://{image}"),
            "containerID": container_id(&uid, &c.name, cv.restart_count),
            "ready": ready,
            "started": true,
            "restartCount": cv.restart_count,
            "state": { "running": { "startedAt": time_value(cv.started_at) } },
            "lastState": last_state,
        }));
    }

    let current = serde_json::to_value(&status).unwrap_or(Value::Null);
    let current_ready = |kind: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == kind)
            .map(|c| (c.status == "True", c.last_transition_time.clone()))
    };
    let started_v = time_value(started);
    let truth = |b: bool| if b { "True" } else { "False" };
    // The transition time stays what it was unless the condition flips.
    let condition = |kind: &str, value: bool| {
        let at = match current_ready(kind) {
            Some((was, Some(at))) if was == value => {
                serde_json::to_value(at).unwrap_or(Value::Null)
            }
            _ if kind == "Initialized" || kind == "PodScheduled" => started_v.clone(),
            _ => time_value(now),
        };
        json!({ "type": kind, "status": truth(value), "lastProbeTime": null, "lastTransitionTime": at })
    };
    let ip = status.pod_ip.clone().unwrap_or_else(|| pod_ip.to_owned());
    let patch = json!({
        "status": {
            "phase": "Running",
            "hostIP": "127.0.0.1",
            "podIP": ip,
            "podIPs": [ { "ip": ip } ],
            "startTime": started_v,
            "qosClass": status.qos_class.clone().unwrap_or_else(|| "BestEffort".to_owned()),
            "conditions": [
                condition("Initialized", true),
                condition("Ready", all_ready),
                condition("ContainersReady", all_ready),
                condition("PodScheduled", true),
            ],
            "containerStatuses": container_statuses,
        }
    });
    let changed = projection(&current) != projection(&patch["status"]);
    Plan {
        patch: changed.then_some(patch),
        recheck_in: recheck,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(image: &str, delay: Option<i32>) -> Pod {
        serde_json::from_value(json!({
            "metadata": { "name": "p", "namespace": "n", "uid": "u1" },
            "spec": { "containers": [ {
                "name": "main",
                "image": image,
                "readinessProbe": delay.map(|d| json!({ "initialDelaySeconds": d, "exec": { "command": ["true"] } })),
            } ] },
        }))
        .expect("valid pod")
    }

    fn none() -> PodView {
        PodView::default()
    }

    fn apply(pod: &mut Pod, plan: &Plan) {
        let patch = plan.patch.clone().expect("a patch");
        pod.status = Some(serde_json::from_value(patch["status"].clone()).expect("valid status"));
    }

    fn ready(pod: &Pod) -> bool {
        pod.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .is_some_and(|c| c.status == "True")
    }

    #[test]
    fn pending_pod_becomes_running_and_ready_at_once_without_probe() {
        let mut p = pod("nginx", None);
        let now = Timestamp::now();
        let plan = desired(&p, now, "10.244.0.2", &none());
        assert_eq!(plan.recheck_in, None);
        apply(&mut p, &plan);
        assert!(ready(&p));
        let status = p.status.as_ref().expect("status");
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(status.pod_ip.as_deref(), Some("10.244.0.2"));
        // Settled: a second look changes nothing.
        assert_eq!(desired(&p, now, "10.244.0.9", &none()).patch, None);
    }

    #[test]
    fn readiness_waits_for_initial_delay() {
        let mut p = pod("nginx", Some(5));
        let t0 = Timestamp::now();
        let plan = desired(&p, t0, "10.244.0.3", &none());
        assert_eq!(plan.recheck_in, Some(Duration::from_secs(5)));
        apply(&mut p, &plan);
        assert!(!ready(&p));
        let later = t0 + SignedDuration::from_secs(6);
        let plan = desired(&p, later, "ignored", &none());
        assert_eq!(plan.recheck_in, None);
        apply(&mut p, &plan);
        assert!(ready(&p));
        let status = p.status.as_ref().expect("status");
        assert_eq!(status.pod_ip.as_deref(), Some("10.244.0.3"), "keeps its IP");
    }

    #[test]
    fn never_ready_image_runs_but_is_never_ready() {
        let mut p = pod("example/never-ready:1", None);
        let plan = desired(&p, Timestamp::now(), "10.244.0.4", &none());
        assert_eq!(plan.recheck_in, None);
        apply(&mut p, &plan);
        assert!(!ready(&p));
        assert_eq!(
            p.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Running")
        );
        assert_eq!(desired(&p, Timestamp::now(), "x", &none()).patch, None);
    }

    fn container_status(pod: &Pod) -> k8s_openapi::api::core::v1::ContainerStatus {
        pod.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs.first().cloned())
            .expect("a container status")
    }

    fn running(view: ContainerView) -> PodView {
        PodView {
            terminating: false,
            containers: [("main".to_owned(), view)].into(),
        }
    }

    #[test]
    fn a_terminating_pod_is_not_ready_and_stays_running() {
        let mut p = pod("nginx", None);
        let now = Timestamp::now();
        let plan = desired(&p, now, "10.244.0.5", &none());
        apply(&mut p, &plan);
        assert!(ready(&p));
        let terminating = PodView {
            terminating: true,
            ..PodView::default()
        };
        let plan = desired(&p, now, "x", &terminating);
        apply(&mut p, &plan);
        assert!(!ready(&p));
        assert!(!container_status(&p).ready);
        assert_eq!(
            p.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Running")
        );
        assert_eq!(desired(&p, now, "x", &terminating).patch, None, "settled");
    }

    #[test]
    fn an_exec_probe_result_decides_readiness() {
        let mut p = pod("nginx", Some(0));
        let now = Timestamp::now();
        let mut view = ContainerView::fresh(now);
        view.probe_ready = Some(false);
        let plan = desired(&p, now, "10.244.0.6", &running(view.clone()));
        apply(&mut p, &plan);
        assert!(!ready(&p), "not ready before the probe passes");
        view.probe_ready = Some(true);
        let plan = desired(&p, now, "x", &running(view.clone()));
        apply(&mut p, &plan);
        assert!(ready(&p));
        assert_eq!(desired(&p, now, "x", &running(view)).patch, None);
    }

    #[test]
    fn a_restart_is_published_not_ready_once_then_ready() {
        let mut p = pod("nginx", None);
        let t0 = Timestamp::now();
        let view = ContainerView::fresh(t0);
        let plan = desired(&p, t0, "10.244.0.7", &running(view.clone()));
        apply(&mut p, &plan);
        assert!(ready(&p));
        let t1 = t0 + SignedDuration::from_secs(3);
        let restarted = ContainerView {
            started_at: t1,
            restart_count: 1,
            last_terminated: Some(Terminated {
                exit_code: 137,
                reason: "Error".to_owned(),
                started_at: t0,
                finished_at: t1,
            }),
            ..view
        };
        let plan = desired(&p, t1, "x", &running(restarted.clone()));
        apply(&mut p, &plan);
        assert!(!ready(&p), "the restart shows the container not ready");
        let status = container_status(&p);
        assert_eq!(status.restart_count, 1);
        let last = status
            .last_state
            .and_then(|s| s.terminated)
            .expect("lastState.terminated");
        assert_eq!(last.exit_code, 137);
        assert_eq!(last.reason.as_deref(), Some("Error"));
        let plan = desired(&p, t1, "x", &running(restarted.clone()));
        apply(&mut p, &plan);
        assert!(ready(&p), "back once the restart is shown");
        assert_eq!(desired(&p, t1, "x", &running(restarted)).patch, None);
    }

    #[test]
    fn a_stopping_container_is_not_ready() {
        let mut p = pod("nginx", None);
        let now = Timestamp::now();
        let mut view = ContainerView::fresh(now);
        let plan = desired(&p, now, "10.244.0.8", &running(view.clone()));
        apply(&mut p, &plan);
        assert!(ready(&p));
        view.stopping = true;
        let plan = desired(&p, now, "x", &running(view));
        apply(&mut p, &plan);
        assert!(!ready(&p));
    }
}
