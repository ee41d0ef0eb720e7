//! deploy: create a component's objects of any kind (or apply changes to them), putting
//! back what this call changed if any step fails.

use std::time::Duration;

use serde::Serialize;

use super::apply::{Action, Member};
use super::owners::TakenOver;
use super::plan::{Undo, plan};
use super::resources::Resources;
use super::undo::UndoReport;
use super::{Cluster, ClusterError, name_of};
use crate::objects::{ObjectRef, Rendered};

/// The deployment description: what was deployed where, and what happened to each object.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct DeployReport {
    /// Namespace of the objects.
    pub namespace: String,
    /// Name of the Deployment.
    pub deployment: String,
    /// Names of the Services.
    pub services: Vec<String>,
    /// Each object (with its uid) and what happened to it, in the order done.
    pub actions: Vec<(ObjectRef, Action)>,
    /// Fields of an object another field manager owned that berth's apply took over
    /// (a hotfix by `kubectl edit`, say), by object and manager.
    pub taken_over: Vec<(ObjectRef, TakenOver)>,
    /// Objects of the component (its ownership labels) its inventory did not name, taken
    /// in: made by a berth from before inventories, or labelled so by hand.
    pub adopted: Vec<ObjectRef>,
    /// A server-side dry run: the API server admitted and validated every request, and
    /// persisted nothing.
    pub dry_run: bool,
    /// What to put back if the rollout fails ([`Cluster::undo`]).
    #[serde(skip)]
    pub(super) undo: Undo,
}

impl Cluster {
    /// Deploy `component`'s rendered objects. Every kind is checked against discovery
    /// first (a kind the cluster does not serve, or serves cluster-scoped, is refused
    /// before anything is created); then the inventory (the parent ConfigMap, naming
    /// every kind this call may create); then what the cluster holds is read and the whole
    /// plan decided before any object is written; then the objects in dependency order:
    /// ServiceAccounts, ConfigMaps and Secrets, Services, other kinds, the Deployment,
    /// what refers to it (PodDisruptionBudgets, autoscalers) — so a Service that cannot
    /// be made (a node port already taken) stops the deploy before any pod starts.
    /// Objects that exist already are server-side applied (drift made by someone else is
    /// put back) and reported unchanged when that changed nothing; objects of the
    /// component the render no longer builds, of any kind, are deleted (pruned), and the
    /// inventory narrowed to what is left. On failure, the journal of what this call did is
    /// replayed backwards: what it created deleted (the parent too if it made it), what it
    /// changed or pruned put back. The report keeps that journal, for [`Cluster::undo`].
    ///
    /// On a [`Cluster::dry_run`] connection every write is a server-side dry run: the
    /// report says what deploy would do, and nothing is persisted.
    pub async fn deploy(
        &self,
        component: &str,
        rendered: Rendered,
    ) -> Result<DeployReport, ClusterError> {
        let mut found = Resources::default();
        let members = self.members(component, &rendered, &mut found).await?;
        let mut journal = Undo {
            component: component.to_owned(),
            ..Undo::default()
        };
        let mut done = Vec::new();
        let mut adopted = Vec::new();
        let outcome = async {
            // The inventory first, naming every kind this call may create (so a deploy
            // killed at any point leaves nothing it does not name); then the plan, from
            // what the cluster holds.
            let kinds = members.iter().map(Member::group_kind).collect();
            let parent = self.widen_inventory(component, &kinds).await?;
            let before = if parent.created {
                journal.parent_created = Some(parent.object.clone());
                None
            } else {
                journal.parent_kinds_before = Some(parent.before.clone());
                Some(parent.before)
            };
            let live = self.live(component, &members, before, &mut found).await?;
            let plan = plan(component, &members, &live)?;
            adopted = plan.adopted().collect();
            self.execute(&plan, &mut journal, &mut done).await
        }
        .await;
        let report = DeployReport {
            namespace: self.namespace().to_owned(),
            deployment: name_of(&rendered.deployment.metadata),
            services: rendered
                .services
                .iter()
                .map(|s| name_of(&s.metadata))
                .collect(),
            taken_over: done
                .iter()
                .flat_map(|d| d.taken.iter().map(|t| (d.reference.clone(), t.clone())))
                .collect(),
            adopted,
            actions: done.into_iter().map(|d| (d.reference, d.action)).collect(),
            dry_run: self.is_dry_run(),
            undo: journal,
        };
        match outcome {
            Ok(()) => Ok(report),
            // A dry run persisted nothing: there is nothing to put back.
            Err(error) if self.is_dry_run() => Err(error),
            Err(error) => {
                let undone = self.undo(&report, UNDO_AFTER_FAILURE).await;
                Err(ClusterError::RolledBack {
                    error: Box::new(error),
                    undone: Box::new(undone),
                })
            }
        }
    }

    /// Put back what the deploy `report` describes changed: delete what it created (the
    /// inventory's parent too, if it made it), restore what it changed and make again what
    /// it pruned, as they were; the parent's kind list as it was. Takes at most `timeout`;
    /// what it could not do by then, or at all, is in the report's `failed`.
    pub async fn undo(&self, report: &DeployReport, timeout: Duration) -> UndoReport {
        if report.dry_run {
            // Nothing was persisted: nothing to put back.
            return UndoReport::default();
        }
        self.undo_journal(&report.undo, timeout).await
    }
}

/// How long putting back what a failed deploy changed may take.
pub(super) const UNDO_AFTER_FAILURE: Duration = Duration::from_secs(60);
