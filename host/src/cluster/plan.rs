//! The plan of a deploy as a value: from the rendered objects and what the cluster holds,
//! each step decided before any write, each with what undoes it. Pure: no requests.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::api::{ApiResource, DynamicObject};
use serde_json::{Value, json};

use super::apply::{Member, Update, by_rank, check_owner, update};
use super::request::GroupKind;
use super::{ClusterError, name_of};
use crate::objects::ObjectRef;

/// What the cluster holds of a component, read before a deploy writes any object (its
/// inventory aside) or a diff sends any dry run.
#[derive(Debug, Clone, Default)]
pub(super) struct Live {
    /// The kinds its inventory names; `None` when it has no inventory (never deployed, or
    /// deployed before inventories).
    pub inventory: Option<BTreeSet<GroupKind>>,
    /// Each member's object of its name, as it is (absent: not there).
    pub members: BTreeMap<(GroupKind, String), DynamicObject>,
    /// Every object carrying the component's ownership labels, of the kinds it has, had or
    /// always may have; `None` when not looked for (nothing of the component exists yet).
    pub owned: Option<Vec<(ApiResource, DynamicObject)>>,
}

/// One step of a plan.
#[derive(Debug, Clone)]
pub(super) enum Step {
    /// The object is absent: create it. Undone by deleting what the create made.
    Create(Member),
    /// The object is the component's: write the rendered state over it, as `update` says.
    /// Undone by putting `live` back.
    Update {
        /// The object as berth applies it.
        member: Member,
        /// The object as it is.
        live: Box<DynamicObject>,
        /// The requests that write it.
        update: Update,
        /// The object carries the component's ownership labels but its inventory does not
        /// name its kind (an earlier berth made it, or no inventory yet): the inventory
        /// takes it in.
        adopt: bool,
    },
    /// Change fields of the component's object in place (a scale, an upgrade). Undone by
    /// the patch that sets them back.
    Patch(Patched),
    /// Set a Deployment's whole pod template (a rollback). Undone by the template it had.
    Replace {
        /// The change.
        replaced: Box<Replaced>,
        /// The Deployment as read when planned, which the first replace starts from (a
        /// conflict reads it again); `None`: read it first.
        live: Option<Box<Deployment>>,
    },
    /// The component's, and the render no longer builds it: delete it (that uid). Undone by
    /// making it again as berth had made it.
    Prune {
        /// Where it lives.
        resource: ApiResource,
        /// The object as it is.
        live: DynamicObject,
    },
}

/// A patch of one object and the patch that puts back what it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Patched {
    /// Where it lives.
    pub resource: ApiResource,
    /// The object (its uid: the patch carries it, so it reaches that object or none).
    pub object: ObjectRef,
    /// The change.
    pub patch: Patch,
    /// The change back.
    pub back: Patch,
}

impl Patched {
    /// The patch that undoes this one.
    pub fn reversed(&self) -> Self {
        Self {
            patch: self.back.clone(),
            back: self.patch.clone(),
            ..self.clone()
        }
    }
}

/// A Deployment's whole pod template set to another.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Replaced {
    /// The Deployment (its uid: the replace carries it, so it reaches that object or none).
    pub object: ObjectRef,
    /// The template it gets.
    pub template: PodTemplateSpec,
    /// The template it had.
    pub back: PodTemplateSpec,
}

impl Replaced {
    /// The replace that undoes this one.
    pub fn reversed(&self) -> Self {
        Self {
            template: self.back.clone(),
            back: self.template.clone(),
            ..self.clone()
        }
    }
}

/// The step that rolls `deployment` back to `replica_set`'s pod template, as `kubectl
/// rollout undo` does: the template without the label the deployment controller adds.
pub(super) fn rollback(deployment: &Deployment, replica_set: &ReplicaSet) -> Step {
    let template_of = |spec: Option<&PodTemplateSpec>| spec.cloned().unwrap_or_default();
    let mut template = template_of(replica_set.spec.as_ref().and_then(|s| s.template.as_ref()));
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(POD_TEMPLATE_HASH);
    }
    let back = template_of(deployment.spec.as_ref().map(|s| &s.template));
    Step::Replace {
        replaced: Box::new(Replaced {
            object: ObjectRef::of("apps/v1", "Deployment", &deployment.metadata),
            template,
            back,
        }),
        live: Some(Box::new(deployment.clone())),
    }
}

