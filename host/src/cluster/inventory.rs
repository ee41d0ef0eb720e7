//! A component's inventory, as Kubernetes' ApplySet convention (KEP-3659) has it: a parent
//! ConfigMap whose annotation names the group-kinds of its members, every member labelled
//! part of the set. kubectl and other tools see the set; a deploy widens the kind list
//! before it applies any member and narrows it after pruning, so a deploy killed at any
//! point leaves a parent naming every kind it may have created.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::request::{CONTROLLED_BY_ANNOTATION, GroupKind, is_owned};
use super::{COMPONENT_LABEL, Cluster, ClusterError, MANAGED_BY, MANAGED_BY_LABEL};
use crate::objects::ObjectRef;

/// Label on every member: the id of the set it is part of.
pub const PART_OF_LABEL: &str = "applyset.kubernetes.io/part-of";
/// Label on the parent: the set's id.
pub const ID_LABEL: &str = "applyset.kubernetes.io/id";
/// Annotation on the parent: the tool that manages the set.
pub const TOOLING_ANNOTATION: &str = "applyset.kubernetes.io/tooling";
/// Annotation on the parent: the group-kinds of its members (`Deployment.apps,Service`).
pub const GROUP_KINDS_ANNOTATION: &str = "applyset.kubernetes.io/contains-group-kinds";

pub use crate::objects::parent_name;

/// The set's id, as KEP-3659 defines it for a ConfigMap parent:
/// `applyset-<base64url(sha256(<name>.<namespace>.ConfigMap.))>-v1`.
pub fn applyset_id(component: &str, namespace: &str) -> String {
    let key = format!("{}.{namespace}.ConfigMap.", parent_name(component));
    format!(
        "applyset-{}-v1",
        URL_SAFE_NO_PAD.encode(Sha256::digest(key.as_bytes()))
    )
}

/// The parent as found or made by [`Cluster::widen_inventory`].
#[derive(Debug)]
pub(super) struct Parent {
    /// The parent itself, with its uid.
    pub object: ObjectRef,
    /// Whether this call created it.
    pub created: bool,
    /// The group-kinds it named before this call (empty when created).
    pub before: BTreeSet<GroupKind>,
}

impl Cluster {
    fn config_maps(&self) -> Api<ConfigMap> {
        self.requests.typed()
    }

    pub(super) fn config_map_resource() -> ApiResource {
        ApiResource::erase::<ConfigMap>(&())
    }

    /// Make sure `component`'s parent exists and names at least `kinds`: created if missing,
    /// its kind list widened otherwise. Refuses a ConfigMap of that name that is not berth's.
    pub(super) async fn widen_inventory(
        &self,
        component: &str,
        kinds: &BTreeSet<GroupKind>,
    ) -> Result<Parent, ClusterError> {
        let name = parent_name(component);
        let api = self.config_maps();
        let parent = self.parent(component, kinds);
        let create_error = match self
            .requests
            .create(&Self::config_map_resource(), &parent)
            .await
        {
            Ok(made) => {
                return Ok(Parent {
                    object: ObjectRef::of("v1", "ConfigMap", &made.metadata),
                    created: true,
                    before: BTreeSet::new(),
                });
            }
            Err(error) => error,
        };
        let existing = match api.get_opt(&name).await {
            Ok(Some(existing)) => existing,
            Ok(None) | Err(_) => {
                return Err(ClusterError::Api {
                    action: format!("cannot create ConfigMap {name}"),
                    error: create_error,
                });
            }
        };
        let object = ObjectRef::of("v1", "ConfigMap", &existing.metadata);
        if !is_owned(&existing.metadata, component) {
            return Err(ClusterError::Foreign {
                object: Box::new(object),
                component: component.to_owned(),
            });
        }
        self.not_kept_by_another(component, &existing.metadata)?;
        // The controller taking over a component the CLI made marks its inventory too.
        if let Some(controller) = self.requests.controller()
            && keeper_of(&existing).as_deref() != Some(controller)
        {
            let patch =
                json!({"metadata": {"annotations": {CONTROLLED_BY_ANNOTATION: controller}}});
            self.requests
                .merge(&Self::config_map_resource(), &name, &patch)
                .await
                .map_err(ClusterError::api(format!("cannot update ConfigMap {name}")))?;
        }
        let before = kinds_of(&existing);
        let union: BTreeSet<GroupKind> = before.union(kinds).cloned().collect();
        if union != before {
            self.set_kinds(&name, &union).await?;
        }
        Ok(Parent {
            object,
            created: false,
            before,
        })
    }

    /// Set the parent's kind list to exactly `kinds` (after pruning).
    pub(super) async fn narrow_inventory(
        &self,
        component: &str,
        kinds: &BTreeSet<GroupKind>,
    ) -> Result<(), ClusterError> {
        self.set_kinds(&parent_name(component), kinds).await
    }

