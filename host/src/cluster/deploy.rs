//! deploy and undeploy: create a component's objects (or apply changes to them), removing
//! what this call created if any step fails; delete them again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::wait::{await_condition, conditions::is_deleted};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::inventory::{PART_OF_LABEL, applyset_id, delete_exactly, group_kind};
use super::{
    COMPONENT_LABEL, Cluster, ClusterError, MANAGED_BY, MANAGED_BY_LABEL, RENDERED_HASH_ANNOTATION,
    RULES_DIGEST_ANNOTATION, name_of,
};
use crate::objects::{ObjectRef, Rendered};

/// What deploy did to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// It did not exist and was created.
    Created,
    /// It existed exactly as rendered.
    Unchanged,
    /// It existed and was changed to the rendered state.
    Updated,
    /// It existed but the spec no longer builds it, so it was deleted.
    Deleted,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Action::Created => "created",
            Action::Unchanged => "unchanged",
            Action::Updated => "updated",
            Action::Deleted => "deleted",
        })
    }
}

/// The deployment description: what was deployed where, and what happened to each object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeployReport {
    /// Namespace of the objects.
    pub namespace: String,
    /// Name of the Deployment.
    pub deployment: String,
    /// Names of the Services.
    pub services: Vec<String>,
    /// Each object (with its uid) and what happened to it, in the order done.
    pub actions: Vec<(ObjectRef, Action)>,
}

/// What undeploy removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UndeployReport {
    /// Namespace of the objects.
    pub namespace: String,
    /// Each object deleted, with its uid.
    pub deleted: Vec<ObjectRef>,
}

const FIELD_MANAGER: &str = "berth";

impl Cluster {
    /// Deploy `component`'s rendered objects: its inventory first (the parent ConfigMap,
    /// naming every kind this call may create), then the Services, then the Deployment, so
    /// a Service that cannot be made (a node port already taken) stops the deploy before
    /// any pod starts. Objects that exist already are left alone when unchanged and updated
    /// otherwise; objects of the component the render no longer builds are deleted
    /// (pruned), and the inventory narrowed to what is left. On failure, every object this
    /// call created is deleted again, the parent too if this call made it.
    pub async fn deploy(
        &self,
        component: &str,
        mut rendered: Rendered,
    ) -> Result<DeployReport, ClusterError> {
        let stamp = Stamp {
            component,
            set: applyset_id(component, &self.namespace),
            rules: format!("sha256:{}", rendered.rules_digest),
        };
        let hash = rendered_hash(&rendered.deployment);
        stamp.on(&mut rendered.deployment.metadata, hash);
        for service in &mut rendered.services {
            let hash = rendered_hash(service);
            stamp.on(&mut service.metadata, hash);
        }
        let kinds: BTreeSet<String> = rendered
            .objects()
            .map(|o| {
                let object = o.reference();
                group_kind(&object.api_version, &object.kind)
            })
            .collect();
        let mut report = DeployReport {
            namespace: self.namespace.clone(),
            deployment: name_of(&rendered.deployment.metadata),
            services: rendered
                .services
                .iter()
                .map(|s| name_of(&s.metadata))
                .collect(),
            actions: Vec::new(),
        };
        let mut created = Vec::new();
        let mut parent_made = None;
        let outcome = async {
            let parent = self.widen_inventory(component, &kinds).await?;
            if parent.created {
                parent_made = Some(parent.object.clone());
            }
            for service in &rendered.services {
                let done = self.put(&self.services(), service, component).await?;
                note(&mut report, &mut created, done);
            }
            let done = self
                .put(&self.deployments(), &rendered.deployment, component)
                .await?;
            note(&mut report, &mut created, done);
            let fresh = parent.created && report.actions.iter().all(|(_, a)| *a == Action::Created);
            if !fresh {
                // A redeploy (or the adoption of a component deployed before inventories):
                // what an earlier render built and this one does not must go.
                self.prune(component, &mut report).await?;
            }
            if !parent.created && parent.before.difference(&kinds).next().is_some() {
                self.narrow_inventory(component, &kinds).await?;
            }
            Ok::<(), ClusterError>(())
        }
        .await;
        match outcome {
            Ok(()) => Ok(report),
            Err(error) => {
                let mut removed = self.remove_created(&created).await;
                if let Some(parent) = parent_made
                    && matches!(self.delete_inventory(component).await, Ok(Some(_)))
                {
                    removed.push(parent);
                }
                Err(ClusterError::RolledBack {
                    error: Box::new(error),
                    removed,
                })
            }
        }
    }

