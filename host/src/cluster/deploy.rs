//! deploy and undeploy: create a component's objects of any kind (or apply changes to
//! them), removing what this call created if any step fails; delete them again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, PropagationPolicy,
};
use kube::runtime::wait::{await_condition, conditions::is_deleted};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::inventory::{PART_OF_LABEL, applyset_id, delete_exactly, group_kind};
use super::resources::Resources;
use super::{
    COMPONENT_LABEL, Cluster, ClusterError, MANAGED_BY, MANAGED_BY_LABEL, RENDERED_HASH_ANNOTATION,
    RULES_DIGEST_ANNOTATION, name_of, owned_by,
};
use crate::kinds::{DEFAULT_KINDS, KindName};
use crate::objects::{Object, ObjectRef, Rendered};

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

/// One object to apply: where it lives on the cluster, and the object as berth applies it.
struct Member {
    resource: ApiResource,
    object: DynamicObject,
}

impl Member {
    fn group_kind(&self) -> String {
        group_kind(&self.resource.api_version, &self.resource.kind)
    }
}

impl Cluster {
    /// Deploy `component`'s rendered objects. Every kind is checked against discovery
    /// first (a kind the cluster does not serve, or serves cluster-scoped, is refused
    /// before anything is created); then the inventory (the parent ConfigMap, naming
    /// every kind this call may create); then the objects in dependency order:
    /// ServiceAccounts, ConfigMaps and Secrets, Services, other kinds, the Deployment,
    /// what refers to it (PodDisruptionBudgets, autoscalers) — so a Service that cannot
    /// be made (a node port already taken) stops the deploy before any pod starts.
    /// Objects that exist already are left alone when unchanged and updated otherwise;
    /// objects of the component the render no longer builds, of any kind, are deleted
    /// (pruned), and the inventory narrowed to what is left. On failure, every object this
    /// call created is deleted again, the parent too if this call made it.
    pub async fn deploy(
        &self,
        component: &str,
        rendered: Rendered,
    ) -> Result<DeployReport, ClusterError> {
        let mut found = Resources::default();
        let members = self.members(component, &rendered, &mut found).await?;
        let kinds: BTreeSet<String> = members.iter().map(Member::group_kind).collect();
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
            for member in &members {
                let done = self.put(member, component).await?;
                if done.1 == Action::Created {
                    created.push((member.resource.clone(), done.0.clone()));
                }
                report.actions.push(done);
            }
            let fresh = parent.created && report.actions.iter().all(|(_, a)| *a == Action::Created);
            if !fresh {
                // A redeploy (or the adoption of a component deployed before inventories):
                // what an earlier render built and this one does not must go.
                self.prune(component, &members, &parent.before, &mut found, &mut report)
                    .await?;
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
                    && self.delete_parent(&parent).await.is_ok()
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

    /// The rendered objects as berth applies them, in apply order: stamped, each with its
    /// API resource. Asks discovery about kinds beyond the few every cluster serves.
    async fn members(
        &self,
        component: &str,
        rendered: &Rendered,
        found: &mut Resources,
    ) -> Result<Vec<Member>, ClusterError> {
        let stamp = Stamp {
            component,
            set: applyset_id(component, &self.namespace),
            rules: format!("sha256:{}", rendered.rules_digest),
        };
        let mut members = Vec::new();
        for object in rendered.objects() {
            // The hash of the object as the rules built it (typed objects hash as they
            // always did, so a redeploy by a newer berth finds them unchanged).
            let hash = rendered_hash(&object);
            let mut object: DynamicObject = match &object {
                Object::Deployment(d) => convert(d),
                Object::Service(s) => convert(s),
                Object::Other(o) => o.clone().into_owned(),
            };
            stamp.on(&mut object.metadata, hash);
            let types = object.types.clone().unwrap_or_default();
            let kind = KindName {
                api_version: types.api_version,
                kind: types.kind,
            };
            let resource = self.resource(&kind, found).await?;
            members.push(Member { resource, object });
        }
        members.sort_by_key(|m| rank(&m.resource.group, &m.resource.kind));
        Ok(members)
    }

    /// Delete the component's objects (found by its ownership labels, inventory or not) of
    /// the kinds it has or had that this render does not build, dependents first.
    async fn prune(
        &self,
        component: &str,
        members: &[Member],
        before: &BTreeSet<String>,
        found: &mut Resources,
        report: &mut DeployReport,
    ) -> Result<(), ClusterError> {
        let keep: BTreeSet<(String, String)> = members
            .iter()
            .map(|m| (m.group_kind(), name_of(&m.object.metadata)))
            .collect();
        let mut kinds: BTreeMap<String, Option<ApiResource>> = before
            .iter()
            .chain(ALWAYS_LOOKED_FOR.map(ToOwned::to_owned).iter())
            .map(|gk| (gk.clone(), None))
            .collect();
        for member in members {
            kinds.insert(member.group_kind(), Some(member.resource.clone()));
        }
        for (group_kind, resource) in by_rank(kinds).into_iter().rev() {
            let resource = match resource {
                Some(resource) => resource,
                None => match self.resource_of_group_kind(&group_kind, found).await? {
                    Some(resource) => resource,
                    None => continue,
                },
            };
            for stale in self.owned(&resource, component).await? {
                let name = name_of(&stale.metadata);
                if !keep.contains(&(group_kind.clone(), name.clone())) {
                    let object = self.delete(&resource, &stale, None).await?;
                    report.actions.push((object, Action::Deleted));
                }
            }
        }
        Ok(())
    }

    /// Create `member`; if it exists, leave it when it carries the same rendered hash,
    /// or apply the rendered state over it (server-side apply, berth's fields only).
    async fn put(
        &self,
        member: &Member,
        component: &str,
    ) -> Result<(ObjectRef, Action), ClusterError> {
        let api = self.dynamic(&member.resource);
        let object = &member.object;
        let kind = &member.resource.kind;
        let name = name_of(&object.metadata);
        let create_error = match api.create(&PostParams::default(), object).await {
            Ok(made) => return Ok((ObjectRef::dynamic(&made), Action::Created)),
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
        let labels = existing.metadata.labels.clone().unwrap_or_default();
        let reference = ObjectRef::of(&member.resource.api_version, kind, &existing.metadata);
        if labels.get(COMPONENT_LABEL).map(String::as_str) != Some(component)
            || labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGED_BY)
        {
            return Err(ClusterError::Foreign {
                object: Box::new(reference),
                component: component.to_owned(),
            });
        }
        // Unchanged only when built the same, by the same rules, and already in this set:
        // new rules get their digest recorded, and a component deployed before inventories
        // its part-of label (metadata only: no pod restarts).
        if stamped(&existing.metadata) == stamped(&object.metadata) {
            return Ok((reference, Action::Unchanged));
        }
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(object),
        )
        .await
        .map_err(ClusterError::api(format!("cannot update {kind} {name}")))?;
        Ok((reference, Action::Updated))
    }

    /// Delete what a failed deploy created, newest first, each only if it is still the
    /// object this call made (same uid); returns each object removed.
    async fn remove_created(&self, created: &[(ApiResource, ObjectRef)]) -> Vec<ObjectRef> {
        let mut removed = Vec::new();
        for (resource, object) in created.iter().rev() {
            let params = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                ..delete_exactly(object)
            };
            if self
                .dynamic(resource)
                .delete(&object.name, &params)
                .await
                .is_ok()
            {
                removed.push(object.clone());
            }
        }
        removed
    }