    async fn set_kinds(&self, name: &str, kinds: &BTreeSet<GroupKind>) -> Result<(), ClusterError> {
        let patch = json!({"metadata": {"annotations": {GROUP_KINDS_ANNOTATION: join(kinds)}}});
        self.requests
            .merge(&Self::config_map_resource(), name, &patch)
            .await
            .map_err(ClusterError::api(format!("cannot update ConfigMap {name}")))?;
        Ok(())
    }

    /// `component`'s parent and the group-kinds it names, if there is one and it is
    /// berth's.
    pub(super) async fn read_parent(
        &self,
        component: &str,
    ) -> Result<Option<(ObjectRef, BTreeSet<GroupKind>)>, ClusterError> {
        let parent = self.owned_parent(component).await?;
        Ok(parent.map(|p| (ObjectRef::of("v1", "ConfigMap", &p.metadata), kinds_of(&p))))
    }

    /// `component`'s parent, if there is one and it is berth's.
    pub(super) async fn owned_parent(
        &self,
        component: &str,
    ) -> Result<Option<ConfigMap>, ClusterError> {
        let name = parent_name(component);
        let existing = self
            .config_maps()
            .get_opt(&name)
            .await
            .map_err(ClusterError::api(format!("cannot read ConfigMap {name}")))?;
        Ok(existing.filter(|e| is_owned(&e.metadata, component)))
    }

    /// Delete the parent `parent` (that object, by uid).
    pub(super) async fn delete_parent(&self, parent: &ObjectRef) -> Result<(), ClusterError> {
        self.requests
            .delete(&Self::config_map_resource(), parent, None)
            .await
            .map_err(ClusterError::api(format!(
                "cannot delete ConfigMap {}",
                parent.name
            )))
    }

    /// The parent object for `component` naming `kinds`.
    fn parent(&self, component: &str, kinds: &BTreeSet<GroupKind>) -> ConfigMap {
        let labels = BTreeMap::from([
            (
                ID_LABEL.to_owned(),
                applyset_id(component, self.namespace()),
            ),
            (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
            (COMPONENT_LABEL.to_owned(), component.to_owned()),
        ]);
        let mut annotations = BTreeMap::from([
            (
                TOOLING_ANNOTATION.to_owned(),
                format!("berth/{}", env!("CARGO_PKG_VERSION")),
            ),
            (GROUP_KINDS_ANNOTATION.to_owned(), join(kinds)),
        ]);
        if let Some(controller) = self.requests.controller() {
            annotations.insert(CONTROLLED_BY_ANNOTATION.to_owned(), controller.to_owned());
        }
        let mut parent = ConfigMap::default();
        parent.metadata.name = Some(parent_name(component));
        parent.metadata.labels = Some(labels);
        parent.metadata.annotations = Some(annotations);
        parent
    }
}

/// The Component that keeps the component `parent` inventories (`None`: the CLI's).
pub(super) fn keeper_of(parent: &ConfigMap) -> Option<String> {
    parent
        .metadata
        .annotations
        .as_ref()?
        .get(CONTROLLED_BY_ANNOTATION)
        .cloned()
}

/// The group-kinds `parent` names.
pub(super) fn kinds_of(parent: &ConfigMap) -> BTreeSet<GroupKind> {
    parent
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(GROUP_KINDS_ANNOTATION))
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(GroupKind::parse)
                .collect()
        })
        .unwrap_or_default()
}

fn join(kinds: &BTreeSet<GroupKind>) -> String {
    kinds
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_the_keps() {
        // base64url(sha256("berth-web.shop.ConfigMap.")) without padding, computed apart
        // (Python's hashlib and base64.urlsafe_b64encode).
        assert_eq!(
            applyset_id("web", "shop"),
            "applyset-ZY4EXZdojpYsWG2IAHsEHxljsdzRLBNteQYcrOPkCAI-v1"
        );
        assert_ne!(
            applyset_id("web", "shop"),
            applyset_id("web", "other"),
            "the namespace is part of it"
        );
    }

    #[test]
    fn group_kinds_as_the_annotation_lists_them() {
        let kinds: BTreeSet<GroupKind> =
            ["Service", "Deployment.apps"].map(GroupKind::parse).into();
        assert_eq!(join(&kinds), "Deployment.apps,Service");
        let mut parent = ConfigMap::default();
        parent.metadata.annotations = Some(BTreeMap::from([(
            GROUP_KINDS_ANNOTATION.to_owned(),
            "Deployment.apps, Service,".to_owned(),
        )]));
        assert_eq!(kinds_of(&parent), kinds);
    }
}