    /// Delete the component's Services and Deployments (found by its ownership labels,
    /// inventory or not) that the report does not name.
    async fn prune(&self, component: &str, report: &mut DeployReport) -> Result<(), ClusterError> {
        for stale in self.find_services(component).await? {
            let name = name_of(&stale.metadata);
            if !report.services.contains(&name) {
                let object = reference(&stale);
                self.services()
                    .delete(&name, &delete_exactly(&object))
                    .await
                    .map_err(ClusterError::api(format!(
                        "cannot delete stale Service {name}"
                    )))?;
                report.actions.push((object, Action::Deleted));
            }
        }
        for stale in self.find_deployments(component).await? {
            let name = name_of(&stale.metadata);
            if name != report.deployment {
                let object = reference(&stale);
                self.deployments()
                    .delete(&name, &delete_exactly(&object))
                    .await
                    .map_err(ClusterError::api(format!(
                        "cannot delete stale Deployment {name}"
                    )))?;
                report.actions.push((object, Action::Deleted));
            }
        }
        Ok(())
    }

    /// Create `object`; if it exists, leave it when it carries the same rendered hash,
    /// or apply the rendered state over it (server-side apply, berth's fields only).
    async fn put<K>(
        &self,
        api: &Api<K>,
        object: &K,
        component: &str,
    ) -> Result<(ObjectRef, Action), ClusterError>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
    {
        let kind = K::kind(&()).into_owned();
        let name = name_of(object.meta());
        let create_error = match api.create(&PostParams::default(), object).await {
            Ok(made) => return Ok((reference(&made), Action::Created)),
            Err(error) => error,
        };
        // Only a failed create pays for a read: the object may exist (409, or 422 when the
        // API server checks a Service's node port before its name).
        let existing = match api.get_opt(&name).await {
            Ok(Some(existing)) => existing,
            Ok(None) | Err(_) => {
                return Err(ClusterError::Api {
                    action: format!("cannot create {kind} {name}"),
                    error: create_error,
                });
            }
        };
        let labels = existing.meta().labels.clone().unwrap_or_default();
        if labels.get(COMPONENT_LABEL).map(String::as_str) != Some(component)
            || labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGED_BY)
        {
            return Err(ClusterError::Foreign {
                object: Box::new(reference(&existing)),
                component: component.to_owned(),
            });
        }
        // Unchanged only when built the same, by the same rules, and already in this set:
        // new rules get their digest recorded, and a component deployed before inventories
        // its part-of label (metadata only: no pod restarts).
        if stamped(existing.meta()) == stamped(object.meta()) {
            return Ok((reference(&existing), Action::Unchanged));
        }
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(object),
        )
        .await
        .map_err(ClusterError::api(format!("cannot update {kind} {name}")))?;
        Ok((reference(&existing), Action::Updated))
    }

    /// Delete what a failed deploy created, newest first, each only if it is still the
    /// object this call made (same uid); returns each object removed.
    async fn remove_created(&self, created: &[ObjectRef]) -> Vec<ObjectRef> {
        let mut removed = Vec::new();
        for object in created.iter().rev() {
            let params = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                ..delete_exactly(object)
            };
            let deleted = match object.kind.as_str() {
                "Deployment" => self
                    .deployments()
                    .delete(&object.name, &params)
                    .await
                    .map(drop),
                _ => self
                    .services()
                    .delete(&object.name, &params)
                    .await
                    .map(drop),
            };
            if deleted.is_ok() {
                removed.push(object.clone());
            }
        }
        removed
    }

    /// Delete `component`'s Services and Deployment (foreground: pods and ReplicaSets go
    /// first), found by its ownership labels whether or not its inventory is still there,
    /// then the inventory's parent. Nothing found is an error.
    pub async fn undeploy(&self, component: &str) -> Result<UndeployReport, ClusterError> {
        let deployments = self.find_deployments(component).await?;
        let services = self.find_services(component).await?;
        let mut deleted = Vec::new();
        for service in services {
            let name = name_of(&service.metadata);
            let object = reference(&service);
            self.services()
                .delete(&name, &delete_exactly(&object))
                .await
                .map_err(ClusterError::api(format!("cannot delete Service {name}")))?;
            deleted.push(object);
        }
        for deployment in deployments {
            let name = name_of(&deployment.metadata);
            let object = reference(&deployment);
            let params = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Foreground),
                ..delete_exactly(&object)
            };
            self.deployments()
                .delete(&name, &params)
                .await
                .map_err(ClusterError::api(format!(
                    "cannot delete Deployment {name}"
                )))?;
            deleted.push(object);
        }
        // The parent last: until the members are gone, it names their kinds.
        if let Some(parent) = self.delete_inventory(component).await? {
            deleted.push(parent);
        }
        if deleted.is_empty() {
            return Err(ClusterError::NotFound {
                component: component.to_owned(),
                namespace: self.namespace.clone(),
            });
        }
        Ok(UndeployReport {
            namespace: self.namespace.clone(),
            deleted,
        })
    }
}

