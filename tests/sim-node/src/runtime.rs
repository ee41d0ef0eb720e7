//! The simulated containers' live state, shared by the pod loop, the probes and exec: when
//! each container started, its restarts and probe results, and the pod's life (running,
//! terminating, stopped).

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::core::v1::{ContainerStatus, Pod},
    jiff::Timestamp,
};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};

use crate::{
    podstatus::{ContainerView, PodView, Terminated},
    probes,
};

/// A pod, by namespace and name.
pub type Key = (String, String);

/// Where a pod is in its life on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Life {
    Running,
    /// Deleted: its grace period runs; probes have stopped, exec still works.
    Terminating,
    /// Its containers are gone: exec sessions are ended, new ones refused.
    Stopped,
}

/// Kubernetes' default `terminationGracePeriodSeconds`.
const DEFAULT_GRACE_SECONDS: i64 = 30;

/// A pod's grace period: the one its deletion asked for, else its spec's, else 30 s.
pub fn grace_period(pod: &Pod) -> Duration {
    let secs = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| pod.spec.as_ref()?.termination_grace_period_seconds)
        .unwrap_or(DEFAULT_GRACE_SECONDS);
    Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every pod the node runs.
pub struct Runtime {
    pods_dir: PathBuf,
    grace_cap: Duration,
    pods: Mutex<HashMap<Key, Arc<PodRuntime>>>,
    notify: mpsc::UnboundedSender<Key>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("pods_dir", &self.pods_dir)
            .field("grace_cap", &self.grace_cap)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// The runtime, and the receiver of the pods whose status should be published again.
    pub fn new(
        pods_dir: PathBuf,
        grace_cap: Duration,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Key>) {
        let (notify, rx) = mpsc::unbounded_channel();
        let runtime = Arc::new(Self {
            pods_dir,
            grace_cap,
            pods: Mutex::new(HashMap::new()),
            notify,
        });
        (runtime, rx)
    }

    /// Asks the pod loop to look at a pod again (sends to [`Runtime::new`]'s receiver).
    pub fn notifier(&self) -> mpsc::UnboundedSender<Key> {
        self.notify.clone()
    }

    /// The scratch directory of a pod, where its commands run.
    pub fn pod_dir(&self, key: &Key) -> PathBuf {
        self.pods_dir.join(&key.0).join(&key.1)
    }

    /// The pod `key` with uid `uid`, tracked from now on if it was not. A tracked pod of
    /// that name with another uid is an earlier one: it is stopped and replaced.
    pub fn track(&self, key: &Key, uid: &str) -> Arc<PodRuntime> {
        let mut pods = lock(&self.pods);
        if let Some(pod) = pods.get(key) {
            if pod.uid == uid {
                return pod.clone();
            }
            pod.stop();
        }
        let pod = Arc::new(PodRuntime {
            key: key.clone(),
            uid: uid.to_owned(),
            dir: self.pod_dir(key),
            grace_cap: self.grace_cap,
            notify: self.notify.clone(),
            life: watch::Sender::new(Life::Running),
            state: Mutex::new(PodState::default()),
        });
        pods.insert(key.clone(), pod.clone());
        pod
    }

    pub fn find(&self, key: &Key) -> Option<Arc<PodRuntime>> {
        lock(&self.pods).get(key).cloned()
    }

    /// Stops and forgets pod `key` (only if it has uid `uid`, when given).
    pub fn remove(&self, key: &Key, uid: Option<&str>) {
        let mut pods = lock(&self.pods);
        if pods
            .get(key)
            .is_some_and(|p| uid.is_none_or(|uid| p.uid == uid))
            && let Some(pod) = pods.remove(key)
        {
            pod.stop();
        }
    }

    /// The pods whose deletion this node has seen and which are not gone yet.
    pub fn ending(&self) -> Vec<Key> {
        lock(&self.pods)
            .iter()
            .filter(|(_, pod)| pod.life() != Life::Running)
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Stops and forgets every pod not in `keep` (after a relist: the others are gone).
    pub fn retain(&self, keep: &HashSet<Key>) {
        lock(&self.pods).retain(|key, pod| {
            let kept = keep.contains(key);
            if !kept {
                pod.stop();
            }
            kept
        });
    }
}

/// One pod's containers.
pub struct PodRuntime {
    key: Key,
    uid: String,
    dir: PathBuf,
    grace_cap: Duration,
    notify: mpsc::UnboundedSender<Key>,
    life: watch::Sender<Life>,
    state: Mutex<PodState>,
}

impl std::fmt::Debug for PodRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodRuntime")
            .field("key", &self.key)
            .field("uid", &self.uid)
            .field("life", &*self.life.borrow())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct PodState {
    /// When this node first saw the pod's deletion: its grace period runs from there.
    terminating_since: Option<Instant>,
    containers: std::collections::BTreeMap<String, ContainerView>,
    /// The probe workers, started once with the pod's containers.
    probes: Option<Vec<JoinHandle<()>>>,
}

impl PodRuntime {
    pub fn key(&self) -> &Key {
        &self.key
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub fn life(&self) -> Life {
        *self.life.borrow()
    }

    pub fn watch_life(&self) -> watch::Receiver<Life> {
        self.life.subscribe()
    }

    /// Takes in the containers of `pod` (running since `started`, or as its status says
    /// after a restart of this node) and starts their exec probes, once.
    pub fn sync(self: &Arc<Self>, pod: &Pod, started: Timestamp) {
        if self.life() != Life::Running {
            return;
        }
        let Some(spec) = pod.spec.as_ref() else {
            return;
        };
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref());
        let mut state = lock(&self.state);
        for c in &spec.containers {
            state.containers.entry(c.name.clone()).or_insert_with(|| {
                let known = statuses.and_then(|ss| ss.iter().find(|s| s.name == c.name));
                let mut view = known.map_or_else(|| ContainerView::fresh(started), seen);
                // A kubelet's readiness starts as a failure until an exec probe passes.
                if probes::has_exec_readiness(c) {
                    view.probe_ready = Some(false);
                }
                view
            });
        }
        if state.probes.is_none() {
            let grace = grace_period(pod);
            let workers = spec
                .containers
                .iter()
                .filter_map(|c| probes::spawn(self.clone(), c, grace))
                .collect();
            state.probes = Some(workers);
        }
    }

