//! deploy and undeploy: create a component's objects of any kind (or apply changes to
//! them), removing what this call created if any step fails; delete them again.

use std::collections::BTreeSet;
use std::time::Duration;

use kube::api::{DynamicObject, PropagationPolicy};
use serde::Serialize;

use super::apply::{Action, Member, kinds_by_rank};
use super::owned::always_looked_for;
use super::owners::TakenOver;
use super::plan::{Undo, plan};
use super::request::GroupKind;
use super::resources::Resources;
use super::undo::UndoReport;
use super::{Cluster, ClusterError, name_of};
use crate::kinds::DEFAULT_KINDS;
use crate::objects::{ObjectRef, Rendered};
use crate::selector::Selector;

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

/// What undeploy removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct UndeployReport {
    /// Namespace of the objects.
    pub namespace: String,
    /// Each object deleted, with its uid.
    pub deleted: Vec<ObjectRef>,
    /// The deleted Deployments' pod selectors: `wait_gone` waits for every pod they
    /// select, those of an earlier Deployment of the component still ending included.
    #[serde(skip)]
    pub(super) pods: Vec<String>,
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

    /// Delete every object of `component`, of every kind its inventory names (the kinds
    /// a workload commonly owns when the parent is gone), dependents first, the Deployment
    /// in the foreground (its pods and ReplicaSets go first); found by its ownership
    /// labels, then the inventory's parent. Nothing found is an error.
    pub async fn undeploy(&self, component: &str) -> Result<UndeployReport, ClusterError> {
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
        let mut deleted = Vec::new();
        let mut pods = Vec::new();
        for group_kind in kinds_by_rank(kinds).into_iter().rev() {
            let Some(resource) = self.resource_of_group_kind(&group_kind, &mut found).await? else {
                continue;
            };
            let propagation =
                (resource.kind == "Deployment").then_some(PropagationPolicy::Foreground);
            for object in self.owned(&resource, component).await? {
                if resource.kind == "Deployment" {
                    pods.extend(pod_selector(&object));
                }
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
                namespace: self.namespace().to_owned(),
            });
        }
        Ok(UndeployReport {
            namespace: self.namespace().to_owned(),
            deleted,
            pods,
        })
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

/// A Deployment's whole pod selector, as a query (none if it has no valid one).
fn pod_selector(deployment: &DynamicObject) -> Option<String> {
    let selector = deployment.data.pointer("/spec/selector")?;
    let selector = serde_json::from_value(selector.clone()).ok()?;
    Some(Selector::new(&selector).ok()?.to_query())
}

/// How long putting back what a failed deploy changed may take.
const UNDO_AFTER_FAILURE: Duration = Duration::from_secs(60);
