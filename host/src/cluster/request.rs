//! The request layer: every write berth sends to the API server goes through [`Requests`],
//! which owns the policies of writing once — berth's field manager, server-side dry run,
//! deleting exactly one object (by uid) where one already gone counts as deleted, one
//! limit on retries against conflicting writers — and the ownership check.

use std::future::Future;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions,
    PropagationPolicy,
};
use kube::{Client, Resource};
use serde::Serialize;
use serde_json::Value;

use crate::objects::ObjectRef;

/// berth's field manager for server-side apply.
pub(super) const FIELD_MANAGER: &str = "berth";
/// Label naming the tool that manages an object.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Its value on berth's objects.
pub const MANAGED_BY: &str = "berth";
/// Label carrying the component name on every object berth creates.
pub const COMPONENT_LABEL: &str = "berth.dev/component";
/// Annotation on every object of a component the controller keeps: `Component/<name>`.
/// Any other writer (the CLI) refuses to change such a component.
pub const CONTROLLED_BY_ANNOTATION: &str = "berth.dev/controlled-by";
/// Annotation the deployment controller keeps the revision in.
pub(super) const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// One namespace of one cluster, as berth writes to it.
#[derive(Clone)]
pub(super) struct Requests {
    client: Client,
    namespace: String,
    dry_run: bool,
    /// The Component these requests keep (the controller's), if any.
    controller: Option<String>,
}

/// The field manager a write is made as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Manager {
    /// berth's own.
    Berth,
    /// The manager that keeps a Deployment's replicas when berth hands them to an
    /// autoscaler.
    Handover,
}

impl Manager {
    /// Its name in managed fields.
    pub fn name(self) -> &'static str {
        match self {
            Manager::Berth => FIELD_MANAGER,
            Manager::Handover => "berth-handover-to-autoscaler",
        }
    }
}

impl Requests {
    pub fn new(client: Client, namespace: String) -> Self {
        Self {
            client,
            namespace,
            dry_run: false,
            controller: None,
        }
    }

    /// These requests as the controller keeping Component `name`.
    pub fn for_component(&self, name: &str) -> Self {
        self.as_keeper(format!("Component/{name}"))
    }

    /// These requests as `keeper` (`Component/<name>`, as objects it keeps are marked).
    pub fn as_keeper(&self, keeper: String) -> Self {
        Self {
            controller: Some(keeper),
            ..self.clone()
        }
    }

    /// `Component/<name>` when these are the controller's requests for that Component.
    pub fn controller(&self) -> Option<&str> {
        self.controller.as_deref()
    }

    /// The Component that keeps the object `meta` describes, when that is not who these
    /// requests are for: then they must not change it.
    pub fn kept_by_another(&self, meta: &ObjectMeta) -> Option<String> {
        let keeper = meta.annotations.as_ref()?.get(CONTROLLED_BY_ANNOTATION)?;
        (self.controller.as_ref() != Some(keeper)).then(|| keeper.clone())
    }

