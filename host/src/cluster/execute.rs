//! Carrying out a plan: each step's requests, each step done written to a journal with what
//! undoes it before the next one starts. A dry-run connection sends each step as one
//! server-side dry run, whose answer is what the step would leave.

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, PropagationPolicy};
use serde_json::{Value, json};

use super::apply::{
    Action, Member, Update, berth_fields, comparable, created_by_berth, is_berth_apply,
};
use super::name_of;
use super::owners::{TakenOver, taken_over};
use super::plan::{Inverse, Patch, Patched, Plan, Replaced, Step, Undo, step};
use super::request::{Manager, retry_conflicts};
use super::{COMPONENT_LABEL, Cluster, ClusterError, FIELD_MANAGER, RENDERED_HASH_ANNOTATION};
use crate::objects::ObjectRef;

/// One step done.
#[derive(Debug, Clone)]
pub(super) struct Done {
    /// The object, with its uid.
    pub reference: ObjectRef,
    /// What was done to it.
    pub action: Action,
    /// It as it was (`None`: absent).
    pub live: Option<DynamicObject>,
    /// It as the step left it (`None`: deleted).
    pub after: Option<DynamicObject>,
    /// Fields other managers owned that the step's apply took.
    pub taken: Vec<TakenOver>,
    /// What undoes it (`None`: nothing changed).
    pub inverse: Option<Inverse>,
}

impl Cluster {
    /// Carry out `plan` on a cluster whose inventory already names every kind a step may
    /// create ([`Cluster::widen_inventory`]): each step in order, then the inventory narrowed
    /// to what is left. `journal` holds what undoes each write done, whether the plan
    /// finishes or fails half-way; `done` each step's outcome.
    pub(super) async fn execute(
        &self,
        plan: &Plan,
        journal: &mut Undo,
        done: &mut Vec<Done>,
    ) -> Result<(), ClusterError> {
        for step in &plan.steps {
            let outcome = self.execute_step(&plan.component, step).await?;
            if let Some(inverse) = &outcome.inverse {
                journal
                    .steps
                    .push((outcome.reference.clone(), inverse.clone()));
            }
            done.push(outcome);
        }
        if plan.narrows() {
            self.narrow_inventory(&plan.component, &plan.kinds).await?;
        }
        Ok(())
    }

    /// Do one step.
    pub(super) async fn execute_step(
        &self,
        component: &str,
        step: &Step,
    ) -> Result<Done, ClusterError> {
        match step {
            Step::Create(member) => self.create(component, member, step).await,
            Step::Update {
                member,
                live,
                update,
                ..
            } => self.update(member, live, update, step).await,
            Step::Patch(patched) => {
                let after = self.patch(patched).await?;
                Ok(Done {
                    reference: patched.object.clone(),
                    action: Action::Updated,
                    live: None,
                    after: Some(after),
                    taken: Vec::new(),
                    inverse: Some(step.inverse()),
                })
            }
            Step::Replace { replaced, live } => {
                let after = self.replace_template(replaced, live.as_deref()).await?;
                Ok(Done {
                    reference: replaced.object.clone(),
                    action: Action::Updated,
                    live: None,
                    after: Some(after),
                    taken: Vec::new(),
                    inverse: Some(step.inverse()),
                })
            }
            Step::Prune { resource, live } => {
                let reference = self.delete(resource, live, None).await?;
                Ok(Done {
                    reference,
                    action: Action::Deleted,
                    live: Some(live.clone()),
                    after: None,
                    taken: Vec::new(),
                    inverse: Some(step.inverse()),
                })
            }
        }
    }

    /// Delete exactly `object` (its uid), returning its reference.
    pub(super) async fn delete(
        &self,
        resource: &ApiResource,
        object: &DynamicObject,
        propagation: Option<PropagationPolicy>,
    ) -> Result<ObjectRef, ClusterError> {
        let reference = ObjectRef::of(&resource.api_version, &resource.kind, &object.metadata);
        self.requests
            .delete(resource, &reference, propagation)
            .await
            .map_err(ClusterError::api(format!(
                "cannot delete {} {}",
                resource.kind, reference.name
            )))?;
        Ok(reference)
    }

