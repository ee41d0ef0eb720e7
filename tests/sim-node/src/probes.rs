//! Exec readiness and liveness probes, run for real as a kubelet runs them: on the probe's
//! schedule, with its timeout and thresholds. Other probe kinds (http, tcp, grpc) are not
//! run: they count as passing once their initial delay is over.

use std::{
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::{Container, Probe};
use tokio::{sync::watch, task::JoinHandle};

use crate::{
    process,
    runtime::{Life, PodRuntime},
};

/// An exec probe's command and timing, with Kubernetes' defaults and minimums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecProbe {
    pub command: Vec<String>,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
    /// The probe's own grace period for the kill a liveness failure causes.
    pub grace: Option<Duration>,
}

fn seconds(value: Option<i32>, default: i32, min: i32) -> Duration {
    Duration::from_secs(u64::try_from(value.unwrap_or(default).max(min)).unwrap_or(0))
}

fn count(value: Option<i32>, default: u32) -> u32 {
    value
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(default)
        .max(1)
}

impl ExecProbe {
    /// The probe, if it is an exec one.
    pub fn of(probe: &Probe) -> Option<Self> {
        let exec = probe.exec.as_ref()?;
        Some(Self {
            command: exec.command.clone().unwrap_or_default(),
            initial_delay: seconds(probe.initial_delay_seconds, 0, 0),
            period: seconds(probe.period_seconds, 10, 1),
            timeout: seconds(probe.timeout_seconds, 1, 1),
            success_threshold: count(probe.success_threshold, 1),
            failure_threshold: count(probe.failure_threshold, 3),
            grace: probe
                .termination_grace_period_seconds
                .map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0))),
        })
    }
}

/// Whether the container's readiness comes from an exec probe.
pub fn has_exec_readiness(c: &Container) -> bool {
    c.readiness_probe.as_ref().and_then(ExecProbe::of).is_some()
}

/// Consecutive results of a probe, counted toward its thresholds as the kubelet does.
#[derive(Debug, Default)]
pub struct Threshold {
    last: Option<bool>,
    run: u32,
}

impl Threshold {
    /// Records one result; returns it when it has now held for its threshold in a row.
    pub fn observe(&mut self, ok: bool, probe: &ExecProbe) -> Option<bool> {
        if self.last == Some(ok) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(ok);
            self.run = 1;
        }
        let needed = if ok {
            probe.success_threshold
        } else {
            probe.failure_threshold
        };
        (self.run >= needed).then_some(ok)
    }
}

/// Starts the probe worker of container `c`, if it has exec probes. `grace` is the pod's
/// grace period: a kill for a failed liveness probe takes that long (capped).
pub fn spawn(pod: Arc<PodRuntime>, c: &Container, grace: Duration) -> Option<JoinHandle<()>> {
    let readiness = c.readiness_probe.as_ref().and_then(ExecProbe::of);
    let liveness = c.liveness_probe.as_ref().and_then(ExecProbe::of);
    if readiness.is_none() && liveness.is_none() {
        return None;
    }
    let worker = Worker {
        pod,
        container: c.name.clone(),
        env: process::literal_env(c),
        grace,
    };
    Some(tokio::spawn(worker.run(readiness, liveness)))
}

/// A probe, when it runs next, and its results so far.
struct Scheduled<'a> {
    kind: &'static str,
    probe: &'a ExecProbe,
    due: Instant,
    threshold: Threshold,
    settled: Option<bool>,
}

impl<'a> Scheduled<'a> {
    fn new(kind: &'static str, probe: &'a ExecProbe, started: Instant) -> Self {
        Self {
            kind,
            probe,
            due: started + probe.initial_delay,
            threshold: Threshold::default(),
            settled: None,
        }
    }
}

/// The probes of one container.
struct Worker {
    pod: Arc<PodRuntime>,
    container: String,
    env: Vec<(String, String)>,
    grace: Duration,
}

impl Worker {
    async fn run(self, readiness: Option<ExecProbe>, liveness: Option<ExecProbe>) {
        let mut life = self.pod.watch_life();
        loop {
            // One run of the container: its probes' delays count from its start.
            let age = self.pod.container_age(&self.container);
            let started = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
            let mut ready = readiness
                .as_ref()
                .map(|p| Scheduled::new("readiness", p, started));
            let mut live = liveness
                .as_ref()
                .map(|p| Scheduled::new("liveness", p, started));
            loop {
                let Some(due) = ready.iter().chain(live.iter()).map(|s| s.due).min() else {
                    return;
                };
                tokio::select! {
                    () = tokio::time::sleep_until(due.into()) => {}
                    () = not_running(&mut life) => return,
                }
                let now = Instant::now();
                if let Some(s) = ready.as_mut().filter(|s| s.due <= now)
                    && let Some(result) = self.probe(s).await
                {
                    self.pod.set_ready(&self.container, result);
                }
                if let Some(s) = live.as_mut().filter(|s| s.due <= now)
                    && self.probe(s).await == Some(false)
                {
                    // The kubelet kills the container (waiting its grace period, capped
                    // here as for a deletion), then starts it again.
                    self.pod.stopping(&self.container);
                    let kill = self.pod.capped(s.probe.grace.unwrap_or(self.grace));
                    tokio::select! {
                        () = tokio::time::sleep(kill) => {}
                        () = not_running(&mut life) => return,
                    }
                    self.pod.restarted(&self.container);
                    break;
                }
            }
        }
    }