/// Label the deployment controller adds to each ReplicaSet's template.
const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// A patch, as the API server takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Patch {
    /// A JSON merge patch.
    Merge(Value),
    /// A strategic merge patch (lists merged by their keys: containers by name).
    Strategic(Value),
}

/// The step that sets `deployment`'s replicas to `replicas`.
pub(super) fn scale(deployment: &Deployment, replicas: i32) -> Patched {
    // The API server defaults an absent count to 1.
    let previous = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let at = |replicas: i32| {
        Patch::Merge(json!({"metadata": {"uid": deployment.metadata.uid},
                            "spec": {"replicas": replicas}}))
    };
    Patched {
        resource: ApiResource::erase::<Deployment>(&()),
        object: ObjectRef::of("apps/v1", "Deployment", &deployment.metadata),
        patch: at(replicas),
        back: at(previous),
    }
}

/// The step that stops `deployment` before an undeploy deletes it: paused (the deployment
/// controller makes no ReplicaSet for a paused Deployment) at 0 replicas (its ReplicaSets
/// are scaled to none). Once the controller has seen it, one whose caches lag cannot make
/// a ReplicaSet, or a pod, after the deletion, as it could for a running one. Undone by
/// the replica count and pause it had.
pub(super) fn stop(deployment: &DynamicObject) -> Patched {
    let spec = deployment.data.get("spec");
    // The API server defaults an absent count to 1; an absent pause is not paused.
    let replicas = spec
        .and_then(|s| s.get("replicas"))
        .cloned()
        .unwrap_or(json!(1));
    let paused = spec
        .and_then(|s| s.get("paused"))
        .cloned()
        .unwrap_or(Value::Null);
    let set = |paused: Value, replicas: Value| {
        Patch::Merge(json!({"metadata": {"uid": deployment.metadata.uid},
                            "spec": {"paused": paused, "replicas": replicas}}))
    };
    Patched {
        resource: ApiResource::erase::<Deployment>(&()),
        object: ObjectRef::of("apps/v1", "Deployment", &deployment.metadata),
        patch: set(json!(true), json!(0)),
        back: set(paused, replicas),
    }
}

/// The step that sets the image of container `index` of `deployment` to `image`, with the
/// image it replaces; `None` when there is no such container.
pub(super) fn upgrade(
    deployment: &Deployment,
    index: usize,
    image: &str,
) -> Option<(Patched, String)> {
    let containers = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| p.containers.as_slice())
        .unwrap_or_default();
    let container = containers.get(index)?;
    let previous = container.image.clone().unwrap_or_default();
    // Strategic merge on the container's name changes that container's image only.
    let set = |image: &str| {
        Patch::Strategic(json!({"metadata": {"uid": deployment.metadata.uid},
                                "spec": {"template": {"spec": {"containers": [
                                    {"name": container.name, "image": image}]}}}}))
    };
    let step = Patched {
        resource: ApiResource::erase::<Deployment>(&()),
        object: ObjectRef::of("apps/v1", "Deployment", &deployment.metadata),
        patch: set(image),
        back: set(&previous),
    };
    Some((step, previous))
}

/// The journal of a deploy: what undoes each write it did, in the order done.
#[derive(Debug, Clone, Default)]
pub(super) struct Undo {
    /// The component.
    pub component: String,
    /// Each object written, with what undoes that write.
    pub steps: Vec<(ObjectRef, Inverse)>,
    /// The inventory's parent, when the deploy created it.
    pub parent_created: Option<ObjectRef>,
    /// The parent's kind list before the deploy, when it existed.
    pub parent_kinds_before: Option<BTreeSet<GroupKind>>,
}