    /// These requests with every write a server-side dry run (`dryRun=All`).
    pub fn dry_run(&self) -> Self {
        Self {
            dry_run: true,
            ..self.clone()
        }
    }

    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Reads of a namespaced kind berth knows at compile time.
    pub fn typed<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Reads of any namespaced kind.
    pub fn dynamic(&self, resource: &ApiResource) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.namespace, resource)
    }

    /// Create `object`.
    pub async fn create<K>(&self, resource: &ApiResource, object: &K) -> kube::Result<DynamicObject>
    where
        K: Serialize,
    {
        let object = as_dynamic(object, resource)?;
        self.dynamic(resource)
            .create(&self.post_params(), &object)
            .await
    }

    /// Server-side apply `object` as `manager`, taking over the fields it applies.
    pub async fn apply(
        &self,
        resource: &ApiResource,
        name: &str,
        object: &(impl Serialize + std::fmt::Debug),
        manager: Manager,
    ) -> kube::Result<DynamicObject> {
        let params = PatchParams {
            dry_run: self.dry_run,
            ..PatchParams::apply(manager.name()).force()
        };
        self.dynamic(resource)
            .patch(name, &params, &Patch::Apply(object))
            .await
    }

    /// A JSON merge patch.
    pub async fn merge(
        &self,
        resource: &ApiResource,
        name: &str,
        patch: &Value,
    ) -> kube::Result<DynamicObject> {
        self.dynamic(resource)
            .patch(name, &self.patch_params(), &Patch::Merge(patch))
            .await
    }

    /// A strategic merge patch (built-in kinds only).
    pub async fn strategic(
        &self,
        resource: &ApiResource,
        name: &str,
        patch: &Value,
    ) -> kube::Result<DynamicObject> {
        self.dynamic(resource)
            .patch(name, &self.patch_params(), &Patch::Strategic(patch))
            .await
    }

    /// Replace the object named `name` with `object` (its resource version makes the
    /// replace conditional).
    pub async fn replace<K>(
        &self,
        resource: &ApiResource,
        name: &str,
        object: &K,
    ) -> kube::Result<DynamicObject>
    where
        K: Serialize,
    {
        let object = as_dynamic(object, resource)?;
        self.dynamic(resource)
            .replace(name, &self.post_params(), &object)
            .await
    }

    /// Delete exactly `object` — the object its uid names, not a later one of its name.
    /// An object already gone counts as deleted: a retried delete whose first answer was
    /// lost, someone else's delete, or (the uid precondition failing) a later object of
    /// the name in its place.
    pub async fn delete(
        &self,
        resource: &ApiResource,
        object: &ObjectRef,
        propagation: Option<PropagationPolicy>,
    ) -> kube::Result<()> {
        let params = DeleteParams {
            dry_run: self.dry_run,
            propagation_policy: propagation,
            preconditions: object.uid.clone().map(|uid| Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self.dynamic(resource).delete(&object.name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 && object.uid.is_some() => Ok(()),
            Err(error) => Err(error),
        }
    }

    fn post_params(&self) -> PostParams {
        PostParams {
            dry_run: self.dry_run,
            field_manager: Some(FIELD_MANAGER.to_owned()),
        }
    }

    fn patch_params(&self) -> PatchParams {
        PatchParams {
            dry_run: self.dry_run,
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        }
    }
}

/// Run `attempt` until it does not fail with a conflict (another writer changed the object
/// between berth's read and its write), at most [`CONFLICT_ATTEMPTS`] times; the last
/// conflict is the error. `attempt` reads what it writes again each time.
pub(super) async fn retry_conflicts<T, F, Fut>(mut attempt: F) -> kube::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = kube::Result<T>>,
{
    let mut tried = 1;
    loop {
        match attempt().await {
            Err(kube::Error::Api(status)) if status.code == 409 && tried < CONFLICT_ATTEMPTS => {
                tried += 1;
            }
            other => return other,
        }
    }
}

/// Attempts of a write against concurrent writers (controllers updating a status, another
/// berth) before the conflict is the answer.
pub(super) const CONFLICT_ATTEMPTS: u32 = 5;

/// A kind and its API group, written as the ApplySet annotation lists them: `Kind.group`,
/// `Kind` for the core group. Ordered as written, so a list of them is the annotation's
/// order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct GroupKind(String);

impl GroupKind {
    /// The group-kind of objects of `api_version` (`apps/v1`, `v1`) and `kind`.
    pub fn of(api_version: &str, kind: &str) -> Self {
        match api_version.rsplit_once('/') {
            Some((group, _)) => Self::new(group, kind),
            None => Self(kind.to_owned()),
        }
    }

    /// The group-kind of `kind` in `group` (`""`: the core group).
    pub fn new(group: &str, kind: &str) -> Self {
        if group.is_empty() {
            Self(kind.to_owned())
        } else {
            Self(format!("{kind}.{group}"))
        }
    }

    /// As the annotation writes it.
    pub fn parse(text: &str) -> Self {
        Self(text.trim().to_owned())
    }

    pub fn kind(&self) -> &str {
        self.0.split_once('.').map_or(&self.0, |(kind, _)| kind)
    }

    pub fn group(&self) -> &str {
        self.0.split_once('.').map_or("", |(_, group)| group)
    }
}

impl std::fmt::Display for GroupKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `meta` carries `component`'s ownership labels: berth touches no other object.
pub(super) fn is_owned(meta: &ObjectMeta, component: &str) -> bool {
    let labels = meta.labels.as_ref();
    let label = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
    label(COMPONENT_LABEL) == Some(component) && label(MANAGED_BY_LABEL) == Some(MANAGED_BY)
}

/// How a failed request reads in berth's messages: the API server's own message for API
/// errors (not the client's debug form of its answer), the client's for the rest.
pub(super) fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        kube::Error::Api(status) => format!("{} ({})", status.reason, status.code),
        other => other.to_string(),
    }
}

/// A typed object (or a dynamic one) as the dynamic object of `resource` it is.
fn as_dynamic<K: Serialize>(object: &K, resource: &ApiResource) -> kube::Result<DynamicObject> {
    let mut value = serde_json::to_value(object).map_err(kube::Error::SerdeError)?;
    value["apiVersion"] = resource.api_version.clone().into();
    value["kind"] = resource.kind.clone().into();
    serde_json::from_value(value).map_err(kube::Error::SerdeError)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn group_kinds_are_written_as_the_annotation_lists_them() {
        let deployment = GroupKind::of("apps/v1", "Deployment");
        assert_eq!(deployment.to_string(), "Deployment.apps");
        assert_eq!(
            (deployment.group(), deployment.kind()),
            ("apps", "Deployment")
        );
        let service = GroupKind::of("v1", "Service");
        assert_eq!(service.to_string(), "Service");
        assert_eq!((service.group(), service.kind()), ("", "Service"));
        assert_eq!(
            GroupKind::of("policy/v1beta1", "PodDisruptionBudget"),
            GroupKind::of("policy/v1", "PodDisruptionBudget"),
            "one group-kind at every version"
        );
        assert_eq!(GroupKind::new("", "Service"), service);
        assert_eq!(
            GroupKind::parse(" Certificate.cert-manager.io").group(),
            "cert-manager.io"
        );
        assert!(deployment < service, "ordered as written");
    }

    #[test]
    fn owned_means_both_labels_with_the_component() {
        let meta = |labels: &[(&str, &str)]| ObjectMeta {
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..ObjectMeta::default()
        };
        let both = meta(&[(COMPONENT_LABEL, "web"), (MANAGED_BY_LABEL, MANAGED_BY)]);
        assert!(is_owned(&both, "web"));
        assert!(!is_owned(&both, "api"));
        assert!(!is_owned(&meta(&[(COMPONENT_LABEL, "web")]), "web"));
        let other_tool = meta(&[(COMPONENT_LABEL, "web"), (MANAGED_BY_LABEL, "helm")]);
        assert!(!is_owned(&other_tool, "web"));
        assert!(!is_owned(&ObjectMeta::default(), "web"));
    }
}
