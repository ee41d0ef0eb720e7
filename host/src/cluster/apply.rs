//! The objects as berth applies them (stamped, each with its API resource, in apply order)
//! and how an object that exists is written over: decided from the live object, no writes.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};
use kube::api::{ApiResource, DynamicObject};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::inventory::{PART_OF_LABEL, applyset_id};
use super::removal::{removals, strategic, with_removals};
use super::request::{CONTROLLED_BY_ANNOTATION, GroupKind, REVISION_ANNOTATION, is_owned};
use super::resources::Resources;
use super::{
    COMPONENT_LABEL, Cluster, ClusterError, FIELD_MANAGER, MANAGED_BY, MANAGED_BY_LABEL,
    RENDERED_HASH_ANNOTATION, RULES_DIGEST_ANNOTATION, name_of,
};
use crate::kinds::KindName;
use crate::objects::{Object, ObjectRef, Rendered};

/// What deploy did to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// It did not exist and was created.
    Created,
    /// It existed, and applying the rendered state changed nothing.
    Unchanged,
    /// It existed and was changed to the rendered state.
    Updated,
    /// It existed but the spec no longer builds it, so it was deleted.
    Deleted,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Action::Created => "created",
            Action::Unchanged => "unchanged",
            Action::Updated => "updated",
            Action::Deleted => "deleted",
        })
    }
}

/// One object to apply: where it lives on the cluster, and the object as berth applies it.
#[derive(Debug, Clone)]
pub(super) struct Member {
    pub resource: ApiResource,
    pub object: DynamicObject,
}

impl Member {
    pub fn group_kind(&self) -> GroupKind {
        GroupKind::new(&self.resource.group, &self.resource.kind)
    }

    pub fn name(&self) -> String {
        name_of(&self.object.metadata)
    }
}

impl Cluster {
    /// The rendered objects as berth applies them, in apply order: stamped, each with its
    /// API resource. Asks discovery about kinds beyond the few every cluster serves.
    pub(super) async fn members(
        &self,
        component: &str,
        rendered: &Rendered,
        found: &mut Resources,
    ) -> Result<Vec<Member>, ClusterError> {
        let stamp = Stamp {
            component,
            set: applyset_id(component, self.namespace()),
            rules: format!("sha256:{}", rendered.rules_digest),
            controller: self.requests.controller(),
        };
        let mut members = Vec::new();
        for object in rendered.objects() {
            // The hash of the object as the rules built it (typed objects hash as they
            // always did).
            let hash = rendered_hash(&object);
            let mut object: DynamicObject = match &object {
                Object::Deployment(d) => convert(d),
                Object::Service(s) => convert(s),
                Object::Other(o) => o.clone().into_owned(),
            };
            stamp.on(&mut object.metadata, hash);
            let types = object.types.clone().unwrap_or_default();
            let kind = KindName {
                api_version: types.api_version,
                kind: types.kind,
            };
            let resource = self.resource(&kind, found).await?;
            members.push(Member { resource, object });
        }
        members.sort_by_key(|m| rank(&m.resource.group, &m.resource.kind));
        Ok(members)
    }

    /// `member`'s object of its name as it is on the cluster, if there is one.
    pub(super) async fn read_member(
        &self,
        member: &Member,
    ) -> Result<Option<DynamicObject>, ClusterError> {
        let (kind, name) = (&member.resource.kind, member.name());
        self.requests
            .dynamic(&member.resource)
            .get_opt(&name)
            .await
            .map_err(ClusterError::api(format!("cannot read {kind} {name}")))
    }
}

/// How deploy writes an object that exists, decided from the live object before any write;
/// diff takes the same decision, so the two cannot disagree. The apply of the rendered
/// object always follows.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Update {
    /// Kubernetes' way of handing replicas to an autoscaler: another manager applies the
    /// live count first, so berth's apply without it leaves it alone.
    pub handover: Option<Value>,
    /// The rendered object with the removal of what berth applied before and no longer
    /// does, as one strategic merge patch before the apply (one change: a Deployment
    /// rolls once; the apply then finds nothing to change).
    pub patch: Option<Value>,
}

impl Update {
    /// What deploy's requests leave, as one strategic merge patch (for a dry run, which
    /// cannot chain requests); `None` when the apply alone is what deploy sends.
    pub fn as_one_patch(&self, member: &Member) -> Option<Value> {
        match (&self.patch, &self.handover) {
            (Some(patch), _) => Some(patch.clone()),
            // Without replicas, a strategic merge patch leaves them as they are.
            (None, Some(_)) => Some(serde_json::to_value(&member.object).unwrap_or_default()),
            (None, None) => None,
        }
    }
}