/// The kinds of step, as the tests name them.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StepKind {
    /// Create an absent object.
    Create,
    /// Apply over an object (the server's answer says whether that changed anything).
    Apply,
    /// Apply after removing what berth applied before and renders no more.
    ApplyRemoving,
    /// Hand the replicas to an autoscaler, then apply.
    HandOver,
    /// Apply over an object the inventory does not name yet.
    Adopt,
    /// Patch an object in place.
    Patch,
    /// Replace a Deployment's pod template.
    Replace,
    /// Delete an object the render no longer builds.
    Prune,
}

/// What undoes a step once it is done.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Inverse {
    /// Delete the object the step created (its uid, known once made).
    Delete(ApiResource),
    /// Replace the object with this, as it was.
    Restore(ApiResource, DynamicObject),
    /// Create this again, as it was.
    Recreate(ApiResource, DynamicObject),
    /// Patch it back.
    Patch(Patched),
    /// Set the template it had again.
    Replace(Box<Replaced>),
}

impl Step {
    /// Which kind of step.
    #[cfg(test)]
    pub fn kind(&self) -> StepKind {
        match self {
            Step::Create(_) => StepKind::Create,
            Step::Update { adopt: true, .. } => StepKind::Adopt,
            Step::Update { update, .. } if update.handover.is_some() => StepKind::HandOver,
            Step::Update { update, .. } if update.patch.is_some() => StepKind::ApplyRemoving,
            Step::Update { .. } => StepKind::Apply,
            Step::Patch(_) => StepKind::Patch,
            Step::Replace { .. } => StepKind::Replace,
            Step::Prune { .. } => StepKind::Prune,
        }
    }

    /// What undoes this step.
    pub fn inverse(&self) -> Inverse {
        match self {
            Step::Create(member) => Inverse::Delete(member.resource.clone()),
            Step::Update { member, live, .. } => {
                Inverse::Restore(member.resource.clone(), (**live).clone())
            }
            Step::Patch(patched) => Inverse::Patch(patched.reversed()),
            Step::Replace { replaced, .. } => Inverse::Replace(Box::new(replaced.reversed())),
            Step::Prune { resource, live } => Inverse::Recreate(resource.clone(), live.clone()),
        }
    }

    /// The object the step is about, as planned (no uid for one to create).
    pub fn object(&self) -> ObjectRef {
        match self {
            Step::Create(member) => ObjectRef::of(
                &member.resource.api_version,
                &member.resource.kind,
                &member.object.metadata,
            ),
            Step::Update { member, live, .. } => ObjectRef::of(
                &member.resource.api_version,
                &member.resource.kind,
                &live.metadata,
            ),
            Step::Patch(patched) => patched.object.clone(),
            Step::Replace { replaced, .. } => replaced.object.clone(),
            Step::Prune { resource, live } => {
                ObjectRef::of(&resource.api_version, &resource.kind, &live.metadata)
            }
        }
    }
}

/// A deploy's plan: the inventory's kind list before and after, and the steps in order.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    /// The component.
    pub component: String,
    /// The kinds the inventory named before (`None`: no inventory).
    pub inventory_before: Option<BTreeSet<GroupKind>>,
    /// The kinds of the rendered objects: what the inventory names once done.
    pub kinds: BTreeSet<GroupKind>,
    /// Creates and updates in apply order, then prunes, dependents first.
    pub steps: Vec<Step>,
}

impl Plan {
    /// Whether the inventory is narrowed to [`Plan::kinds`] once the prunes are done.
    pub fn narrows(&self) -> bool {
        self.inventory_before
            .as_ref()
            .is_some_and(|before| before.difference(&self.kinds).next().is_some())
    }

    /// The objects the inventory takes in: the component's, of kinds it did not name.
    pub fn adopted(&self) -> impl Iterator<Item = ObjectRef> + '_ {
        self.steps.iter().filter_map(|step| match step {
            Step::Update { adopt: true, .. } => Some(step.object()),
            _ => None,
        })
    }
}

