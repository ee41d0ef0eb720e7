//! What a component owns on the cluster, found by its ownership labels whatever its
//! inventory says: its objects of a kind, and all a deploy plans from.

use std::collections::{BTreeMap, BTreeSet};

use kube::api::{ApiResource, DynamicObject};

use super::apply::{Member, by_rank, kinds_by_rank};
use super::inventory::ID_LABEL;
use super::plan::{Live, looks_for_owned};
use super::request::GroupKind;
use super::resources::Resources;
use super::{Cluster, ClusterError, owned_by};
use crate::kinds::DEFAULT_KINDS;
use crate::objects::ObjectRef;

impl Cluster {
    /// What the cluster holds of `component` that a deploy of `members` plans from, its
    /// inventory naming `inventory` (`None`: it had none): each member's object of its
    /// name, and (unless nothing of it exists) every object carrying its ownership labels,
    /// inventory or not, of the kinds it has, had or always may have.
    pub(super) async fn live(
        &self,
        component: &str,
        members: &[Member],
        inventory: Option<BTreeSet<GroupKind>>,
        found: &mut Resources,
    ) -> Result<Live, ClusterError> {
        let mut live = Live {
            inventory,
            ..Live::default()
        };
        for member in members {
            if let Some(object) = self.read_member(member).await? {
                live.members
                    .insert((member.group_kind(), member.name()), object);
            }
        }
        if looks_for_owned(&live) {
            let before = live.inventory.clone().unwrap_or_default();
            live.owned = Some(
                self.owned_of_kinds(component, members, &before, found)
                    .await?,
            );
        }
        Ok(live)
    }

    /// The component's objects (found by its ownership labels, inventory or not) of the
    /// kinds it has (`members`), had (`before`) or always may have.
    async fn owned_of_kinds(
        &self,
        component: &str,
        members: &[Member],
        before: &BTreeSet<GroupKind>,
        found: &mut Resources,
    ) -> Result<Vec<(ApiResource, DynamicObject)>, ClusterError> {
        let mut kinds: BTreeMap<GroupKind, Option<ApiResource>> = before
            .iter()
            .cloned()
            .chain(always_looked_for())
            .map(|gk| (gk, None))
            .collect();
        for member in members {
            kinds.insert(member.group_kind(), Some(member.resource.clone()));
        }
        let mut owned = Vec::new();
        for (group_kind, resource) in by_rank(kinds).into_iter().rev() {
            let resource = match resource {
                Some(resource) => resource,
                None => match self.resource_of_group_kind(&group_kind, found).await? {
                    Some(resource) => resource,
                    None => continue,
                },
            };
            for object in self.owned(&resource, component).await? {
                owned.push((resource.clone(), object));
            }
        }
        Ok(owned)
    }

    /// `component`'s objects of `resource`, by its ownership labels, its inventory's parent
    /// left out (it carries them too, and is no member); each with its `apiVersion` and
    /// `kind`, which a list leaves out of its items.
    pub(super) async fn owned(
        &self,
        resource: &ApiResource,
        component: &str,
    ) -> Result<Vec<DynamicObject>, ClusterError> {
        let mut items = self
            .requests
            .dynamic(resource)
            .list(&owned_by(component))
            .await
            .map_err(ClusterError::api(format!(
                "cannot list {} in namespace {}",
                resource.plural,
                self.namespace()
            )))?
            .items;
        items.retain(|item| !is_parent(item));
        for item in &mut items {
            item.types = Some(kube::api::TypeMeta {
                api_version: resource.api_version.clone(),
                kind: resource.kind.clone(),
            });
        }
        Ok(items)
    }
}

/// Kinds looked for on every redeploy and undeploy whatever the inventory says: a
/// component deployed before inventories has these and no parent.
pub(super) fn always_looked_for() -> [GroupKind; 2] {
    [
        GroupKind::new("apps", "Deployment"),
        GroupKind::new("", "Service"),
    ]
}

/// Whether `object` is an inventory's parent (it carries the set's id, as members do not).
fn is_parent(object: &DynamicObject) -> bool {
    object
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(ID_LABEL))
}

impl Cluster {
    /// The inventory's parent of `component` with the kinds it names, and every object of
    /// the component of those kinds (the kinds a workload commonly owns when the parent is
    /// gone), dependents first.
    #[allow(clippy::type_complexity)]
    pub(super) async fn objects_of(
        &self,
        component: &str,
    ) -> Result<
        (
            Option<(ObjectRef, BTreeSet<GroupKind>)>,
            Vec<(ApiResource, DynamicObject)>,
        ),
        ClusterError,
    > {
        let parent = self.read_parent(component).await?;
        let kinds: BTreeSet<GroupKind> = match &parent {
            Some((_, kinds)) => kinds.clone(),
            None => DEFAULT_KINDS
                .iter()
                .map(|(group, kind)| GroupKind::new(group, kind))
                .collect(),
        };
        let kinds = kinds.into_iter().chain(always_looked_for()).collect();
        let mut found = Resources::default();
        let mut objects = Vec::new();
        for group_kind in kinds_by_rank(kinds).into_iter().rev() {
            let Some(resource) = self.resource_of_group_kind(&group_kind, &mut found).await? else {
                continue;
            };
            for object in self.owned(&resource, component).await? {
                objects.push((resource.clone(), object));
            }
        }
        Ok((parent, objects))
    }
}
