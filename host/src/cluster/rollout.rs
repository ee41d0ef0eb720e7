//! Rollouts: status, waiting as `kubectl rollout status` does, scaling and image upgrades.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde::Serialize;

use super::plan::{self, Patched, Step};
use super::request::REVISION_ANNOTATION;
use super::{Cluster, ClusterError, name_of, owned_by};
use crate::objects::ObjectRef;

/// A Deployment's replicas and what it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Status {
    /// The namespace.
    pub namespace: String,
    /// The Deployment's name.
    pub deployment: String,
    /// Pods wanted.
    pub desired: i32,
    /// Pods of the current pod template.
    pub updated: i32,
    /// Pods ready.
    pub ready: i32,
    /// Pods available (ready for minReadySeconds).
    pub available: i32,
    /// Images of the pod template's containers.
    pub images: Vec<String>,
    /// The deployment controller's revision number.
    pub revision: Option<String>,
    /// The reference plugin's `is_available`: available == updated == desired, with the
    /// latest spec observed.
    pub is_available: bool,
    /// Where the rollout stands, in `kubectl rollout status` words.
    pub rollout: RolloutState,
}

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "message", rename_all = "lowercase")]
pub enum RolloutState {
    /// Every replica updated and available, no old ones left.
    Done(String),
    /// Still moving.
    Progressing(String),
    /// It cannot finish (progress deadline exceeded).
    Failed(String),
}

impl RolloutState {
    /// The message.
    pub fn message(&self) -> &str {
        match self {
            RolloutState::Done(m) | RolloutState::Progressing(m) | RolloutState::Failed(m) => m,
        }
    }
}

/// Judge a Deployment's rollout the way `kubectl rollout status` does, and also wait for
/// the surplus pods of a scale-down to go.
pub fn rollout_state(d: &Deployment) -> RolloutState {
    let name = name_of(&d.metadata);
    let status = d.status.clone().unwrap_or_default();
    let generation = d.metadata.generation.unwrap_or(0);
    if generation > status.observed_generation.unwrap_or(0) {
        return RolloutState::Progressing(
            "waiting for the deployment spec update to be observed".into(),
        );
    }
    let progressing = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing");
    if progressing.is_some_and(|c| c.reason.as_deref() == Some("ProgressDeadlineExceeded")) {
        return RolloutState::Failed(format!(
            "deployment {name:?} exceeded its progress deadline"
        ));
    }
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < desired {
        RolloutState::Progressing(format!("{updated} of {desired} new replicas updated"))
    } else if replicas > updated {
        RolloutState::Progressing(format!(
            "{} old replicas pending termination",
            replicas - updated
        ))
    } else if replicas > desired {
        // A scale-down: kubectl would call this done while surplus pods still terminate.
        RolloutState::Progressing(format!(
            "{} surplus replicas pending termination",
            replicas - desired
        ))
    } else if available < updated {
        RolloutState::Progressing(format!(
            "{available} of {updated} updated replicas available"
        ))
    } else {
        RolloutState::Done(format!("deployment {name:?} successfully rolled out"))
    }
}

fn status_of(namespace: &str, d: &Deployment) -> Status {
    let s = d.status.clone().unwrap_or_default();
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = s.updated_replicas.unwrap_or(0);
    let available = s.available_replicas.unwrap_or(0);
    let observed = d.metadata.generation.unwrap_or(0) <= s.observed_generation.unwrap_or(0);
    Status {
        namespace: namespace.to_owned(),
        deployment: name_of(&d.metadata),
        desired,
        updated,
        ready: s.ready_replicas.unwrap_or(0),
        available,
        images: images_of(d),
        revision: d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION_ANNOTATION).cloned()),
        is_available: observed && available == desired && updated == desired,
        rollout: rollout_state(d),
    }
}

/// Images of the pod template's containers, in order.
pub(super) fn images_of(d: &Deployment) -> Vec<String> {
    d.spec
        .iter()
        .flat_map(|s| s.template.spec.iter())
        .flat_map(|p| p.containers.iter())
        .filter_map(|c| c.image.clone())
        .collect()
}

impl Cluster {
    /// Replicas, images and revision of `component`.
    pub async fn status(&self, component: &str) -> Result<Status, ClusterError> {
        let d = self.find_deployment(component).await?;
        Ok(status_of(self.namespace(), &d))
    }

