//! Revision history and rollback, as `kubectl rollout undo` does it for `apps/v1` (which has
//! no rollback endpoint): the ReplicaSets a Deployment controls hold its past templates.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{Api, ListParams};
use serde::Serialize;

use super::plan::{self, Inverse, Replaced, Step};
use super::request::REVISION_ANNOTATION;
use super::{Cluster, ClusterError, name_of};
use crate::selector::Selector;

/// What [`Cluster::rollback`] changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Rollback {
    /// The component.
    pub component: String,
    /// The revision restored (now the current one) and its images.
    pub revision: Revision,
    /// The replace that sets the template back.
    #[serde(skip)]
    pub(super) back: Replaced,
}

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
    /// that revision's pod template into the Deployment (the engine's replace step).
    /// Returns the revision restored, its images, and what undoes it
    /// ([`Cluster::undo_rollback`]).
    pub async fn rollback(&self, component: &str, to: i64) -> Result<Rollback, ClusterError> {
        let d = self.find_deployment(component).await?;
        self.not_kept_by_another(component, &d.metadata)?;
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
        let step = plan::rollback(&d, rs);
        let done = self
            .execute_step(component, &step)
            .await
            .map_err(|e| e.named(format!("cannot roll back Deployment {name}")))?;
        let Some(Inverse::Replace(back)) = done.inverse else {
            unreachable!("a replace step is undone by a replace");
        };
        Ok(Rollback {
            component: component.to_owned(),
            revision: Revision {
                revision,
                images: images(rs),
                current: true,
            },
            back: *back,
        })
    }

    /// Put back the pod template `rollback` replaced (a rollback whose rollout failed):
    /// the replace back, sent by the same executor, to that Deployment only.
    pub async fn undo_rollback(&self, rollback: &Rollback) -> Result<(), ClusterError> {
        let back = Step::Replace {
            replaced: Box::new(rollback.back.clone()),
            live: None,
        };
        let name = &rollback.back.object.name;
        self.execute_step(&rollback.component, &back)
            .await
            .map(drop)
            .map_err(|e| e.named(format!("cannot undo the rollback of Deployment {name}")))
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