    /// What the pod's containers are doing.
    pub fn view(&self) -> PodView {
        let state = lock(&self.state);
        PodView {
            terminating: self.life() != Life::Running,
            containers: state.containers.clone(),
        }
    }

    /// Marks the pod terminating (probes stop); returns when its deletion was first seen.
    pub fn begin_termination(&self) -> Instant {
        let mut state = lock(&self.state);
        let since = *state.terminating_since.get_or_insert_with(Instant::now);
        self.life.send_if_modified(|life| {
            let running = *life == Life::Running;
            if running {
                *life = Life::Terminating;
            }
            running
        });
        for worker in state.probes.iter().flatten() {
            worker.abort();
        }
        since
    }

    /// The containers are gone: probes stop, exec sessions end.
    pub fn stop(&self) {
        self.life.send_if_modified(|life| {
            let was = *life;
            *life = Life::Stopped;
            was != Life::Stopped
        });
        for worker in lock(&self.state).probes.iter().flatten() {
            worker.abort();
        }
    }

    /// How long container `name` has been running.
    pub fn container_age(&self, name: &str) -> Duration {
        let started = lock(&self.state).containers.get(name).map(|c| c.started_at);
        started.map_or(Duration::ZERO, |t| {
            Timestamp::now()
                .duration_since(t)
                .try_into()
                .unwrap_or(Duration::ZERO)
        })
    }

    /// How long a kill with grace period `grace` takes here: the grace, capped.
    pub fn capped(&self, grace: Duration) -> Duration {
        grace.min(self.grace_cap)
    }

    /// Records container `name`'s exec readiness probe result.
    pub fn set_ready(&self, name: &str, ready: bool) {
        self.update(name, |c| {
            let changed = c.probe_ready != Some(ready);
            c.probe_ready = Some(ready);
            changed
        });
    }

    /// Container `name` is being killed (failed liveness probe): it is not ready.
    pub fn stopping(&self, name: &str) {
        self.update(name, |c| !std::mem::replace(&mut c.stopping, true));
    }

    /// Container `name` runs again: one more restart, its previous run ended killed.
    pub fn restarted(&self, name: &str) {
        self.update(name, |c| {
            let now = Timestamp::now();
            c.last_terminated = Some(Terminated {
                exit_code: 137,
                reason: "Error".to_owned(),
                started_at: c.started_at,
                finished_at: now,
            });
            c.started_at = now;
            c.restart_count += 1;
            c.stopping = false;
            if c.probe_ready.is_some() {
                c.probe_ready = Some(false);
            }
            true
        });
    }

    /// Applies `change` to container `name` while running; asks for a new status if it
    /// says something changed.
    fn update(&self, name: &str, change: impl FnOnce(&mut ContainerView) -> bool) {
        if self.life() != Life::Running {
            return;
        }
        let changed = lock(&self.state)
            .containers
            .get_mut(name)
            .is_some_and(change);
        if changed {
            let _ = self.notify.send(self.key.clone());
        }
    }
}

/// A container as its published status shows it (this node restarted meanwhile).
fn seen(status: &ContainerStatus) -> ContainerView {
    let now = Timestamp::now();
    let started = status
        .state
        .as_ref()
        .and_then(|s| s.running.as_ref())
        .and_then(|r| r.started_at.as_ref())
        .map_or(now, |t| t.0);
    let last_terminated = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .map(|t| Terminated {
            exit_code: t.exit_code,
            reason: t.reason.clone().unwrap_or_default(),
            started_at: t.started_at.as_ref().map_or(now, |t| t.0),
            finished_at: t.finished_at.as_ref().map_or(now, |t| t.0),
        });
    ContainerView {
        started_at: started,
        restart_count: status.restart_count,
        last_terminated,
        probe_ready: None,
        stopping: false,
    }
}