    /// Wait until `component` is rolled out, calling `progress` with each new state; fail
    /// on a progress-deadline failure, on deletion, or after `timeout`.
    pub async fn wait(
        &self,
        component: &str,
        timeout: Duration,
        mut progress: impl FnMut(&Status),
    ) -> Result<Status, ClusterError> {
        let d = self.find_deployment(component).await?;
        let name = name_of(&d.metadata);
        let mut last = status_of(self.namespace(), &d);
        progress(&last);
        if let RolloutState::Done(_) = last.rollout {
            return Ok(last);
        }
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut events = watcher(self.deployments(), config)
            .default_backoff()
            .applied_objects()
            .boxed();
        let watching = async {
            loop {
                match events.next().await {
                    Some(Ok(d)) => {
                        let status = status_of(self.namespace(), &d);
                        if status != last {
                            progress(&status);
                        }
                        last = status;
                        match &last.rollout {
                            RolloutState::Done(_) => return Ok(()),
                            RolloutState::Failed(reason) => {
                                return Err(ClusterError::RolloutFailed {
                                    component: component.to_owned(),
                                    reason: reason.clone(),
                                });
                            }
                            RolloutState::Progressing(_) => {}
                        }
                    }
                    // The watcher starts again after a backoff: an API server restarting
                    // or throttling is waited out, within the timeout. Being refused is
                    // not going to change.
                    Some(Err(source)) if refused(&source) => {
                        return Err(ClusterError::Watch {
                            object: Box::new(ObjectRef::of("apps/v1", "Deployment", &d.metadata)),
                            error: source,
                        });
                    }
                    Some(Err(_)) => {}
                    None => {
                        return Err(ClusterError::Deleted {
                            component: component.to_owned(),
                        });
                    }
                }
            }
        };
        match tokio::time::timeout(timeout, watching).await {
            Ok(Ok(())) => Ok(last),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ClusterError::Timeout {
                component: component.to_owned(),
                waited: timeout,
                last: last.rollout.message().to_owned(),
            }),
        }
    }

    /// Set `component`'s replica count; refused when an autoscaler of the component
    /// scales its Deployment (it would undo the change). Returns what it changed, for
    /// [`Cluster::undo_scale`].
    pub async fn scale(&self, component: &str, replicas: i32) -> Result<Scaled, ClusterError> {
        let d = self.find_deployment(component).await?;
        self.not_kept_by_another(component, &d.metadata)?;
        let name = name_of(&d.metadata);
        // autoscaling/v1 is served by every cluster and names the target like the others.
        let autoscalers: Api<HorizontalPodAutoscaler> = self.requests.typed();
        let owned = autoscalers
            .list(&owned_by(component))
            .await
            .map_err(ClusterError::api(format!(
                "cannot list HorizontalPodAutoscalers in namespace {}",
                self.namespace()
            )))?;
        if let Some(hpa) = owned.items.iter().find(|hpa| {
            hpa.spec.as_ref().is_some_and(|spec| {
                spec.scale_target_ref.kind == "Deployment" && spec.scale_target_ref.name == name
            })
        }) {
            return Err(ClusterError::Autoscaled {
                component: component.to_owned(),
                autoscaler: name_of(&hpa.metadata),
            });
        }
        let step = plan::scale(&d, replicas);
        let previous = d.spec.and_then(|s| s.replicas).unwrap_or(1);
        self.execute_step(component, &Step::Patch(step.clone()))
            .await
            .map_err(|e| e.named(format!("cannot scale Deployment {name}")))?;
        Ok(Scaled {
            component: component.to_owned(),
            previous,
            replicas,
            back: step.reversed(),
        })
    }

    /// Put back the replica count `scaled` replaced (a scale whose rollout failed): the
    /// patch back, sent by the same executor.
    pub async fn undo_scale(&self, scaled: &Scaled) -> Result<(), ClusterError> {
        let back = Step::Patch(scaled.back.clone());
        let (name, previous) = (&scaled.back.object.name, scaled.previous);
        self.execute_step(&scaled.component, &back)
            .await
            .map(drop)
            .map_err(|e| e.named(format!("cannot scale Deployment {name} back to {previous}")))
    }

    /// Set the image of container `index` (0: the main container) of `component`; a rolling
    /// update follows. Returns what it changed, for [`Cluster::undo_upgrade`].
    pub async fn upgrade(
        &self,
        component: &str,
        image: &str,
        index: usize,
    ) -> Result<Upgraded, ClusterError> {
        let d = self.find_deployment(component).await?;
        self.not_kept_by_another(component, &d.metadata)?;
        let name = name_of(&d.metadata);
        let count = d.spec.as_ref().and_then(|s| s.template.spec.as_ref());
        let count = count.map_or(0, |p| p.containers.len());
        let (step, previous) =
            plan::upgrade(&d, index, image).ok_or_else(|| ClusterError::ContainerIndex {
                component: component.to_owned(),
                index,
                count,
            })?;
        self.execute_step(component, &Step::Patch(step.clone()))
            .await
            .map_err(|e| e.named(format!("cannot upgrade Deployment {name}")))?;
        Ok(Upgraded {
            component: component.to_owned(),
            container_index: index,
            previous,
            image: image.to_owned(),
            back: step.reversed(),
        })
    }

    /// Put back the image `upgraded` replaced (an upgrade whose rollout failed): a new
    /// revision with the old image, as `kubectl set image` back would make.
    pub async fn undo_upgrade(&self, upgraded: &Upgraded) -> Result<(), ClusterError> {
        let back = Step::Patch(upgraded.back.clone());
        let (name, previous) = (&upgraded.back.object.name, &upgraded.previous);
        self.execute_step(&upgraded.component, &back)
            .await
            .map(drop)
            .map_err(|e| e.named(format!("cannot put {previous} back in Deployment {name}")))
    }
}