    /// Send `patched`'s patch.
    pub(super) async fn patch(&self, patched: &Patched) -> Result<DynamicObject, ClusterError> {
        let Patched {
            resource, object, ..
        } = patched;
        match &patched.patch {
            Patch::Merge(patch) => self.requests.merge(resource, &object.name, patch).await,
            Patch::Strategic(patch) => self.requests.strategic(resource, &object.name, patch).await,
        }
        .map_err(ClusterError::api(format!(
            "cannot patch {} {}",
            resource.kind, object.name
        )))
    }

    /// Set `replaced`'s template on its Deployment, starting from `live` if given. The
    /// replace carries the resource version read: a concurrent change (the controller's
    /// status during a rollout, another writer's field) makes it fail rather than be
    /// overwritten; then the Deployment is read again and only the template set anew. It
    /// carries the uid planned too, so a Deployment made again under the name is refused.
    async fn replace_template(
        &self,
        replaced: &Replaced,
        live: Option<&Deployment>,
    ) -> Result<DynamicObject, ClusterError> {
        let name = &replaced.object.name;
        let resource = ApiResource::erase::<Deployment>(&());
        let mut known = live.cloned();
        let requests = &self.requests;
        let (resource_ref, template) = (&resource, &replaced.template);
        retry_conflicts(|| {
            let known = known.take();
            async move {
                let mut d = match known {
                    Some(d) => d,
                    None => requests.typed::<Deployment>().get(name).await?,
                };
                d.metadata.uid.clone_from(&replaced.object.uid);
                if let Some(spec) = d.spec.as_mut() {
                    spec.template = template.clone();
                }
                requests.replace(resource_ref, name, &d).await
            }
        })
        .await
        .map_err(ClusterError::api(format!(
            "cannot replace the pod template of Deployment {name}"
        )))
    }

    /// Create `member`. When the create fails, look rather than guess: if its answer was lost
    /// and the object now carries this call's rendered state, this call made it; if another
    /// writer made it meanwhile (a concurrent deploy), it is written over like any object
    /// found, ownership checked. Anything else is the create's error.
    async fn create(
        &self,
        component: &str,
        member: &Member,
        planned: &Step,
    ) -> Result<Done, ClusterError> {
        let made = |made: DynamicObject| Done {
            reference: ObjectRef::dynamic(&made),
            action: Action::Created,
            live: None,
            after: Some(made),
            taken: Vec::new(),
            inverse: Some(planned.inverse()),
        };
        let error = match self.requests.create(&member.resource, &member.object).await {
            Ok(object) => return Ok(made(object)),
            Err(error) => error,
        };
        let (kind, name) = (&member.resource.kind, member.name());
        let lost = !matches!(error, kube::Error::Api(_));
        let exists = matches!(&error, kube::Error::Api(status) if status.code == 409);
        let failed = || ClusterError::api(format!("cannot create {kind} {name}"))(error);
        if self.is_dry_run() || !(lost || exists) {
            return Err(failed());
        }
        match self.read_member(member).await? {
            Some(object) if lost && carries(&object, &member.object) => Ok(made(object)),
            Some(existing) if exists => {
                // Decided again on what is there: the planned create cannot be done.
                let step = step(component, member, Some(&existing), None)?;
                Box::pin(self.execute_step(component, &step)).await
            }
            _ => Err(failed()),
        }
    }

    /// Write `member` over `live` as `planned` says: the fields an earlier berth's create
    /// owns made berth's applied ones, the replicas handed to an autoscaler, what berth
    /// dropped removed, then the apply. A dry run sends it all as one request, whose answer
    /// is what the writes would leave.
    async fn update(
        &self,
        member: &Member,
        live: &DynamicObject,
        update: &Update,
        planned: &Step,
    ) -> Result<Done, ClusterError> {
        let (resource, kind, name) = (&member.resource, &member.resource.kind, member.name());
        let after = if self.is_dry_run() {
            match update.as_one_patch(member) {
                Some(patch) => self.requests.strategic(resource, &name, &patch).await,
                None => {
                    self.requests
                        .apply(resource, &name, &member.object, Manager::Berth)
                        .await
                }
            }
            .map_err(ClusterError::api(format!("cannot update {kind} {name}")))?
        } else {
            self.own_created_fields(live, resource).await?;
            if let Some(handover) = &update.handover {
                self.requests
                    .apply(resource, &name, handover, Manager::Handover)
                    .await
                    .map_err(ClusterError::api(format!(
                        "cannot hand the replicas of {kind} {name} to its autoscaler"
                    )))?;
            }
            if let Some(patch) = &update.patch {
                self.requests
                    .strategic(resource, &name, patch)
                    .await
                    .map_err(ClusterError::api(format!("cannot update {kind} {name}")))?;
            }
            self.requests
                .apply(resource, &name, &member.object, Manager::Berth)
                .await
                .map_err(ClusterError::api(format!("cannot update {kind} {name}")))?
        };
        let changed = comparable(live) != comparable(&after);
        let taken = taken_over(live, &after, |entry| {
            created_by_berth(entry) || entry.manager.as_deref() == Some(Manager::Handover.name())
        });
        Ok(Done {
            reference: ObjectRef::of(&resource.api_version, kind, &live.metadata),
            action: if changed {
                Action::Updated
            } else {
                Action::Unchanged
            },
            live: Some(live.clone()),
            after: Some(after),
            taken,
            inverse: changed.then(|| planned.inverse()),
        })
    }