    /// Delete every object of `component`, of every kind its inventory names (the kinds
    /// a workload commonly owns when the parent is gone), dependents first, the Deployment
    /// in the foreground (its pods and ReplicaSets go first); found by its ownership
    /// labels, then the inventory's parent. Nothing found is an error.
    pub async fn undeploy(&self, component: &str) -> Result<UndeployReport, ClusterError> {
        let parent = self.read_parent(component).await?;
        let kinds: BTreeSet<String> = match &parent {
            Some((_, kinds)) => kinds.clone(),
            None => DEFAULT_KINDS
                .iter()
                .map(|(group, kind)| group_kind_of(group, kind))
                .collect(),
        };
        let kinds = kinds
            .into_iter()
            .chain(ALWAYS_LOOKED_FOR.map(ToOwned::to_owned))
            .map(|gk| (gk, ()))
            .collect();
        let mut found = Resources::default();
        let mut deleted = Vec::new();
        for (group_kind, _) in by_rank(kinds).into_iter().rev() {
            let Some(resource) = self.resource_of_group_kind(&group_kind, &mut found).await? else {
                continue;
            };
            let propagation =
                (resource.kind == "Deployment").then_some(PropagationPolicy::Foreground);
            for object in self.owned(&resource, component).await? {
                deleted.push(self.delete(&resource, &object, propagation.clone()).await?);
            }
        }
        // The parent last: until the members are gone, it names their kinds.
        if let Some((parent, _)) = parent {
            self.delete_parent(&parent).await?;
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

    /// `component`'s objects of `resource`, by its ownership labels.
    async fn owned(
        &self,
        resource: &ApiResource,
        component: &str,
    ) -> Result<Vec<DynamicObject>, ClusterError> {
        Ok(self
            .dynamic(resource)
            .list(&owned_by(component))
            .await
            .map_err(ClusterError::api(format!(
                "cannot list {} in namespace {}",
                resource.plural, self.namespace
            )))?
            .items)
    }

    /// Delete exactly `object` (its uid), returning its reference.
    async fn delete(
        &self,
        resource: &ApiResource,
        object: &DynamicObject,
        propagation: Option<PropagationPolicy>,
    ) -> Result<ObjectRef, ClusterError> {
        let reference = ObjectRef::of(&resource.api_version, &resource.kind, &object.metadata);
        let params = DeleteParams {
            propagation_policy: propagation,
            ..delete_exactly(&reference)
        };
        self.dynamic(resource)
            .delete(&reference.name, &params)
            .await
            .map_err(ClusterError::api(format!(
                "cannot delete {} {}",
                resource.kind, reference.name
            )))?;
        Ok(reference)
    }

    fn dynamic(&self, resource: &ApiResource) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.namespace, resource)
    }
}