    /// Runs the probe that is due, schedules its next run; returns the result once it
    /// reached its threshold.
    async fn probe(&self, s: &mut Scheduled<'_>) -> Option<bool> {
        let outcome = self.exec(s.probe).await;
        s.due = (s.due + s.probe.period).max(Instant::now());
        let result = s.threshold.observe(outcome.is_ok(), s.probe);
        if result.is_some() && result != s.settled {
            // Transitions only: a probe failing every second would flood the log.
            let (ns, pod) = self.pod.key();
            let what = match &outcome {
                Ok(()) => "passes".to_owned(),
                Err(e) => format!("fails: {e}"),
            };
            eprintln!(
                "sim-node: {} probe of {ns}/{pod} container {} {what}",
                s.kind, self.container
            );
            s.settled = result;
        }
        result
    }

    /// Runs the probe's command once, in the container's directory and environment.
    async fn exec(&self, probe: &ExecProbe) -> Result<(), String> {
        let dir = self.pod.dir();
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| format!("pod directory {}: {e}", dir.display()))?;
        let mut cmd = process::command(
            dir,
            &self.pod.key().1,
            &self.container,
            &self.env,
            &probe.command,
        )
        .ok_or("no command")?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting {:?}: {e}", probe.command))?;
        match tokio::time::timeout(probe.timeout, child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(format!("{:?} exited with {status}", probe.command)),
            Ok(Err(e)) => Err(format!("waiting for {:?}: {e}", probe.command)),
            Err(_) => {
                // Past its timeout the probe fails, and its command is ended.
                process::kill_all(&mut child).await;
                let _ = child.wait().await;
                Err(format!(
                    "{:?} timed out after {:?}",
                    probe.command, probe.timeout
                ))
            }
        }
    }
}

/// Returns once the pod no longer runs (terminating or stopped).
async fn not_running(life: &mut watch::Receiver<Life>) {
    // An error means the pod's runtime is gone: not running either.
    let _ = life.wait_for(|l| *l != Life::Running).await.map(|_| ());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn probe(v: serde_json::Value) -> Probe {
        serde_json::from_value(v).expect("probe")
    }

    #[test]
    fn exec_probes_get_kubernetes_defaults_and_others_are_not_exec() {
        let p = ExecProbe::of(&probe(json!({ "exec": { "command": ["true"] } })))
            .expect("an exec probe");
        assert_eq!(p.command, ["true"]);
        assert_eq!(p.initial_delay, Duration::ZERO);
        assert_eq!(p.period, Duration::from_secs(10));
        assert_eq!(p.timeout, Duration::from_secs(1));
        assert_eq!((p.success_threshold, p.failure_threshold), (1, 3));
        let http = probe(json!({ "httpGet": { "path": "/", "port": 80 } }));
        assert_eq!(ExecProbe::of(&http), None);
        let zero = ExecProbe::of(&probe(
            json!({ "exec": { "command": ["x"] }, "periodSeconds": 0, "failureThreshold": 0 }),
        ))
        .expect("exec");
        assert_eq!(zero.period, Duration::from_secs(1), "at least a second");
        assert_eq!(zero.failure_threshold, 1);
    }

    #[test]
    fn results_settle_after_their_threshold_in_a_row() {
        let p = ExecProbe::of(&probe(json!({
            "exec": { "command": ["x"] }, "successThreshold": 2, "failureThreshold": 3,
        })))
        .expect("exec");
        let mut t = Threshold::default();
        assert_eq!(t.observe(false, &p), None);
        assert_eq!(t.observe(false, &p), None);
        assert_eq!(t.observe(true, &p), None, "a success breaks the run");
        assert_eq!(t.observe(false, &p), None);
        assert_eq!(t.observe(false, &p), None);
        assert_eq!(t.observe(false, &p), Some(false));
        assert_eq!(t.observe(true, &p), None);
        assert_eq!(t.observe(true, &p), Some(true));
        assert_eq!(t.observe(true, &p), Some(true));
    }
}