/// The step that puts `member` on a cluster where it is `live` (`None`: absent); an object
/// of the name that is not `component`'s is refused.
pub(super) fn step(
    component: &str,
    member: &Member,
    live: Option<&DynamicObject>,
    inventory: Option<&BTreeSet<GroupKind>>,
) -> Result<Step, ClusterError> {
    let Some(live) = live else {
        return Ok(Step::Create(member.clone()));
    };
    let reference = ObjectRef::of(
        &member.resource.api_version,
        &member.resource.kind,
        &live.metadata,
    );
    check_owner(live, &reference, component)?;
    Ok(Step::Update {
        member: member.clone(),
        live: Box::new(live.clone()),
        update: update(member, live),
        adopt: !inventory.is_some_and(|kinds| kinds.contains(&member.group_kind())),
    })
}

/// The plan that puts `members` (in apply order) on a cluster holding `live`.
pub(super) fn plan(component: &str, members: &[Member], live: &Live) -> Result<Plan, ClusterError> {
    let mut steps = Vec::new();
    for member in members {
        let found = live.members.get(&(member.group_kind(), member.name()));
        steps.push(step(component, member, found, live.inventory.as_ref())?);
    }
    let keep: BTreeSet<(GroupKind, String)> =
        members.iter().map(|m| (m.group_kind(), m.name())).collect();
    let mut stale: BTreeMap<GroupKind, Vec<(ApiResource, DynamicObject)>> = BTreeMap::new();
    for (resource, object) in live.owned.iter().flatten() {
        let group_kind = GroupKind::new(&resource.group, &resource.kind);
        if !keep.contains(&(group_kind.clone(), name_of(&object.metadata))) {
            stale
                .entry(group_kind)
                .or_default()
                .push((resource.clone(), object.clone()));
        }
    }
    for (_, objects) in by_rank(stale).into_iter().rev() {
        for (resource, live) in objects {
            steps.push(Step::Prune { resource, live });
        }
    }
    Ok(Plan {
        component: component.to_owned(),
        inventory_before: live.inventory.clone(),
        kinds: members.iter().map(Member::group_kind).collect(),
        steps,
    })
}

