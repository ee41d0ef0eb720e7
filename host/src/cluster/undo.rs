//! Undoing a deploy whose rollout failed: what it created is deleted, what it changed or
//! pruned is put back as it was, the inventory restored; within a time of its own, saying
//! exactly what it could not restore.

use std::collections::BTreeSet;
use std::time::Duration;

use kube::api::{ApiResource, DynamicObject, PropagationPolicy};
use serde::Serialize;

use super::applied::pick;
use super::apply::berth_fields;
use super::plan::{Inverse, Step, Undo};
use super::request::{describe, retry_conflicts};
use super::{Cluster, name_of};
use crate::objects::ObjectRef;

/// What [`Cluster::undo`] did, and what it could not do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct UndoReport {
    /// Objects the deploy had created, deleted again.
    pub removed: Vec<ObjectRef>,
    /// Objects the deploy had changed, put back as they were (a Deployment's earlier pod
    /// template: a new revision in its history).
    pub restored: Vec<ObjectRef>,
    /// Objects the deploy had pruned, made again.
    pub recreated: Vec<ObjectRef>,
    /// What could not be put back, and why.
    pub failed: Vec<(ObjectRef, String)>,
}

impl UndoReport {
    /// Whether everything was put back.
    pub fn complete(&self) -> bool {
        self.failed.is_empty()
    }
}

impl Cluster {
    /// Put back what `undo` records a deploy changed, within `timeout` (what it could not
    /// do by then is in the report's `failed`).
    pub(super) async fn undo_journal(&self, undo: &Undo, timeout: Duration) -> UndoReport {
        let mut done = UndoReport::default();
        let work = self.undo_steps(undo, &mut done);
        if tokio::time::timeout(timeout, work).await.is_err() {
            let attempted: BTreeSet<ObjectRef> = done
                .removed
                .iter()
                .chain(&done.restored)
                .chain(&done.recreated)
                .chain(done.failed.iter().map(|(o, _)| o))
                .cloned()
                .collect();
            for object in everything(undo) {
                if !attempted.contains(&object) {
                    done.failed.push((
                        object,
                        format!("not attempted: undo timed out after {timeout:?}"),
                    ));
                }
            }
        }
        done
    }

    /// Put back in the reverse of deploy's order of effect: what was changed and pruned
    /// first (so nothing that the restored objects refer to is missing), then what was
    /// created goes, newest first; the inventory last, and only when nothing it names is
    /// left behind.
    async fn undo_steps(&self, undo: &Undo, done: &mut UndoReport) {
        let in_place = undo
            .steps
            .iter()
            .rev()
            .filter_map(|(_, inverse)| match inverse {
                Inverse::Patch(patched) => Some(Step::Patch(patched.clone())),
                Inverse::Replace(replaced) => Some(Step::Replace {
                    replaced: replaced.clone(),
                    live: None,
                }),
                _ => None,
            });
        for step in in_place {
            match self.execute_step(&undo.component, &step).await {
                Ok(_) => done.restored.push(step.object()),
                Err(e) => done.failed.push((step.object(), e.to_string())),
            }
        }
        let restores = undo
            .steps
            .iter()
            .rev()
            .filter_map(|(_, inverse)| match inverse {
                Inverse::Restore(resource, before) => Some((resource, before)),
                _ => None,
            });
        for (resource, before) in restores {
            let object = ObjectRef::of(&resource.api_version, &resource.kind, &before.metadata);
            match self.restore(resource, before).await {
                Ok(()) => done.restored.push(object),
                Err(e) => done.failed.push((object, describe(&e))),
            }
        }
        let recreates = undo.steps.iter().filter_map(|(_, inverse)| match inverse {
            Inverse::Recreate(resource, before) => Some((resource, before)),
            _ => None,
        });
        for (resource, before) in recreates {
            let object = ObjectRef::of(&resource.api_version, &resource.kind, &before.metadata);
            match self
                .requests
                .create(resource, &as_berth_made_it(before))
                .await
            {
                Ok(made) => done.recreated.push(ObjectRef::dynamic(&made)),
                Err(e) => done.failed.push((object, describe(&e))),
            }
        }
        let deletes = undo
            .steps
            .iter()
            .rev()
            .filter_map(|(object, inverse)| match inverse {
                Inverse::Delete(resource) => Some((resource, object)),
                _ => None,
            });
        for (resource, object) in deletes {
            let background = Some(PropagationPolicy::Background);
            match self.requests.delete(resource, object, background).await {
                Ok(()) => done.removed.push(object.clone()),
                Err(e) => done.failed.push((object.clone(), describe(&e))),
            }
        }
        if !done.failed.is_empty() {
            // The inventory still names what is left: kept as it is.
            return;
        }
        if let Some(parent) = &undo.parent_created {
            match self.delete_parent(parent).await {
                Ok(()) => done.removed.push(parent.clone()),
                Err(e) => done.failed.push((parent.clone(), e.to_string())),
            }
        } else if let Some(kinds) = &undo.parent_kinds_before {
            // Only what a later deploy and undeploy look among: a failure here loses
            // nothing, so it is not reported.
            let _ = self.narrow_inventory(&undo.component, kinds).await;
        }
    }
}

