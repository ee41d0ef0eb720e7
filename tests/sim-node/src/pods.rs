//! Watches pods: binds unscheduled ones to this node, runs them on paper, finalizes deletions.

use std::{
    collections::HashSet,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
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

use crate::podstatus;

/// Retry delay after a failed API call for one pod.
const RETRY: Duration = Duration::from_secs(1);

/// A pod to look at again (fetched fresh), identified by namespace and name.
type Key = (String, String);

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
    work_dir: PathBuf,
    next_ip: Mutex<u32>,
    timers: Mutex<HashSet<Key>>,
    requeue_tx: mpsc::UnboundedSender<Key>,
    requeue_rx: Mutex<Option<mpsc::UnboundedReceiver<Key>>>,
}

impl std::fmt::Debug for PodSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodSim")
            .field("node_name", &self.node_name)
            .field("work_dir", &self.work_dir)
            .finish_non_exhaustive()
    }
}

impl PodSim {
    pub fn new(client: kube::Client, node_name: String, work_dir: PathBuf) -> Arc<Self> {
        let (requeue_tx, requeue_rx) = mpsc::unbounded_channel();
        Arc::new(Self {
            client,
            node_name,
            work_dir,
            next_ip: Mutex::new(0),
            timers: Mutex::new(HashSet::new()),
            requeue_tx,
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
        loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod))) => {
                        self.handle(&pod).await;
                    }
                    Some(Ok(watcher::Event::Delete(pod))) => self.forget(&pod).await,
                    Some(Ok(watcher::Event::InitDone)) => {
                        if let Some(path) = ready_file.take() {
                            tokio::fs::write(&path, b"ready\n").await.map_err(PodSimError::ReadyFile)?;
                        }
                    }
                    Some(Ok(watcher::Event::Init)) => {}
                    Some(Err(e)) => eprintln!("sim-node: pod watch error (retrying): {e}"),
                    None => return Err(PodSimError::WatchEnded),
                },
                Some((ns, name)) = requeue_rx.recv() => {
                    let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
                    match api.get_opt(&name).await {
                        Ok(Some(pod)) => self.handle(&pod).await,
                        Ok(None) => {}
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

    fn requeue_after(&self, key: Key, delay: Duration) {
        let Ok(mut timers) = self.timers.lock() else {
            return;
        };
        if !timers.insert(key.clone()) {
            return;
        }
        drop(timers);
        let tx = self.requeue_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(key);
        });
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
            if node.is_none() || ours {
                let dp = DeleteParams {
                    grace_period_seconds: Some(0),
                    preconditions: Some(Preconditions {
                        uid: pod.metadata.uid.clone(),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                match api.delete(&key.1, &dp).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                    Err(e) => return Err(e),
                }
                self.forget(pod).await;
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

        let plan = podstatus::desired(pod, Timestamp::now(), &self.allocate_ip(pod));
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

    /// Removes the pod's scratch directory once the pod is gone.
    async fn forget(&self, pod: &Pod) {
        let key = key(pod);
        self.clear_timer(&key);
        let dir = self.work_dir.join(&key.0).join(&key.1);
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