/// How deploy writes `member` over `live`, the object as it is.
pub(super) fn update(member: &Member, live: &DynamicObject) -> Update {
    let handover = hands_over_replicas(member, live).then(|| {
        json!({
            "apiVersion": member.resource.api_version, "kind": member.resource.kind,
            "metadata": {"name": member.name()},
            "spec": {"replicas": live.data["spec"]["replicas"]},
        })
    });
    let patch = dropped(member, live).map(|removals| {
        let object = serde_json::to_value(&member.object).unwrap_or_default();
        with_removals(&object, &removals)
    });
    Update { handover, patch }
}

/// A managed-fields entry of an earlier berth's create: an `Update` by berth, or by
/// `unknown`, the name the API server gives a client that sends neither a field manager nor
/// a user agent, as earlier berth versions did (only looked at on objects with berth's
/// ownership labels).
pub(super) fn created_by_berth(entry: &ManagedFieldsEntry) -> bool {
    entry.operation.as_deref() == Some("Update")
        && matches!(entry.manager.as_deref(), Some(FIELD_MANAGER | "unknown"))
}

/// berth's own `Apply` entry.
pub(super) fn is_berth_apply(entry: &ManagedFieldsEntry) -> bool {
    entry.manager.as_deref() == Some(FIELD_MANAGER) && entry.operation.as_deref() == Some("Apply")
}

/// The fields berth owns in `existing`: those of its apply, and those an earlier berth's
/// create owns.
pub(super) fn berth_fields(existing: &DynamicObject) -> Option<Value> {
    let entries = existing.metadata.managed_fields.as_ref()?;
    let mut fields = None;
    for entry in entries {
        if (is_berth_apply(entry) || created_by_berth(entry))
            && let Some(own) = &entry.fields_v1
        {
            merge(fields.get_or_insert_with(|| json!({})), &own.0);
        }
    }
    fields
}

/// A strategic merge patch removing, whole, what berth applied to `existing` before and
/// `member` no longer has, and no other writer owns too; `None` when nothing was dropped or
/// the kind takes no strategic merge patch (custom resources have no server defaults to
/// leave behind).
fn dropped(member: &Member, existing: &DynamicObject) -> Option<Value> {
    if !strategic(&member.resource.group) {
        return None;
    }
    let object = serde_json::to_value(&member.object).ok()?;
    let mut others = json!({});
    for entry in existing.metadata.managed_fields.iter().flatten() {
        if !is_berth_apply(entry)
            && !created_by_berth(entry)
            && let Some(theirs) = &entry.fields_v1
        {
            merge(&mut others, &theirs.0);
        }
    }
    if hands_over_replicas(member, existing) {
        // The autoscaler's from now on: kept, not removed.
        merge(&mut others, &json!({"f:spec": {"f:replicas": {}}}));
    }
    removals(&berth_fields(existing)?, &others, &object)
}

/// Whether `member` is a Deployment berth now applies without replicas (an autoscaler
/// owns them) while berth owned them until now: left as they are, server-side apply would
/// remove them, and the API server default them to 1.
fn hands_over_replicas(member: &Member, existing: &DynamicObject) -> bool {
    let replicas = |v: &Value| v.get("f:spec").and_then(|s| s.get("f:replicas")).is_some();
    member.resource.group == "apps"
        && member.resource.kind == "Deployment"
        && member.object.data["spec"].get("replicas").is_none()
        && berth_fields(existing).is_some_and(|f| replicas(&f))
}

/// Merge the field set `from` into `into` (both `FieldsV1` tries).
fn merge(into: &mut Value, from: &Value) {
    if let (Value::Object(into), Value::Object(from)) = (into, from) {
        for (key, value) in from {
            merge(into.entry(key.clone()).or_insert_with(|| json!({})), value);
        }
    }
}

/// Refuse an object that does not carry `component`'s ownership labels.
pub(super) fn check_owner(
    existing: &DynamicObject,
    reference: &ObjectRef,
    component: &str,
) -> Result<(), ClusterError> {
    if !is_owned(&existing.metadata, component) {
        return Err(ClusterError::Foreign {
            object: Box::new(reference.clone()),
            component: component.to_owned(),
        });
    }
    Ok(())
}

/// An object without what the API server keeps for itself: managed fields, resource
/// version, generation, status. Two of these are equal when applying changed nothing.
pub(super) fn comparable(object: &DynamicObject) -> Value {
    let mut value = serde_json::to_value(object).unwrap_or_default();
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in ["managedFields", "resourceVersion", "generation"] {
            meta.remove(field);
        }
    }
    if let Some(annotations) = value
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        // The deployment controller's, written after a create or a new template: never
        // berth's change, and it may land between a read and berth's write.
        annotations.remove(REVISION_ANNOTATION);
        if annotations.is_empty() {
            value["metadata"]
                .as_object_mut()
                .map(|meta| meta.remove("annotations"));
        }
    }
    if let Some(object) = value.as_object_mut() {
        object.remove("status");
    }
    value
}

