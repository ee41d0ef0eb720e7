//! undeploy: stop a component's Deployments, then delete every object of it, dependents
//! first; waiting, until the controllers have stopped them and everything is gone.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::api::{ApiResource, DynamicObject, ListParams, PropagationPolicy};
use kube::runtime::{WatchStreamExt, watcher};
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use super::deploy::UNDO_AFTER_FAILURE;
use super::plan::{Inverse, Patched, Step, Undo, stop};
use super::{Cluster, ClusterError};
use crate::objects::ObjectRef;
use crate::selector::Selector;

/// What undeploy removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct UndeployReport {
    /// Namespace of the objects.
    pub namespace: String,
    /// Each object deleted, with its uid.
    pub deleted: Vec<ObjectRef>,
    /// The deleted Deployments' pod selectors: the wait waits for every pod they select,
    /// those of an earlier Deployment of the component still ending included.
    #[serde(skip)]
    pub(super) pods: Vec<String>,
}

/// A Deployment stopped: the stop sent, the generation it made, its pod selector.
struct Stopped {
    step: Patched,
    generation: i64,
    selector: Option<String>,
}

impl Cluster {
    /// Delete every object of `component`, of every kind its inventory names (the kinds
    /// a workload commonly owns when the parent is gone), dependents first, the Deployment
    /// in the foreground (its pods and ReplicaSets go first); found by its ownership
    /// labels, then the inventory's parent. Each Deployment is stopped first (paused at 0
    /// replicas); if a delete fails, the stops of those left are put back. Nothing found
    /// is an error. Does not wait: [`Cluster::undeploy_and_wait`] does.
    pub async fn undeploy(&self, component: &str) -> Result<UndeployReport, ClusterError> {
        self.remove(component, None).await
    }

    /// [`Cluster::undeploy`], taking at most `timeout` in all. Before the deletes, until
    /// the controllers have seen each Deployment stopped (its ReplicaSets at 0): after
    /// that, a controller whose caches lag behind cannot make a ReplicaSet or a pod for it
    /// again, as one did after a plain foreground deletion was over. Then until every
    /// object deleted is gone (that object, by uid), and every pod its Deployments
    /// selected. When it returns `Ok`, nothing of the component is left, nor anything the
    /// controllers made for it.
    pub async fn undeploy_and_wait(
        &self,
        component: &str,
        timeout: Duration,
    ) -> Result<UndeployReport, ClusterError> {
        let deadline = Instant::now() + timeout;
        let report = self.remove(component, Some(deadline)).await?;
        self.wait_gone(component, &report, deadline, timeout)
            .await?;
        Ok(report)
    }

    /// Stop, wait for the stops until `deadline` if there is one, delete.
    async fn remove(
        &self,
        component: &str,
        deadline: Option<Instant>,
    ) -> Result<UndeployReport, ClusterError> {
        let (parent, objects) = self.objects_of(component).await?;
        if objects.is_empty() && parent.is_none() {
            return Err(ClusterError::NotFound {
                component: component.to_owned(),
                namespace: self.namespace().to_owned(),
            });
        }
        for (_, object) in &objects {
            self.not_kept_by_another(component, &object.metadata)?;
        }
        let stopped = self.stop_deployments(component, &objects).await?;
        // A dry run changed nothing for the controllers to see.
        if let Some(deadline) = deadline.filter(|_| !self.is_dry_run()) {
            // Past the deadline, or if the watch is refused, the deletes go all the same:
            // a stopped Deployment left undeleted would be half an undeploy. The wait for
            // them being gone then says what is left.
            let _ = tokio::time::timeout_at(deadline, self.until_stopped(&stopped)).await;
        }
        let mut report = UndeployReport {
            namespace: self.namespace().to_owned(),
            deleted: Vec::new(),
            pods: Vec::new(),
        };
        for (resource, object) in &objects {
            let deployment = resource.kind == "Deployment";
            if deployment {
                report.pods.extend(pod_selector(object));
            }
            let propagation = deployment.then_some(PropagationPolicy::Foreground);
            match self.delete(resource, object, propagation).await {
                Ok(deleted) => report.deleted.push(deleted),
                Err(error) => {
                    let undone = self.restart(component, &stopped, &report.deleted).await;
                    return Err(ClusterError::RolledBack {
                        error: Box::new(error),
                        undone: Box::new(undone),
                    });
                }
            }
        }
        // The parent last: until the members are gone, it names their kinds.
        if let Some((parent, _)) = parent {
            self.delete_parent(&parent).await?;
            report.deleted.push(parent);
        }
        Ok(report)
    }