    /// Make the fields an earlier berth set when it created `existing` with a plain create
    /// (an `Update` entry of its managed fields) part of what berth applies, as `kubectl`'s
    /// client-side-to-server-side upgrade does: otherwise a field the rules stop building
    /// would stay, still owned by that create. One request, once per such object.
    async fn own_created_fields(
        &self,
        existing: &DynamicObject,
        resource: &ApiResource,
    ) -> Result<(), ClusterError> {
        let api: Api<DynamicObject> = self.requests.dynamic(resource);
        let name = name_of(&existing.metadata);
        // Conditional on the resource version, so a concurrent writer (the deployment
        // controller updating the status, typically) makes it fail with a conflict, not
        // lose its entry: then read again and redo it.
        let mut known = Some(existing.clone());
        let (requests, name_ref, api) = (&self.requests, &name, &api);
        retry_conflicts(|| {
            let known = known.take();
            async move {
                let current = match known {
                    Some(current) => current,
                    None => api.get(name_ref).await?,
                };
                match take_over(&current) {
                    Some(patch) => requests.merge(resource, name_ref, &patch).await.map(drop),
                    None => Ok(()),
                }
            }
        })
        .await
        .map_err(ClusterError::api(format!(
            "cannot take over the fields berth created in {} {name}",
            resource.kind
        )))
    }
}

/// Whether `live` carries what berth sent in `sent`: the same component label and
/// rendered-state hash (the hash covers every field the rules built).
pub(super) fn carries(live: &DynamicObject, sent: &DynamicObject) -> bool {
    let mark = |o: &DynamicObject| {
        let labels = o.metadata.labels.as_ref();
        let annotations = o.metadata.annotations.as_ref();
        (
            labels.and_then(|l| l.get(COMPONENT_LABEL)).cloned(),
            annotations
                .and_then(|a| a.get(RENDERED_HASH_ANNOTATION))
                .cloned(),
        )
    };
    let (component, hash) = mark(sent);
    component.is_some() && hash.is_some() && mark(live) == (component, hash)
}

/// The merge patch that makes the fields an earlier create of berth's set part of berth's
/// applied ones in `existing`, conditional on its resource version; `None` when there are
/// none.
fn take_over(existing: &DynamicObject) -> Option<Value> {
    let entries = existing.metadata.managed_fields.as_ref()?;
    if !entries.iter().any(created_by_berth) {
        return None;
    }
    let fields = berth_fields(existing)?;
    // One entry for berth's apply, holding the create's fields too; the others as they are.
    let mut entry = entries
        .iter()
        .find(|e| is_berth_apply(e))
        .or_else(|| entries.iter().find(|e| created_by_berth(e)))
        .cloned()
        .unwrap_or_default();
    entry.manager = Some(FIELD_MANAGER.to_owned());
    entry.operation = Some("Apply".to_owned());
    entry.fields_v1 = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1(
        fields,
    ));
    let mut kept: Vec<Value> = entries
        .iter()
        .filter(|e| !created_by_berth(e) && !is_berth_apply(e))
        .map(|e| serde_json::to_value(e).unwrap_or_default())
        .collect();
    kept.push(serde_json::to_value(entry).unwrap_or_default());
    Some(json!({"metadata": {
        "resourceVersion": existing.metadata.resource_version,
        "managedFields": kept,
    }}))
}