impl Cluster {
    /// Wait until the Deployment an undeploy deleted is gone (its pods and ReplicaSets go
    /// first, with foreground deletion): that object, by uid, not a later one of its name.
    pub async fn wait_gone(
        &self,
        component: &str,
        report: &UndeployReport,
        timeout: Duration,
    ) -> Result<(), ClusterError> {
        let deadline = tokio::time::Instant::now() + timeout;
        for deployment in report.deleted.iter().filter(|d| d.kind == "Deployment") {
            let uid = deployment.uid.as_deref().unwrap_or_default();
            let gone = await_condition(self.deployments(), &deployment.name, is_deleted(uid));
            match tokio::time::timeout_at(deadline, gone).await {
                Ok(Ok(_)) => {}
                Ok(Err(kube::runtime::wait::Error::ProbeFailed(source))) => {
                    return Err(ClusterError::Watch {
                        object: Box::new(deployment.clone()),
                        source,
                    });
                }
                Err(_) => {
                    return Err(ClusterError::Timeout {
                        component: component.to_owned(),
                        waited: timeout,
                        last: format!("Deployment {} is still being deleted", deployment.name),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Record what happened to one object.
fn note(report: &mut DeployReport, created: &mut Vec<ObjectRef>, done: (ObjectRef, Action)) {
    if done.1 == Action::Created {
        created.push(done.0.clone());
    }
    report.actions.push(done);
}

/// The reference of an object the API server returned.
fn reference<K: Resource<DynamicType = ()>>(object: &K) -> ObjectRef {
    ObjectRef::of(&K::api_version(&()), &K::kind(&()), object.meta())
}
/// What berth stamps on every object it applies, after the rules ran, so no rules component
/// can leave it out: the ownership labels, the set's part-of label, the hash of the object
/// as rendered and the digest of the rules that rendered it.
struct Stamp<'a> {
    component: &'a str,
    set: String,
    rules: String,
}

impl Stamp<'_> {
    fn on(&self, meta: &mut ObjectMeta, hash: String) {
        let labels = meta.labels.get_or_insert_with(BTreeMap::new);
        labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
        labels.insert(COMPONENT_LABEL.into(), self.component.into());
        labels.insert(PART_OF_LABEL.into(), self.set.clone());
        let annotations = meta.annotations.get_or_insert_with(BTreeMap::new);
        annotations.insert(RENDERED_HASH_ANNOTATION.into(), hash);
        annotations.insert(RULES_DIGEST_ANNOTATION.into(), self.rules.clone());
    }
}

/// Hash of an object as the rules built it.
fn rendered_hash(object: &impl Serialize) -> String {
    let bytes = serde_json::to_vec(object).unwrap_or_default();
    hex::encode(&Sha256::digest(&bytes)[..16])
}

/// What [`Stamp::on`] put on an object: its rendered hash, rules digest and set.
fn stamped(meta: &ObjectMeta) -> (Option<&String>, Option<&String>, Option<&String>) {
    (
        annotation(meta, RENDERED_HASH_ANNOTATION),
        annotation(meta, RULES_DIGEST_ANNOTATION),
        meta.labels.as_ref().and_then(|l| l.get(PART_OF_LABEL)),
    )
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a String> {
    meta.annotations.as_ref()?.get(key)
}