    /// Stop each Deployment among `objects`; one gone or replaced meanwhile is skipped.
    async fn stop_deployments(
        &self,
        component: &str,
        objects: &[(ApiResource, DynamicObject)],
    ) -> Result<Vec<Stopped>, ClusterError> {
        let mut stopped = Vec::new();
        for (_, object) in objects.iter().filter(|(r, _)| r.kind == "Deployment") {
            let step = stop(object);
            match self
                .execute_step(component, &Step::Patch(step.clone()))
                .await
            {
                Ok(done) => {
                    let generation = done
                        .after
                        .and_then(|after| after.metadata.generation)
                        .unwrap_or_default();
                    let selector = pod_selector(object);
                    stopped.push(Stopped {
                        step,
                        generation,
                        selector,
                    });
                }
                // Gone, or replaced by another of its name: the uid in the patch is refused
                // as a change of an immutable field. Its delete, by uid, skips it too.
                Err(ClusterError::Api {
                    error: kube::Error::Api(status),
                    ..
                }) if status.code == 404
                    || (status.code == 422 && status.message.contains("metadata.uid")) => {}
                Err(error) => {
                    let undone = self.restart(component, &stopped, &[]).await;
                    return Err(ClusterError::RolledBack {
                        error: Box::new(error),
                        undone: Box::new(undone),
                    });
                }
            }
        }
        Ok(stopped)
    }

