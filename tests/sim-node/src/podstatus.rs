//! The pod status a running simulated pod should have at a given moment (pure, unit-tested).

use std::time::Duration;

use k8s_openapi::{
    api::core::v1::{Container, Pod},
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::{SignedDuration, Timestamp},
};
use serde_json::{Value, json};

/// Image substring that keeps a container from ever becoming Ready (test knob).
pub const NEVER_READY_MARKER: &str = "never-ready";

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

/// Computes the status of a pod running on the simulated node at `now`.
///
/// `pod_ip` is used when the pod has none yet. Returns no patch when the pod already shows
/// the same phase and readiness, so watch events caused by our own patches settle.
pub fn desired(pod: &Pod, now: Timestamp, pod_ip: &str) -> Plan {
    let status = pod.status.clone().unwrap_or_default();
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default();
    let started = status.start_time.as_ref().map_or(now, |t| t.0);
    let elapsed = now.duration_since(started);

    let mut recheck: Option<Duration> = None;
    let mut ready_flags = Vec::with_capacity(containers.len());
    for c in &containers {
        if never_ready(c) {
            ready_flags.push(false);
            continue;
        }
        let delay = ready_delay(c);
        let delay_signed = SignedDuration::try_from(delay).unwrap_or(SignedDuration::MAX);
        if elapsed >= delay_signed {
            ready_flags.push(true);
        } else {
            ready_flags.push(false);
            let remaining = (delay_signed - elapsed).unsigned_abs();
            recheck = Some(recheck.map_or(remaining, |r| r.min(remaining)));
        }
    }
    let all_ready = !ready_flags.is_empty() && ready_flags.iter().all(|r| *r);

    let current_ready = status
        .conditions
        .as_ref()
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    let current_flags: Vec<bool> = containers
        .iter()
        .map(|c| {
            status
                .container_statuses
                .as_ref()
                .and_then(|ss| ss.iter().find(|s| s.name == c.name))
                .is_some_and(|s| s.ready)
        })
        .collect();
    let running = status.phase.as_deref() == Some("Running");
    if running && current_ready == all_ready && current_flags == ready_flags {
        return Plan {
            patch: None,
            recheck_in: recheck,
        };
    }

    let ip = status.pod_ip.clone().unwrap_or_else(|| pod_ip.to_owned());
    let started_v = time_value(started);
    let now_v = time_value(now);
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let container_statuses: Vec<Value> = containers
        .iter()
        .zip(&ready_flags)
        .map(|(c, ready)| {
            json!({
                "name": c.name,
                "image": c.image.clone().unwrap_or_default(),
                "imageID": format!("sim://{}", c.image.clone().unwrap_or_default()),
                "containerID": format!("sim://{uid}/{}", c.name),
                "ready": ready,
                "started": true,
                "restartCount": 0,
                "state": { "running": { "startedAt": started_v } },
            })
        })
        .collect();
    let truth = |b: bool| if b { "True" } else { "False" };
    let ready_transition = if current_ready == all_ready && running {
        started_v.clone()
    } else {
        now_v.clone()
    };
    let condition = |kind: &str, value: bool, at: &Value| json!({ "type": kind, "status": truth(value), "lastProbeTime": null, "lastTransitionTime": at });
    let patch = json!({
        "status": {
            "phase": "Running",
            "hostIP": "127.0.0.1",
            "podIP": ip,
            "podIPs": [ { "ip": ip } ],
            "startTime": started_v,
            "qosClass": status.qos_class.clone().unwrap_or_else(|| "BestEffort".to_owned()),
            "conditions": [
                condition("Initialized", true, &started_v),
                condition("Ready", all_ready, &ready_transition),
                condition("ContainersReady", all_ready, &ready_transition),
                condition("PodScheduled", true, &started_v),
            ],
            "containerStatuses": container_statuses,
        }
    });
    Plan {
        patch: Some(patch),
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
        let plan = desired(&p, now, "10.244.0.2");
        assert_eq!(plan.recheck_in, None);
        apply(&mut p, &plan);
        assert!(ready(&p));
        let status = p.status.as_ref().expect("status");
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(status.pod_ip.as_deref(), Some("10.244.0.2"));
        // Settled: a second look changes nothing.
        assert_eq!(desired(&p, now, "10.244.0.9").patch, None);
    }

    #[test]
    fn readiness_waits_for_initial_delay() {
        let mut p = pod("nginx", Some(5));
        let t0 = Timestamp::now();
        let plan = desired(&p, t0, "10.244.0.3");
        assert_eq!(plan.recheck_in, Some(Duration::from_secs(5)));
        apply(&mut p, &plan);
        assert!(!ready(&p));
        let later = t0 + SignedDuration::from_secs(6);
        let plan = desired(&p, later, "ignored");
        assert_eq!(plan.recheck_in, None);
        apply(&mut p, &plan);
        assert!(ready(&p));
        let status = p.status.as_ref().expect("status");
        assert_eq!(status.pod_ip.as_deref(), Some("10.244.0.3"), "keeps its IP");
    }

    #[test]
    fn never_ready_image_runs_but_is_never_ready() {
        let mut p = pod("example/never-ready:1", None);
        let plan = desired(&p, Timestamp::now(), "10.244.0.4");
        assert_eq!(plan.recheck_in, None);
        apply(&mut p, &plan);
        assert!(!ready(&p));
        assert_eq!(
            p.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Running")
        );
        assert_eq!(desired(&p, Timestamp::now(), "x").patch, None);
    }
}
