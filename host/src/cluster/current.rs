//! Whether a component is on the cluster as rendered, by reads alone: the controller's
//! check before it writes anything, so a component left as declared gets no write.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

use super::apply::{Member, created_by_berth};
use super::execute::carries;
use super::owners::drifted;
use super::request::Manager;
use super::resources::Resources;
use super::watched::Read;
use super::{Cluster, ClusterError};
use crate::objects::Rendered;

impl Cluster {
    /// Whether every object of `rendered` is on the cluster carrying `component`'s label
    /// and the hash of what the rules build now, with no field of it taken by another
    /// manager (drift), and the inventory names exactly their kinds: `Some` with the
    /// version of each object read (the inventory's among them) when it is, `None` when
    /// not. Reads only (and discovery, cached).
    pub(crate) async fn current(
        &self,
        component: &str,
        rendered: &Rendered,
    ) -> Result<Option<Vec<Read>>, ClusterError> {
        let mut found = Resources::default();
        let members = self.members(component, rendered, &mut found).await?;
        let kinds: BTreeSet<_> = members.iter().map(Member::group_kind).collect();
        let mut read = Vec::with_capacity(members.len() + 1);
        match self.owned_parent(component).await? {
            Some(parent) if super::inventory::kinds_of(&parent) == kinds => read.push(Read {
                resource: Self::config_map_resource(),
                name: super::name_of(&parent.metadata),
                version: parent.metadata.resource_version.unwrap_or_default(),
            }),
            _ => return Ok(None),
        }
        let ours = |entry: &ManagedFieldsEntry| {
            created_by_berth(entry) || entry.manager.as_deref() == Some(Manager::Handover.name())
        };
        for member in &members {
            let Some(live) = self.read_member(member).await? else {
                return Ok(None);
            };
            let rendered = serde_json::to_value(&member.object).unwrap_or_default();
            if !carries(&live, &member.object) || !drifted(&live, &rendered, ours).is_empty() {
                return Ok(None);
            }
            read.push(Read {
                resource: member.resource.clone(),
                name: member.name(),
                version: live.metadata.resource_version.unwrap_or_default(),
            });
        }
        Ok(Some(read))
    }
}