/// Whether the owned objects need looking for at all: not when the component has no
/// inventory and none of the rendered objects exists (a first deploy; a component made
/// before inventories has its Deployment or Service of the rendered name).
pub(super) fn looks_for_owned(live: &Live) -> bool {
    live.inventory.is_some() || !live.members.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{COMPONENT_LABEL, MANAGED_BY, MANAGED_BY_LABEL};

    fn resource(group: &str, version: &str, kind: &str) -> ApiResource {
        ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(group, version, kind))
    }

    fn deployments() -> ApiResource {
        resource("apps", "v1", "Deployment")
    }

    fn object(resource: &ApiResource, name: &str, rest: Value) -> DynamicObject {
        let mut value = json!({"apiVersion": resource.api_version, "kind": resource.kind,
                               "metadata": {"name": name}});
        if let (Some(into), Value::Object(rest)) = (value.as_object_mut(), rest) {
            into.extend(rest);
        }
        serde_json::from_value(value).unwrap()
    }

    fn owned_by(component: &str) -> Value {
        json!({MANAGED_BY_LABEL: MANAGED_BY, COMPONENT_LABEL: component})
    }

    /// A member of `web`: a Deployment with `replicas`, a Service, a ConfigMap.
    fn members(replicas: Option<i64>, labels: Value) -> Vec<Member> {
        let mut spec = json!({"template": {"spec": {"containers": [{"name": "web"}]}}});
        if let Some(replicas) = replicas {
            spec["replicas"] = json!(replicas);
        }
        let (config, service) = (
            resource("", "v1", "ConfigMap"),
            resource("", "v1", "Service"),
        );
        vec![
            Member {
                object: object(&config, "web-env", json!({"data": {"A": "1"}})),
                resource: config,
            },
            Member {
                object: object(&service, "web", json!({"spec": {"ports": [{"port": 80}]}})),
                resource: service,
            },
            Member {
                object: object(
                    &deployments(),
                    "web",
                    json!({"spec": spec, "metadata": {"name": "web", "labels": labels}}),
                ),
                resource: deployments(),
            },
        ]
    }

    /// `member` as it is on the cluster: the component's, with managed fields `fields`.
    fn live_of(member: &Member, fields: Value) -> DynamicObject {
        let mut live = member.object.clone();
        live.metadata.uid = Some(format!("uid-{}", member.name()));
        live.metadata.labels = serde_json::from_value(owned_by("web")).ok();
        live.metadata.managed_fields = serde_json::from_value(fields).ok();
        live
    }

    fn berth_applied(fields: Value) -> Value {
        json!([{"manager": "berth", "operation": "Apply", "fieldsType": "FieldsV1",
                "fieldsV1": fields}])
    }

    /// Every member live and the component's, the Deployment with managed fields
    /// `fields`, the others with berth's apply owning nothing they lack.
    fn all_live(members: &[Member], fields: &Value) -> Live {
        let live = |m: &Member| {
            let fields = if m.resource.kind == "Deployment" {
                fields.clone()
            } else {
                berth_applied(json!({}))
            };
            live_of(m, fields)
        };
        Live {
            inventory: Some(members.iter().map(Member::group_kind).collect()),
            members: members
                .iter()
                .map(|m| ((m.group_kind(), m.name()), live(m)))
                .collect(),
            owned: Some(
                members
                    .iter()
                    .map(|m| (m.resource.clone(), live(m)))
                    .collect(),
            ),
        }
    }

    fn kinds(plan: &Plan) -> Vec<(StepKind, String)> {
        plan.steps
            .iter()
            .map(|s| (s.kind(), format!("{}/{}", s.object().kind, s.object().name)))
            .collect()
    }

    fn named(kind: StepKind, object: &str) -> (StepKind, String) {
        (kind, object.to_owned())
    }

    #[test]
    fn a_first_deploy_creates_everything_and_each_create_is_undone_by_a_delete() {
        let members = members(Some(2), json!({"team": "a"}));
        let live = Live::default();
        assert!(!looks_for_owned(&live), "nothing of it exists: no lists");
        let plan = plan("web", &members, &live).unwrap();
        assert_eq!(
            kinds(&plan),
            [
                named(StepKind::Create, "ConfigMap/web-env"),
                named(StepKind::Create, "Service/web"),
                named(StepKind::Create, "Deployment/web"),
            ]
        );
        assert_eq!(plan.steps[2].inverse(), Inverse::Delete(deployments()));
        assert!(!plan.narrows());
    }

    #[test]
    fn a_redeploy_applies_over_each_object_and_undoes_by_putting_it_back() {
        let members = members(Some(2), json!({"team": "a"}));
        let fields =
            json!({"f:metadata": {"f:labels": {"f:team": {}}}, "f:spec": {"f:replicas": {}}});
        let live = all_live(&members, &berth_applied(fields));
        assert!(looks_for_owned(&live));
        let plan = plan("web", &members, &live).unwrap();
        assert_eq!(
            kinds(&plan),
            [
                named(StepKind::Apply, "ConfigMap/web-env"),
                named(StepKind::Apply, "Service/web"),
                named(StepKind::Apply, "Deployment/web"),
            ]
        );
        let Inverse::Restore(resource, before) = plan.steps[2].inverse() else {
            panic!("not a restore: {:?}", plan.steps[2].inverse());
        };
        assert_eq!(resource, deployments());
        assert_eq!(before.metadata.uid.as_deref(), Some("uid-web"));
    }

    #[test]
    fn a_dropped_field_is_removed_and_an_autoscaler_gets_the_replicas() {
        let before = members(Some(2), json!({"team": "a", "tier": "b"}));
        let fields = json!({"f:metadata": {"f:labels": {"f:team": {}, "f:tier": {}}},
                            "f:spec": {"f:replicas": {}}});
        let live = all_live(&before, &berth_applied(fields));

        let dropped = plan("web", &members(Some(2), json!({"team": "a"})), &live).unwrap();
        assert_eq!(dropped.steps[2].kind(), StepKind::ApplyRemoving);

        // An autoscaler appears: the rules render no replicas; berth owned them.
        let scaled = plan(
            "web",
            &members(None, json!({"team": "a", "tier": "b"})),
            &live,
        )
        .unwrap();
        assert_eq!(scaled.steps[2].kind(), StepKind::HandOver);
        let Step::Update { update, .. } = &scaled.steps[2] else {
            panic!("an update");
        };
        assert_eq!(
            update
                .handover
                .as_ref()
                .and_then(|h| h.pointer("/spec/replicas")),
            Some(&json!(2)),
            "handed over at the live count"
        );
    }

    #[test]
    fn a_field_another_manager_owns_is_left_to_it() {
        let members = members(Some(2), json!({"team": "a"}));
        let mut fields =
            berth_applied(json!({"f:metadata": {"f:labels": {"f:team": {}, "f:tier": {}}}}));
        fields.as_array_mut().unwrap().push(json!({
            "manager": "kubectl-edit", "operation": "Update", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {"f:tier": {}}}}}));
        let plan = plan("web", &members, &all_live(&members, &fields)).unwrap();
        assert_eq!(
            plan.steps[2].kind(),
            StepKind::Apply,
            "nothing of berth's alone to remove"
        );
    }

    #[test]
    fn objects_an_older_berth_created_are_adopted_into_the_inventory() {
        let members = members(Some(2), json!({"team": "a"}));
        // An older berth's plain create: an `Update` entry by `unknown`, no inventory.
        let created = json!([{"manager": "unknown", "operation": "Update", "fieldsType": "FieldsV1",
                               "fieldsV1": {"f:spec": {"f:replicas": {}}}}]);
        let mut live = all_live(&members, &created);
        live.inventory = None;
        let plan = plan("web", &members, &live).unwrap();
        assert!(plan.steps.iter().all(|s| s.kind() == StepKind::Adopt));
        assert_eq!(plan.adopted().count(), 3);
        assert_eq!(plan.inventory_before, None);
        assert!(!plan.narrows(), "nothing to narrow");
    }

    #[test]
    fn an_object_without_the_components_labels_is_never_adopted() {
        let members = members(Some(2), json!({"team": "a"}));
        let mut live = all_live(&members, &json!([]));
        let theirs = &members[1];
        let mut foreign = theirs.object.clone();
        foreign.metadata.labels = serde_json::from_value(owned_by("other")).ok();
        live.members
            .insert((theirs.group_kind(), theirs.name()), foreign);
        let error = plan("web", &members, &live).unwrap_err();
        assert!(
            matches!(&error, ClusterError::Foreign { object, component }
                if object.name == "web" && object.kind == "Service" && component == "web"),
            "{error:?}"
        );
    }

    #[test]
    fn what_the_render_no_longer_builds_is_pruned_dependents_first_and_undone_by_a_create() {
        let members = members(Some(2), json!({"team": "a"}));
        let mut live = all_live(&members, &json!([]));
        let (pdb, old) = (
            resource("policy", "v1", "PodDisruptionBudget"),
            resource("apps", "v1", "Deployment"),
        );
        let budget = object(
            &pdb,
            "web",
            json!({"metadata": {"name": "web", "labels": owned_by("web")}}),
        );
        let renamed = object(
            &old,
            "web-old",
            json!({"metadata": {"name": "web-old", "labels": owned_by("web")}}),
        );
        let owned = live.owned.as_mut().unwrap();
        owned.push((old.clone(), renamed.clone()));
        owned.push((pdb.clone(), budget.clone()));
        live.inventory
            .as_mut()
            .unwrap()
            .insert(GroupKind::new("policy", "PodDisruptionBudget"));
        let plan = plan("web", &members, &live).unwrap();
        assert_eq!(
            kinds(&plan)[3..],
            [
                named(StepKind::Prune, "PodDisruptionBudget/web"),
                named(StepKind::Prune, "Deployment/web-old"),
            ]
        );
        assert_eq!(plan.steps[3].inverse(), Inverse::Recreate(pdb, budget));
        assert!(plan.narrows(), "the pruned kind leaves the inventory");
        assert!(
            !plan
                .kinds
                .contains(&GroupKind::new("policy", "PodDisruptionBudget"))
        );
    }

    #[test]
    fn a_scale_and_an_upgrade_are_undone_by_the_patch_back_to_what_was_there() {
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "dep-web", "uid": "u-1"},
            "spec": {"replicas": 2, "selector": {},
                     "template": {"spec": {"containers": [
                         {"name": "web", "image": "web:1"}, {"name": "log", "image": "log:1"}]}}}
        }))
        .unwrap();
        let scaled = scale(&deployment, 5);
        assert_eq!(
            scaled.patch,
            Patch::Merge(json!({"metadata": {"uid": "u-1"}, "spec": {"replicas": 5}}))
        );
        assert_eq!(
            Step::Patch(scaled.clone()).inverse(),
            Inverse::Patch(Patched {
                patch: Patch::Merge(json!({"metadata": {"uid": "u-1"}, "spec": {"replicas": 2}})),
                back: scaled.patch.clone(),
                ..scaled.clone()
            })
        );
        assert_eq!(scaled.object.uid.as_deref(), Some("u-1"));

        let (upgraded, previous) = upgrade(&deployment, 1, "log:2").unwrap();
        assert_eq!(previous, "log:1");
        let image = |patch: &Patch| match patch {
            Patch::Strategic(p) => p.pointer("/spec/template/spec/containers/0").cloned(),
            Patch::Merge(_) => None,
        };
        assert_eq!(
            image(&upgraded.patch),
            Some(json!({"name": "log", "image": "log:2"}))
        );
        assert_eq!(
            image(&upgraded.back),
            Some(json!({"name": "log", "image": "log:1"}))
        );
        assert!(
            upgrade(&deployment, 2, "x:1").is_none(),
            "no third container"
        );
    }

    #[test]
    fn a_stop_pauses_at_no_replicas_that_object_and_is_undone_to_what_it_had() {
        let running = object(
            &deployments(),
            "dep-web",
            json!({"metadata": {"name": "dep-web", "uid": "u-1"}, "spec": {"replicas": 3}}),
        );
        let stopped = stop(&running);
        assert_eq!(
            stopped.patch,
            Patch::Merge(json!({"metadata": {"uid": "u-1"},
                                "spec": {"paused": true, "replicas": 0}}))
        );
        // Never paused: the pause goes again, not set to false.
        assert_eq!(
            stopped.back,
            Patch::Merge(json!({"metadata": {"uid": "u-1"},
                                "spec": {"paused": null, "replicas": 3}}))
        );
        assert_eq!(stopped.object.uid.as_deref(), Some("u-1"));
        let paused = object(
            &deployments(),
            "dep-web",
            json!({"metadata": {"name": "dep-web", "uid": "u-2"}, "spec": {"paused": true}}),
        );
        assert_eq!(
            stop(&paused).back,
            Patch::Merge(json!({"metadata": {"uid": "u-2"},
                                "spec": {"paused": true, "replicas": 1}}))
        );
    }

    #[test]
    fn a_rollback_sets_the_earlier_template_without_the_hash_label_and_is_undone_to_this_one() {
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "dep-web", "uid": "u-1"},
            "spec": {"selector": {}, "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "web:2"}]}}},
        }))
        .unwrap();
        let earlier: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "dep-web-1"},
            "spec": {"selector": {}, "template": {
                "metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}},
                "spec": {"containers": [{"name": "web", "image": "web:1"}]}}},
        }))
        .unwrap();
        let step = rollback(&deployment, &earlier);
        assert_eq!(step.kind(), StepKind::Replace);
        let Step::Replace { replaced, live } = &step else {
            unreachable!()
        };
        assert_eq!(
            live.as_deref(),
            Some(&deployment),
            "starts from what was read"
        );
        assert_eq!(replaced.object.uid.as_deref(), Some("u-1"));
        let value = |t: &PodTemplateSpec| serde_json::to_value(t).unwrap();
        assert_eq!(
            value(&replaced.template),
            json!({"metadata": {"labels": {"app": "web"}},
                   "spec": {"containers": [{"name": "web", "image": "web:1"}]}})
        );
        let Inverse::Replace(back) = step.inverse() else {
            unreachable!()
        };
        assert_eq!(
            value(&back.template),
            json!({"metadata": {"labels": {"app": "web"}},
                   "spec": {"containers": [{"name": "web", "image": "web:2"}]}})
        );
        assert_eq!(back.back, replaced.template);
        assert_eq!(back.object, replaced.object);
    }
}
