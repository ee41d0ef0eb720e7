//! Watches pods: binds unscheduled ones to this node, runs them on paper, and ends deleted
//! ones as a kubelet does: Terminating for their grace period (capped), then gone.

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::StreamExt as _;
use k8s_openapi::{api::core::v1::Pod, jiff::Timestamp};
use kube::{
    Api, ResourceExt as _,
    api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions},
    runtime::{WatchStreamExt as _, watcher},
};
use serde_json::json;
use tokio::sync::mpsc;

use crate::{
    podstatus,
    runtime::{self, Key, Runtime},
};

/// Retry delay after a failed API call for one pod.
const RETRY: Duration = Duration::from_secs(1);

/// How often every pod being ended is looked at again (the kubelet's status manager
/// syncs every 10 s).
const SYNC_PERIOD: Duration = Duration::from_secs(10);

/// Why the pod simulation stopped.
#[derive(Debug, thiserror::Error)]
pub enum PodSimError {
    #[error("the pod watch ended")]
    WatchEnded,
    #[error("writing the ready file: {0}")]
    ReadyFile(#[source] std::io::Error),
}

/// The pod side of the simulated kubelet.
pub struct PodSim {
    client: kube::Client,
    node_name: String,
    runtime: Arc<Runtime>,
    next_ip: Mutex<u32>,
    /// The earliest pending look at each pod.
    timers: Mutex<HashMap<Key, Instant>>,
    requeue_tx: mpsc::UnboundedSender<Key>,
    requeue_rx: Mutex<Option<mpsc::UnboundedReceiver<Key>>>,
}

impl std::fmt::Debug for PodSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodSim")
            .field("node_name", &self.node_name)
            .field("runtime", &self.runtime)
            .finish_non_exhaustive()
    }
}

impl PodSim {
    /// `requeue_rx` receives the pods to look at again: the runtime's and our timers'.
    pub fn new(
        client: kube::Client,
        node_name: String,
        runtime: Arc<Runtime>,
        requeue_rx: mpsc::UnboundedReceiver<Key>,
    ) -> Arc<Self> {
        Arc::new(Self {
            client,
            node_name,
            requeue_tx: runtime.notifier(),
            runtime,
            next_ip: Mutex::new(0),
            timers: Mutex::new(HashMap::new()),
            requeue_rx: Mutex::new(Some(requeue_rx)),
        })
    }

