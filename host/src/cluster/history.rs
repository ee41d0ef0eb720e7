//! Revision history and rollback, as `kubectl rollout undo` does it for `apps/v1` (which has
//! no rollback endpoint): the ReplicaSets a Deployment controls hold its past templates.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{Api, ApiResource, ListParams};
use serde::Serialize;

use super::request::REVISION_ANNOTATION;
use super::request::retry_conflicts;
use super::{Cluster, ClusterError, name_of};
use crate::selector::Selector;

/// Label the deployment controller adds to each ReplicaSet's template.
const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// One revision of a Deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Revision {
    /// Revision number.
    pub revision: i64,
    /// Images of the revision's containers.
    pub images: Vec<String>,
    /// Whether this is the Deployment's current revision.
    pub current: bool,
}

impl Cluster {
    /// The revisions of `component`, oldest first.
    pub async fn history(&self, component: &str) -> Result<Vec<Revision>, ClusterError> {
        let d = self.find_deployment(component).await?;
        let current = revision_of(d.metadata.annotations.as_ref());
        let mut revisions: Vec<Revision> = self
            .replica_sets_of(&d)
            .await?
            .iter()
            .filter_map(|rs| {
                let revision = revision_of(rs.metadata.annotations.as_ref())?;
                Some(Revision {
                    revision,
                    images: images(rs),
                    current: Some(revision) == current,
                })
            })
            .collect();
        // Listed by name, which says nothing of age.
        revisions.sort_by_key(|r| r.revision);
        Ok(revisions)
    }

    /// Roll `component` back to `to` (0: the revision before the current one) by copying
    /// that revision's pod template into the Deployment. Returns the revision restored and
    /// its images.
    pub async fn rollback(&self, component: &str, to: i64) -> Result<Revision, ClusterError> {
        let d = self.find_deployment(component).await?;
        let name = name_of(&d.metadata);
        let current = revision_of(d.metadata.annotations.as_ref()).unwrap_or(0);
        let sets = self.replica_sets_of(&d).await?;
        let with_revision = sets
            .iter()
            .filter_map(|rs| Some((revision_of(rs.metadata.annotations.as_ref())?, rs)));
        let target = if to == 0 {
            with_revision
                .filter(|(r, _)| *r < current)
                .max_by_key(|(r, _)| *r)
                .ok_or_else(|| ClusterError::NoHistory {
                    component: component.to_owned(),
                })?
        } else {
            let known: Vec<(i64, &ReplicaSet)> = with_revision.collect();
            match known.iter().find(|(r, _)| *r == to) {
                Some(found) => *found,
                None => {
                    let numbers = known.iter().map(|(r, _)| *r).collect();
                    return Err(unknown_revision(component, to, numbers));
                }
            }
        };
        let (revision, rs) = target;
        let mut template = rs
            .spec
            .as_ref()
            .and_then(|s| s.template.clone())
            .unwrap_or_default();
        if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove(POD_TEMPLATE_HASH);
        }
        let restored = Revision {
            revision,
            images: images(rs),
            current: true,
        };
        // Replace carries the resourceVersion read: a concurrent change (the controller's
        // status during a rollout, another writer's field) makes it fail rather than be
        // overwritten; then the Deployment is read again and only the template set anew.
        let mut known = Some(d);
        let (requests, name_ref, template) = (&self.requests, &name, &template);
        retry_conflicts(|| {
            let known = known.take();
            async move {
                let mut d = match known {
                    Some(d) => d,
                    None => requests.typed::<Deployment>().get(name_ref).await?,
                };
                if let Some(spec) = d.spec.as_mut() {
                    spec.template = template.clone();
                }
                let resource = ApiResource::erase::<Deployment>(&());
                requests.replace(&resource, name_ref, &d).await.map(drop)
            }
        })
        .await
        .map_err(ClusterError::api(format!(
            "cannot roll back Deployment {name}"
        )))?;
        Ok(restored)
    }

    /// ReplicaSets whose controller is `d`.
    async fn replica_sets_of(&self, d: &Deployment) -> Result<Vec<ReplicaSet>, ClusterError> {
        let uid = d.metadata.uid.clone().unwrap_or_default();
        let selector = Selector::new(&d.spec.clone().unwrap_or_default().selector)
            .map_err(|problem| ClusterError::Selector {
                component: name_of(&d.metadata),
                problem,
            })?
            .to_query();
        let api: Api<ReplicaSet> = self.requests.typed();
        let mut sets: Vec<ReplicaSet> = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(ClusterError::api(format!(
                "cannot list ReplicaSets in namespace {}",
                self.namespace()
            )))?
            .items
            .into_iter()
            .filter(|rs| {
                rs.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.controller == Some(true) && o.uid == uid)
            })
            .collect();
        sets.sort_by_key(|rs| revision_of(rs.metadata.annotations.as_ref()));
        Ok(sets)
    }
}

/// Rollback to revision `to`, which is not among `known`: named in numeric order.
fn unknown_revision(component: &str, to: i64, mut known: Vec<i64>) -> ClusterError {
    known.sort_unstable();
    ClusterError::UnknownRevision {
        component: component.to_owned(),
        revision: to,
        known,
    }
}

fn revision_of(annotations: Option<&std::collections::BTreeMap<String, String>>) -> Option<i64> {
    annotations?.get(REVISION_ANNOTATION)?.parse().ok()
}

fn images(rs: &ReplicaSet) -> Vec<String> {
    rs.spec
        .iter()
        .filter_map(|s| s.template.as_ref())
        .filter_map(|t| t.spec.as_ref())
        .flat_map(|p| p.containers.iter())
        .filter_map(|c| c.image.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_revision_names_the_known_ones_in_numeric_order() {
        let error = unknown_revision("web", 4, vec![10, 2, 1]);
        assert_eq!(
            error.to_string(),
            "\"web\" has no revision 4 (known: 1, 2, 10)"
        );
        let error = unknown_revision("web", 4, vec![]);
        assert_eq!(error.to_string(), "\"web\" has no revision 4 (known: none)");
    }
}