impl Cluster {
    /// Wait until every object an undeploy deleted is gone: that object, by uid, not a
    /// later one of its name (a Deployment's pods and ReplicaSets go first, with
    /// foreground deletion).
    pub async fn wait_gone(
        &self,
        component: &str,
        report: &UndeployReport,
        timeout: Duration,
    ) -> Result<(), ClusterError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut found = Resources::default();
        for object in &report.deleted {
            let group_kind = group_kind(&object.api_version, &object.kind);
            let Some(resource) = self.resource_of_group_kind(&group_kind, &mut found).await? else {
                continue;
            };
            let uid = object.uid.as_deref().unwrap_or_default();
            let gone = await_condition(self.dynamic(&resource), &object.name, is_deleted(uid));
            match tokio::time::timeout_at(deadline, gone).await {
                Ok(Ok(_)) => {}
                Ok(Err(kube::runtime::wait::Error::ProbeFailed(source))) => {
                    return Err(ClusterError::Watch {
                        object: Box::new(object.clone()),
                        source,
                    });
                }
                Err(_) => {
                    return Err(ClusterError::Timeout {
                        component: component.to_owned(),
                        waited: timeout,
                        last: format!("{object} is still being deleted"),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Kinds looked for on every redeploy and undeploy whatever the inventory says: a
/// component deployed before inventories has these and no parent.
const ALWAYS_LOOKED_FOR: [&str; 2] = ["Deployment.apps", "Service"];

/// Apply order: what others refer to first, what refers to the Deployment last.
fn rank(group: &str, kind: &str) -> u8 {
    match (group, kind) {
        ("", "ServiceAccount" | "ConfigMap" | "Secret") => 0,
        ("", "Service") => 1,
        ("apps", "Deployment") => 3,
        ("policy", "PodDisruptionBudget") | ("autoscaling", "HorizontalPodAutoscaler") => 4,
        _ => 2,
    }
}

/// Group-kinds in apply order.
fn by_rank<T>(kinds: BTreeMap<String, T>) -> Vec<(String, T)> {
    let mut kinds: Vec<(String, T)> = kinds.into_iter().collect();
    kinds.sort_by_key(|(gk, _)| {
        let (kind, group) = gk.split_once('.').unwrap_or((gk, ""));
        rank(group, kind)
    });
    kinds
}

fn group_kind_of(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}.{group}")
    }
}

/// A typed object as a dynamic one.
fn convert(object: &impl Serialize) -> DynamicObject {
    // Kubernetes objects always serialize to JSON, and every such object is a
    // DynamicObject.
    serde_json::to_value(object)
        .and_then(serde_json::from_value)
        .unwrap_or_else(|_| DynamicObject::new("", &ApiResource::erase::<ConfigMap>(&())))
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