    /// Until the controllers have seen each of `stopped`: the deployment controller its
    /// stop (its observed generation) with no replica counted, then the ReplicaSet
    /// controller each of its ReplicaSets at 0 (theirs). A refused watch or list ends it
    /// early: the deletes go all the same, and the gone wait reports the refusal.
    async fn until_stopped(&self, stopped: &[Stopped]) {
        for Stopped {
            step,
            generation,
            selector,
        } in stopped
        {
            let api = self.requests.dynamic(&step.resource);
            let uid = step.object.uid.as_deref().unwrap_or_default();
            if until_seen_stopped(api, &step.object.name, uid, *generation)
                .await
                .is_err()
            {
                return;
            }
            let Some(selector) = selector else { continue };
            // Listed, not watched: the documented Role lets berth list ReplicaSets only.
            let replica_sets = self
                .requests
                .dynamic(&ApiResource::erase::<ReplicaSet>(&()));
            let lp = ListParams::default().labels(selector);
            loop {
                let Ok(listed) = replica_sets.list(&lp).await else {
                    return;
                };
                if listed
                    .items
                    .iter()
                    .all(|rs| !controlled_by(rs, uid) || at_zero(rs))
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }

    /// Put back the stops of the Deployments not `deleted`, with the engine's undo.
    async fn restart(
        &self,
        component: &str,
        stopped: &[Stopped],
        deleted: &[ObjectRef],
    ) -> super::UndoReport {
        let journal = Undo {
            component: component.to_owned(),
            steps: stopped
                .iter()
                .filter(|s| !deleted.contains(&s.step.object))
                .map(|s| (s.step.object.clone(), Inverse::Patch(s.step.reversed())))
                .collect(),
            ..Undo::default()
        };
        self.undo_journal(&journal, UNDO_AFTER_FAILURE).await
    }
}

/// A Deployment's whole pod selector, as a query (none if it has no valid one).
fn pod_selector(deployment: &DynamicObject) -> Option<String> {
    let selector = deployment.data.pointer("/spec/selector")?;
    let selector = serde_json::from_value(selector.clone()).ok()?;
    Some(Selector::new(&selector).ok()?.to_query())
}

/// Until the Deployment `name` with `uid` has a status observing `generation` or a later
/// one with no replicas, or is gone (deleted, or replaced by another of its name). The
/// watch starts again after a backoff when the API server goes away, as the gone wait's.
async fn until_seen_stopped(
    api: kube::Api<DynamicObject>,
    name: &str,
    uid: &str,
    generation: i64,
) -> Result<(), watcher::Error> {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watcher(api, config).default_backoff().boxed();
    let mut listed = false;
    while let Some(event) = events.next().await {
        let seen = match event {
            Ok(watcher::Event::Init) => {
                listed = false;
                continue;
            }
            Ok(watcher::Event::InitDone) if !listed => return Ok(()),
            Ok(watcher::Event::InitDone) => continue,
            Ok(watcher::Event::Delete(o)) if o.metadata.uid.as_deref() == Some(uid) => {
                return Ok(());
            }
            Ok(watcher::Event::InitApply(o) | watcher::Event::Apply(o)) => o,
            Ok(watcher::Event::Delete(_)) => continue,
            Err(error) if super::rollout::refused(&error) => return Err(error),
            Err(_) => continue,
        };
        if seen.metadata.uid.as_deref() != Some(uid) {
            return Ok(());
        }
        listed = true;
        if seen_stopped(&seen, generation) {
            return Ok(());
        }
    }
    Ok(())
}

/// Whether `owned`'s controller is the object with `uid`.
fn controlled_by(owned: &DynamicObject, uid: &str) -> bool {
    let owners = owned
        .metadata
        .owner_references
        .as_deref()
        .unwrap_or_default();
    owners
        .iter()
        .any(|o| o.controller == Some(true) && o.uid == uid)
}

/// Whether the ReplicaSet controller has seen `replica_set` at 0 replicas (its observed
/// generation) and counts none: from then on it makes no pod for it.
fn at_zero(replica_set: &DynamicObject) -> bool {
    let count = |path: &str| replica_set.data.pointer(path).and_then(Value::as_i64);
    count("/spec/replicas") == Some(0)
        && count("/status/observedGeneration")
            .is_some_and(|observed| observed >= replica_set.metadata.generation.unwrap_or(0))
        && count("/status/replicas").unwrap_or(0) == 0
}

/// Whether `deployment`'s status observes `generation` or later and counts no replicas.
fn seen_stopped(deployment: &DynamicObject, generation: i64) -> bool {
    let status = deployment.data.get("status");
    let field = |name: &str| status.and_then(|s| s.get(name)).and_then(Value::as_i64);
    field("observedGeneration").is_some_and(|observed| observed >= generation)
        && field("replicas").unwrap_or(0) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(generation: i64, status: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "dep-web", "uid": "u-1", "generation": generation},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn a_replica_set_is_at_zero_once_its_controller_saw_it_so() {
        let replica_set = |generation: i64, spec: i64, status: Value| -> DynamicObject {
            serde_json::from_value(json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": "dep-web-1", "generation": generation},
                "spec": {"replicas": spec}, "status": status,
            }))
            .unwrap()
        };
        // Scaled to 0, not yet seen by its controller (which may still make a pod).
        assert!(!at_zero(&replica_set(
            2,
            0,
            json!({"observedGeneration": 1})
        )));
        assert!(!at_zero(&replica_set(2, 0, json!({}))));
        assert!(!at_zero(&replica_set(
            2,
            1,
            json!({"observedGeneration": 2})
        )));
        // Seen, a pod still counted.
        assert!(!at_zero(&replica_set(
            2,
            0,
            json!({"observedGeneration": 2, "replicas": 1})
        )));
        assert!(at_zero(&replica_set(
            2,
            0,
            json!({"observedGeneration": 2, "replicas": 0})
        )));
    }

    #[test]
    fn stopped_once_the_controller_saw_the_stop_and_counts_no_replicas() {
        let cases = [
            // The controller has not seen the stop.
            (json!({"observedGeneration": 2, "replicas": 0}), false),
            // It has, and its ReplicaSets still count a pod.
            (json!({"observedGeneration": 3, "replicas": 1}), false),
            (json!({"observedGeneration": 3}), true),
            (json!({"observedGeneration": 4, "replicas": 0}), true),
            // No status yet: never seen.
            (json!({}), false),
        ];
        for (status, want) in cases {
            assert_eq!(
                seen_stopped(&deployment(3, status.clone()), 3),
                want,
                "{status}"
            );
        }
    }
}
