//! Whether a component is on the cluster as rendered, by reads alone: the controller's
//! check before it writes anything, so a component left as declared gets no write.

use std::collections::BTreeSet;

use super::apply::Member;
use super::execute::carries;
use super::resources::Resources;
use super::{Cluster, ClusterError};
use crate::objects::Rendered;

impl Cluster {
    /// Whether every object of `rendered` is on the cluster carrying `component`'s label
    /// and the hash of what the rules build now, and the inventory names exactly their
    /// kinds. Reads only (and discovery, cached).
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
        for member in &members {
            match self.read_member(member).await? {
                Some(live) if carries(&live, &member.object) => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    }
}