/// What [`Cluster::scale`] changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Scaled {
    /// The component.
    pub component: String,
    /// Its replica count before.
    pub previous: i32,
    /// The count it was set to.
    pub replicas: i32,
    /// The patch that sets it back.
    #[serde(skip)]
    pub(super) back: Patched,
}

/// What [`Cluster::upgrade`] changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Upgraded {
    /// The component.
    pub component: String,
    /// The container's place in the pod template.
    pub container_index: usize,
    /// Its image before.
    pub previous: String,
    /// The image it was set to.
    pub image: String,
    /// The patch that sets it back.
    #[serde(skip)]
    pub(super) back: Patched,
}

/// Whether a watch failed because the API server refused it (not allowed, not there), as
/// opposed to failing to reach it.
pub(super) fn refused(error: &watcher::Error) -> bool {
    let client_error = match error {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => e,
        watcher::Error::WatchError(status) => return matches!(status.code, 401 | 403 | 404),
        watcher::Error::NoResourceVersion => return true,
    };
    matches!(client_error, kube::Error::Api(status) if matches!(status.code, 401 | 403 | 404))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// A Deployment `web` at generation `generation` wanting `desired` replicas, with the
    /// status fields given.
    fn deployment(generation: i64, desired: i32, status: Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "generation": generation},
            "spec": {"replicas": desired, "selector": {}, "template": {}},
            "status": status,
        }))
        .expect("deployment")
    }

    fn state(generation: i64, desired: i32, status: Value) -> RolloutState {
        rollout_state(&deployment(generation, desired, status))
    }

    #[test]
    fn a_spec_not_yet_observed_is_progressing_whatever_the_counts() {
        let s = state(
            3,
            2,
            json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}),
        );
        assert_eq!(
            s,
            RolloutState::Progressing(
                "waiting for the deployment spec update to be observed".into()
            )
        );
    }

    #[test]
    fn a_passed_progress_deadline_fails() {
        let s = state(
            2,
            2,
            json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1,
            "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
        );
        assert_eq!(
            s,
            RolloutState::Failed("deployment \"web\" exceeded its progress deadline".into())
        );
        // Progressing for another reason is not a failure.
        let s = state(
            2,
            2,
            json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1,
            "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}]}),
        );
        assert!(matches!(s, RolloutState::Progressing(_)), "{s:?}");
    }

    #[test]
    fn each_unfinished_count_is_named() {
        let observed = |extra: Value| {
            let mut status = json!({"observedGeneration": 2});
            status
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            status
        };
        assert_eq!(
            state(2, 3, observed(json!({"replicas": 3, "updatedReplicas": 1}))).message(),
            "1 of 3 new replicas updated"
        );
        // A rolling update: the new pods are there, old ones still terminating.
        assert_eq!(
            state(
                2,
                2,
                observed(json!({"replicas": 3, "updatedReplicas": 2, "availableReplicas": 2}))
            )
            .message(),
            "1 old replicas pending termination"
        );
        assert_eq!(
            state(
                2,
                1,
                observed(json!({"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}))
            )
            .message(),
            "2 surplus replicas pending termination"
        );
        assert_eq!(
            state(
                2,
                2,
                observed(json!({"replicas": 2, "updatedReplicas": 2, "availableReplicas": 1}))
            )
            .message(),
            "1 of 2 updated replicas available"
        );
        assert_eq!(
            state(
                2,
                2,
                observed(json!({"replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}))
            ),
            RolloutState::Done("deployment \"web\" successfully rolled out".into())
        );
    }

    #[test]
    fn no_status_yet_is_progressing_and_an_absent_count_means_one() {
        let unscaled = |status: Value| -> Deployment {
            serde_json::from_value(json!({
                "metadata": {"name": "web", "generation": 1},
                "spec": {"selector": {}, "template": {}},
                "status": status,
            }))
            .expect("deployment")
        };
        assert_eq!(
            rollout_state(&unscaled(json!({}))).message(),
            "waiting for the deployment spec update to be observed"
        );
        assert_eq!(
            rollout_state(&unscaled(json!({"observedGeneration": 1}))).message(),
            "0 of 1 new replicas updated"
        );
    }
}