/// Apply order: what others refer to first, what refers to the Deployment last.
pub(super) fn rank(group: &str, kind: &str) -> u8 {
    match (group, kind) {
        ("", "ServiceAccount" | "ConfigMap" | "Secret") => 0,
        ("", "Service") => 1,
        ("apps", "Deployment") => 3,
        ("policy", "PodDisruptionBudget") | ("autoscaling", "HorizontalPodAutoscaler") => 4,
        _ => 2,
    }
}

/// Group-kinds in apply order.
pub(super) fn by_rank<T>(kinds: BTreeMap<GroupKind, T>) -> Vec<(GroupKind, T)> {
    let mut kinds: Vec<(GroupKind, T)> = kinds.into_iter().collect();
    kinds.sort_by_key(|(gk, _)| rank(gk.group(), gk.kind()));
    kinds
}

/// The group-kinds `kinds` in apply order, without payload.
pub(super) fn kinds_by_rank(kinds: BTreeSet<GroupKind>) -> Vec<GroupKind> {
    by_rank(kinds.into_iter().map(|k| (k, ())).collect())
        .into_iter()
        .map(|(k, ())| k)
        .collect()
}

/// A typed object as a dynamic one.
fn convert(object: &impl Serialize) -> DynamicObject {
    // Kubernetes objects always serialize to JSON, and every such object is a
    // DynamicObject.
    serde_json::to_value(object)
        .and_then(serde_json::from_value)
        .unwrap_or_else(|_| DynamicObject::new("", &ApiResource::erase::<ConfigMap>(&())))
}

/// What berth stamps on every object it applies, after the rules ran, so no rules component
/// can leave it out: the ownership labels, the set's part-of label, the hash of the object
/// as rendered and the digest of the rules that rendered it.
struct Stamp<'a> {
    component: &'a str,
    set: String,
    rules: String,
    /// `Component/<name>` when the controller applies.
    controller: Option<&'a str>,
}

impl Stamp<'_> {
    fn on(&self, meta: &mut ObjectMeta, hash: String) {
        let labels = meta.labels.get_or_insert_with(BTreeMap::new);
        labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
        labels.insert(COMPONENT_LABEL.into(), self.component.into());
        labels.insert(PART_OF_LABEL.into(), self.set.clone());
        let annotations = meta.annotations.get_or_insert_with(BTreeMap::new);
        annotations.insert(RENDERED_HASH_ANNOTATION.into(), hash);
        annotations.insert(RULES_DIGEST_ANNOTATION.into(), self.rules.clone());
        if let Some(controller) = self.controller {
            annotations.insert(CONTROLLED_BY_ANNOTATION.into(), controller.into());
        }
    }
}

