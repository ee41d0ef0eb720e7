//! Whether a component is on the cluster as rendered, by reads alone: the controller's
//! check before it writes anything, so a component left as declared gets no write.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

use super::apply::{Member, created_by_berth};
use super::execute::carries;
use super::owners::drifted;
use super::request::Manager;
use super::resources::Resources;
use super::{Cluster, ClusterError};
use crate::objects::Rendered;

impl Cluster {
    /// Whether every object of `rendered` is on the cluster carrying `component`'s label
    /// and the hash of what the rules build now, with no field of it taken by another
    /// manager (drift), and the inventory names exactly their kinds. Reads only (and
    /// discovery, cached).
    pub(crate) async fn is_current(
        &self,
        component: &str,
        rendered: &Rendered,
    ) -> Result<bool, ClusterError> {
        let mut found = Resources::default();
        let members = self.members(component, rendered, &mut found).await?;
        let kinds: BTreeSet<_> = members.iter().map(Member::group_kind).collect();
        match self.read_parent(component).await? {
            Some((_, named)) if named == kinds => {}
            _ => return Ok(false),
        }
        let ours = |entry: &ManagedFieldsEntry| {
            created_by_berth(entry) || entry.manager.as_deref() == Some(Manager::Handover.name())
        };
        for member in &members {
            let Some(live) = self.read_member(member).await? else {
                return Ok(false);
            };
            let rendered = serde_json::to_value(&member.object).unwrap_or_default();
            if !carries(&live, &member.object) || !drifted(&live, &rendered, ours).is_empty() {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