impl Cluster {
    /// Replace the object `before` names with `before`, whatever was written since: the
    /// current resource version makes the replace allowed for every kind (custom resources
    /// take no unconditional one) and refused should the object change once more.
    async fn restore(
        &self,
        resource: &ApiResource,
        before: &DynamicObject,
    ) -> Result<(), kube::Error> {
        let api = self.requests.dynamic(resource);
        let name = name_of(&before.metadata);
        let mut restored = as_new(before);
        restored.metadata.uid = before.metadata.uid.clone();
        // A controller writing the status in between makes the replace conflict: read the
        // version again and redo it.
        let (api, name, restored) = (&api, &name, &restored);
        retry_conflicts(|| async move {
            let mut restored = restored.clone();
            restored.metadata.resource_version = api
                .get_opt(name)
                .await?
                .and_then(|current| current.metadata.resource_version);
            self.requests
                .replace(resource, name, &restored)
                .await
                .map(drop)
        })
        .await
    }
}

/// Every object the undo would touch.
fn everything(undo: &Undo) -> Vec<ObjectRef> {
    undo.steps
        .iter()
        .map(|(object, _)| object.clone())
        .chain(undo.parent_created.clone())
        .collect()
}

/// `object` as a request to make it: without what the API server sets.
fn as_new(object: &DynamicObject) -> DynamicObject {
    let mut object = object.clone();
    let meta = &mut object.metadata;
    meta.uid = None;
    meta.resource_version = None;
    meta.creation_timestamp = None;
    meta.deletion_timestamp = None;
    meta.deletion_grace_period_seconds = None;
    meta.generation = None;
    meta.managed_fields = None;
    if let Some(data) = object.data.as_object_mut() {
        data.remove("status");
    }
    object
}

/// `object` as berth made it: only the fields berth applied (its managed fields), so what
/// the server allocates (a Service's cluster IP) is allocated again and not claimed by
/// this create, which a later apply would then try to remove. Without managed fields, the
/// object as it was.
fn as_berth_made_it(object: &DynamicObject) -> DynamicObject {
    let made = as_new(object);
    let Some(fields) = berth_fields(object) else {
        return made;
    };
    let Ok(value) = serde_json::to_value(&made) else {
        return made;
    };
    let mut picked = pick(&value, &fields);
    picked["apiVersion"] = value["apiVersion"].clone();
    picked["kind"] = value["kind"].clone();
    picked["metadata"]["name"] = value["metadata"]["name"].clone();
    picked["metadata"]["namespace"] = value["metadata"]["namespace"].clone();
    serde_json::from_value(picked).unwrap_or(made)
}