/// Hash of an object as the rules built it.
fn rendered_hash(object: &impl Serialize) -> String {
    let bytes = serde_json::to_vec(object).unwrap_or_default();
    hex::encode(&Sha256::digest(&bytes)[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Deployment `web` berth applies: `labels`, and `replicas` if some.
    fn member(group: &str, labels: Value, replicas: Option<i64>) -> Member {
        let resource = if group == "apps" {
            ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&())
        } else {
            ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(group, "v1", "Deployment"))
        };
        let mut spec =
            json!({"template": {"spec": {"containers": [{"name": "web", "image": "web:1"}]}}});
        if let Some(replicas) = replicas {
            spec["replicas"] = json!(replicas);
        }
        let object = serde_json::from_value(json!({
            "apiVersion": resource.api_version, "kind": "Deployment",
            "metadata": {"name": "web", "labels": labels}, "spec": spec,
        }))
        .unwrap();
        Member { resource, object }
    }

    /// The live `web`: labels `team` and `tier`, 3 replicas, and who owns which fields.
    fn live(managers: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"team": "a", "tier": "b"},
                         "managedFields": managers},
            "spec": {"replicas": 3,
                     "template": {"spec": {"containers": [{"name": "web", "image": "web:1"}]}}},
        }))
        .unwrap()
    }

    fn entry(manager: &str, operation: &str, fields: Value) -> Value {
        json!({"manager": manager, "operation": operation, "fieldsType": "FieldsV1",
               "fieldsV1": fields})
    }

    fn berth_owns(fields: Value) -> Value {
        entry("berth", "Apply", fields)
    }

    const LABELS: &str = r#"{"f:metadata": {"f:labels": {"f:team": {}, "f:tier": {}}}}"#;

    fn labels_and_replicas() -> Value {
        let mut fields: Value = serde_json::from_str(LABELS).unwrap();
        fields["f:spec"] = json!({"f:replicas": {}});
        fields
    }

    #[test]
    fn an_update_is_decided_from_the_live_object_before_any_write() {
        let both = json!({"team": "a", "tier": "b"});
        let team = json!({"team": "a"});
        // Nothing dropped: the apply alone.
        let plain = update(
            &member("apps", both.clone(), Some(3)),
            &live(json!([berth_owns(labels_and_replicas())])),
        );
        assert_eq!(
            plain,
            Update {
                handover: None,
                patch: None
            }
        );
        assert_eq!(
            plain.as_one_patch(&member("apps", both.clone(), Some(3))),
            None
        );

        // A label berth applied and no longer does: removed in the patch before the apply.
        let dropped = update(
            &member("apps", team.clone(), Some(3)),
            &live(json!([berth_owns(labels_and_replicas())])),
        );
        assert_eq!(dropped.handover, None);
        let patch = dropped.patch.expect("a patch");
        assert_eq!(patch.pointer("/metadata/labels/tier"), Some(&Value::Null));
        assert_eq!(patch.pointer("/metadata/labels/team"), Some(&json!("a")));
        assert_eq!(patch.pointer("/spec/replicas"), Some(&json!(3)));

        // The same label also another writer's: server-side apply removes only berth's part.
        let shared = update(
            &member("apps", team.clone(), Some(3)),
            &live(json!([
                berth_owns(labels_and_replicas()),
                entry(
                    "kubectl-edit",
                    "Update",
                    json!({"f:metadata": {"f:labels": {"f:tier": {}}}})
                ),
            ])),
        );
        assert_eq!(
            shared,
            Update {
                handover: None,
                patch: None
            }
        );

        // An autoscaler appears: berth applied the replicas and renders none now. They are
        // handed over at the live count, not removed (the server would default them to 1).
        let scaled = member("apps", both.clone(), None);
        let handover = update(&scaled, &live(json!([berth_owns(labels_and_replicas())])));
        assert_eq!(
            handover.handover,
            Some(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": "web"}, "spec": {"replicas": 3}}))
        );
        assert_eq!(handover.patch, None);
        // diff's one request: the object without replicas, which a strategic merge keeps.
        let one = handover.as_one_patch(&scaled).expect("one patch");
        assert_eq!(one.pointer("/spec/replicas"), None);

        // Replicas an earlier berth's plain create owned count as berth's too.
        let created = update(
            &scaled,
            &live(json!([entry("unknown", "Update", labels_and_replicas())])),
        );
        assert!(created.handover.is_some());

        // Berth never owned the replicas (another writer set them): nothing to hand over.
        let theirs = update(
            &scaled,
            &live(json!([
                berth_owns(serde_json::from_str(LABELS).unwrap()),
                entry("kubectl", "Update", json!({"f:spec": {"f:replicas": {}}})),
            ])),
        );
        assert_eq!(
            theirs,
            Update {
                handover: None,
                patch: None
            }
        );

        // A custom resource takes no strategic merge patch: the apply alone removes it.
        let custom = update(
            &member("acme.example", team, Some(3)),
            &live(json!([berth_owns(labels_and_replicas())])),
        );
        assert_eq!(
            custom,
            Update {
                handover: None,
                patch: None
            }
        );
    }

    #[test]
    fn field_sets_merge_as_tries() {
        let mut into = json!({"f:metadata": {"f:labels": {"f:app": {}}}});
        merge(
            &mut into,
            &json!({"f:metadata": {"f:labels": {"f:team": {}}}, "f:spec": {"f:replicas": {}}}),
        );
        assert_eq!(
            into,
            json!({"f:metadata": {"f:labels": {"f:app": {}, "f:team": {}}}, "f:spec": {"f:replicas": {}}})
        );
    }

    #[test]
    fn server_kept_fields_do_not_make_a_change() {
        let object = |rv: &str, replicas: i64| -> DynamicObject {
            serde_json::from_value(json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "a", "resourceVersion": rv, "generation": 2,
                             "managedFields": [{"manager": "x"}]},
                "spec": {"replicas": replicas}, "status": {"replicas": rv.len()}
            }))
            .unwrap()
        };
        assert_eq!(comparable(&object("1", 2)), comparable(&object("22", 2)));
        assert_ne!(comparable(&object("1", 2)), comparable(&object("1", 3)));
    }

    #[test]
    fn apply_order_puts_references_first_and_dependents_last() {
        let order = kinds_by_rank(
            [
                "PodDisruptionBudget.policy",
                "Deployment.apps",
                "Service",
                "Certificate.cert-manager.io",
                "ConfigMap",
            ]
            .map(GroupKind::parse)
            .into(),
        );
        let order: Vec<String> = order.iter().map(ToString::to_string).collect();
        assert_eq!(
            order,
            [
                "ConfigMap",
                "Service",
                "Certificate.cert-manager.io",
                "Deployment.apps",
                "PodDisruptionBudget.policy"
            ]
        );
    }
}