    /// Runs until the watch fails for good. Touches `ready_file` once the first list is handled.
    pub async fn run(self: Arc<Self>, ready_file: Option<PathBuf>) -> Result<(), PodSimError> {
        let mut requeue_rx = self
            .requeue_rx
            .lock()
            .ok()
            .and_then(|mut rx| rx.take())
            .ok_or(PodSimError::WatchEnded)?;
        let all: Api<Pod> = Api::all(self.client.clone());
        let mut events = watcher(all, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut ready_file = ready_file;
        // The pods of a (re)list: those tracked and not listed were deleted meanwhile.
        let mut listed: HashSet<Key> = HashSet::new();
        let mut sync = tokio::time::interval(SYNC_PERIOD);
        sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(Ok(watcher::Event::Apply(pod))) => self.handle(&pod).await,
                    Some(Ok(watcher::Event::InitApply(pod))) => {
                        listed.insert(key(&pod));
                        self.handle(&pod).await;
                    }
                    Some(Ok(watcher::Event::Delete(pod))) => self.forget(&pod).await,
                    Some(Ok(watcher::Event::InitDone)) => {
                        self.runtime.retain(&std::mem::take(&mut listed));
                        if let Some(path) = ready_file.take() {
                            tokio::fs::write(&path, b"ready\n").await.map_err(PodSimError::ReadyFile)?;
                        }
                    }
                    Some(Ok(watcher::Event::Init)) => listed.clear(),
                    Some(Err(e)) => eprintln!("sim-node: pod watch error (retrying): {e}"),
                    None => return Err(PodSimError::WatchEnded),
                },
                _ = sync.tick() => {
                    // As the kubelet's status manager syncs every 10 s: every pod this
                    // node is ending is looked at again, whatever events were missed.
                    for key in self.runtime.ending() {
                        let _ = self.requeue_tx.send(key);
                    }
                }
                Some((ns, name)) = requeue_rx.recv() => {
                    // This look is the one a timer asked for: a retry scheduled from here
                    // on must not be taken for one already pending (that lost a pod whose
                    // look failed while the API server was away: it stayed Terminating).
                    self.clear_fired_timer(&(ns.clone(), name.clone()));
                    let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
                    match api.get_opt(&name).await {
                        Ok(Some(pod)) => self.handle(&pod).await,
                        // Gone, its Delete event missed: forgotten as if it had come.
                        Ok(None) => self.forget_key(&(ns, name), None).await,
                        Err(e) => {
                            eprintln!("sim-node: fetching pod {ns}/{name}: {e}");
                            self.requeue_after((ns, name), RETRY);
                        }
                    }
                }
            }
        }
    }

    async fn handle(&self, pod: &Pod) {
        if let Err(e) = self.reconcile(pod).await {
            let key = key(pod);
            eprintln!("sim-node: pod {}/{}: {e} (retrying)", key.0, key.1);
            self.requeue_after(key, RETRY);
        }
    }

    /// Looks at the pod again after `delay`, unless a look is already due by then.
    fn requeue_after(&self, key: Key, delay: Duration) {
        let Ok(mut timers) = self.timers.lock() else {
            return;
        };
        let due = Instant::now() + delay;
        if timers.get(&key).is_some_and(|pending| *pending <= due) {
            return;
        }
        timers.insert(key.clone(), due);
        drop(timers);
        let tx = self.requeue_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(key);
        });
    }

    /// Forgets the pending look at `key` if it is due (its timer fired).
    fn clear_fired_timer(&self, key: &Key) {
        if let Ok(mut timers) = self.timers.lock()
            && timers.get(key).is_some_and(|due| *due <= Instant::now())
        {
            timers.remove(key);
        }
    }

    fn clear_timer(&self, key: &Key) {
        if let Ok(mut timers) = self.timers.lock() {
            timers.remove(key);
        }
    }

    async fn reconcile(&self, pod: &Pod) -> Result<(), kube::Error> {
        let key = key(pod);
        self.clear_timer(&key);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.0);
        let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
        let ours = node == Some(self.node_name.as_str());

        if pod.metadata.deletion_timestamp.is_some() {
            match node {
                // Never ran: nothing to stop (the apiserver itself deletes these at once).
                None => {
                    self.delete_now(&api, pod).await?;
                    self.forget(pod).await;
                }
                Some(_) if ours => self.terminate(&api, pod, key).await?,
                Some(_) => {}
            }
            return Ok(());
        }

        let Some(node) = node else {
            let binding = json!({
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": { "name": key.1, "namespace": key.0 },
                "target": { "apiVersion": "v1", "kind": "Node", "name": self.node_name },
            });
            return match api
                .create_subresource::<_, serde_json::Value>(
                    "binding",
                    &key.1,
                    &PostParams::default(),
                    &binding,
                )
                .await
            {
                Ok(_) => Ok(()),
                // Already bound (our own earlier attempt won): the next event shows it.
                Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => Ok(()),
                Err(e) => Err(e),
            };
        };
        if node != self.node_name {
            return Ok(());
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            return Ok(());
        }

        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let now = Timestamp::now();
        let started = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map_or(now, |t| t.0);
        let containers = self.runtime.track(&key, &uid);
        containers.sync(pod, started);
        self.publish(&api, pod, key, &containers.view()).await
    }

    /// Patches the pod's status to what its containers are doing, if it shows otherwise.
    async fn publish(
        &self,
        api: &Api<Pod>,
        pod: &Pod,
        key: Key,
        view: &podstatus::PodView,
    ) -> Result<(), kube::Error> {
        let plan = podstatus::desired(pod, Timestamp::now(), &self.allocate_ip(pod), view);
        if let Some(patch) = &plan.patch {
            match api
                .patch_status(&key.1, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        if let Some(delay) = plan.recheck_in {
            self.requeue_after(key, delay + Duration::from_millis(50));
        }
        Ok(())
    }

    /// A deleted pod of this node: Terminating (not ready, exec still works) for its grace
    /// period, capped; then its containers stop, their exec sessions end, and it is deleted
    /// for good as a kubelet does once the containers are gone.
    async fn terminate(&self, api: &Api<Pod>, pod: &Pod, key: Key) -> Result<(), kube::Error> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let containers = self.runtime.track(&key, &uid);
        let since = containers.begin_termination();
        let grace = containers.capped(runtime::grace_period(pod));
        let left = (since + grace).saturating_duration_since(Instant::now());
        if !left.is_zero() {
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            if phase == Some("Running") {
                self.publish(api, pod, key.clone(), &containers.view())
                    .await?;
            }
            self.requeue_after(key, left);
            return Ok(());
        }
        containers.stop();
        self.delete_now(api, pod).await
        // The Delete event forgets the pod.
    }

    /// Deletes the pod at once, as the kubelet does when its containers are gone; only
    /// this pod (its uid), not a later one of its name.
    async fn delete_now(&self, api: &Api<Pod>, pod: &Pod) -> Result<(), kube::Error> {
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&pod.name_any(), &dp).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A fake pod IP from 10.244.0.0/16, never contacted. Pods keep the one they have.
    fn allocate_ip(&self, pod: &Pod) -> String {
        if let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.clone()) {
            return ip;
        }
        let n = self.next_ip.lock().map_or(0, |mut next| {
            let n = *next;
            *next = (n + 1) % (250 * 250);
            n
        });
        format!("10.244.{}.{}", n / 250, n % 250 + 2)
    }

    /// Stops the pod's containers and removes its scratch directory once the pod is gone.
    async fn forget(&self, pod: &Pod) {
        self.forget_key(&key(pod), pod.metadata.uid.as_deref())
            .await;
    }

    /// [`PodSim::forget`] by name (only the pod of uid `uid`, when given).
    async fn forget_key(&self, key: &Key, uid: Option<&str>) {
        self.clear_timer(key);
        self.runtime.remove(key, uid);
        let dir = self.runtime.pod_dir(key);
        if let Err(e) = tokio::fs::remove_dir_all(&dir).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!("sim-node: removing {}: {e}", dir.display());
        }
    }
}

fn key(pod: &Pod) -> Key {
    (pod.namespace().unwrap_or_default(), pod.name_any())
}
