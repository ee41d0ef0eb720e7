//! Removing what berth applied before and no longer applies, whole. Server-side apply
//! removes only the fields berth owned: on Kubernetes 1.20 the defaulted fields under a
//! dropped struct stay, and a dropped probe leaves `readinessProbe: {successThreshold: 1}`,
//! which the API server refuses. So when something was dropped, the rendered object goes
//! as a strategic merge patch that also deletes the top-most dropped fields, taken from
//! berth's own managed-fields set; the apply after it changes nothing.

use serde_json::{Map, Value};

/// API groups whose kinds take strategic merge patches (custom resources do not).
const STRATEGIC_GROUPS: &[&str] = &[
    "",
    "apps",
    "batch",
    "policy",
    "autoscaling",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
];

/// Whether kinds of `group` take strategic merge patches.
pub(super) fn strategic(group: &str) -> bool {
    STRATEGIC_GROUPS.contains(&group)
}

/// A strategic merge patch deleting the fields of `owned` (a `FieldsV1` set berth
/// applied) that `object` (what berth applies now) no longer has and no other writer owns
/// (`others`, their `FieldsV1` sets merged): each top-most such field set to null, each
/// list item gone by its keys (`$patch: delete`); `None` when nothing was dropped.
pub(super) fn removals(owned: &Value, others: &Value, object: &Value) -> Option<Value> {
    let owned = owned.as_object()?;
    let none = Value::Object(Map::new());
    let mut patch = Map::new();
    for (key, below) in owned {
        let Some(field) = key.strip_prefix("f:") else {
            continue;
        };
        let theirs = others.get(key);
        let changes = match object.get(field) {
            // Another writer's too: server-side apply removes only berth's part.
            None | Some(Value::Null) if theirs.is_some() => None,
            None | Some(Value::Null) => Some(Value::Null),
            Some(Value::Array(items)) => list_removals(below, theirs.unwrap_or(&none), items),
            Some(child) => removals(below, theirs.unwrap_or(&none), child),
        };
        if let Some(changes) = changes {
            patch.insert(field.to_owned(), changes);
        }
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
}

/// The changes to a list whose items berth owned by key (`k:{"name":"web"}`).
fn list_removals(owned: &Value, others: &Value, items: &[Value]) -> Option<Value> {
    let none = Value::Object(Map::new());
    let mut changes = Vec::new();
    for (key, below) in owned.as_object()? {
        let Some(keys) = key
            .strip_prefix("k:")
            .and_then(|k| serde_json::from_str::<Map<String, Value>>(k).ok())
        else {
            continue;
        };
        let theirs = others.get(key);
        let mut change = keys.clone();
        match items.iter().find(|item| same_item(&keys, item)) {
            None if theirs.is_some() => continue,
            None => {
                change.insert("$patch".into(), "delete".into());
            }
            Some(item) => match removals(below, theirs.unwrap_or(&none), item) {
                Some(Value::Object(inner)) => change.extend(inner),
                _ => continue,
            },
        }
        changes.push(Value::Object(change));
    }
    (!changes.is_empty()).then_some(Value::Array(changes))
}

/// Whether `item` is the list item of `keys`: every key it gives equal, and a key it
/// leaves out taken as the server's default (a port without `protocol` is the TCP one).
pub(super) fn same_item(keys: &Map<String, Value>, item: &Value) -> bool {
    keys.iter().any(|(k, _)| item.get(k).is_some())
        && keys
            .iter()
            .all(|(k, v)| item.get(k).is_none_or(|given| given == v))
}

/// `patch` (a strategic merge patch of removals) laid over `object`: the object as a
/// strategic merge patch that also removes what berth dropped. List items of the removals
/// merge into the object's item with the same keys.
pub(super) fn with_removals(object: &Value, patch: &Value) -> Value {
    match (object, patch) {
        (Value::Object(object), Value::Object(patch)) => {
            let mut merged = object.clone();
            for (key, change) in patch {
                let value = match merged.get(key) {
                    Some(existing) if !change.is_null() => with_removals(existing, change),
                    _ => change.clone(),
                };
                merged.insert(key.clone(), value);
            }
            Value::Object(merged)
        }
        (Value::Array(items), Value::Array(changes)) => {
            let mut merged = items.clone();
            for change in changes {
                let keys: Vec<(&String, &Value)> = change
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(_, v)| !v.is_object() && !v.is_array() && !v.is_null())
                    .filter(|(k, _)| *k != "$patch")
                    .collect();
                let slot = merged.iter_mut().find(|item| {
                    !keys.is_empty() && keys.iter().all(|(k, v)| item.get(k.as_str()) == Some(v))
                });
                match slot {
                    Some(item) => *item = with_removals(item, change),
                    None => merged.push(change.clone()),
                }
            }
            Value::Array(merged)
        }
        (_, change) => change.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What berth owned of a Deployment with a probed container, an env variable and a
    /// volume.
    fn owned() -> Value {
        json!({"f:metadata": {"f:labels": {"f:app": {}}},
               "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {
                   "f:containers": {"k:{\"name\":\"web\"}": {
                       ".": {}, "f:image": {}, "f:name": {},
                       "f:env": {"k:{\"name\":\"A\"}": {".": {}, "f:name": {}, "f:value": {}},
                                 "k:{\"name\":\"POD_IP\"}": {".": {}, "f:name": {}}},
                       "f:readinessProbe": {".": {}, "f:httpGet": {"f:path": {}}, "f:periodSeconds": {}}}},
                   "f:volumes": {"k:{\"name\":\"data\"}": {".": {}, "f:name": {}}}}}}})
    }

    #[test]
    fn dropped_fields_and_items_are_deleted_whole() {
        let now = json!({"metadata": {"labels": {"app": "web"}},
                         "spec": {"replicas": 2, "template": {"spec": {
                             "containers": [{"name": "web", "image": "web:2",
                                             "env": [{"name": "POD_IP"}]}]}}}});
        let patch = removals(&owned(), &json!({}), &now).expect("something was dropped");
        assert_eq!(
            patch,
            json!({"spec": {"template": {"spec": {
                "containers": [{"name": "web",
                                "env": [{"name": "A", "$patch": "delete"}],
                                "readinessProbe": null}],
                "volumes": null}}}})
        );
    }

    #[test]
    fn nothing_dropped_is_no_patch() {
        let now = json!({"metadata": {"labels": {"app": "web"}},
                         "spec": {"replicas": 2, "template": {"spec": {
                             "containers": [{"name": "web", "image": "web:2",
                                             "env": [{"name": "A", "value": "1"}, {"name": "POD_IP"}],
                                             "readinessProbe": {"httpGet": {"path": "/"}, "periodSeconds": 5}}],
                             "volumes": [{"name": "data"}]}}}});
        assert_eq!(removals(&owned(), &json!({}), &now), None);
    }

    #[test]
    fn what_another_writer_owns_too_is_left_to_server_side_apply() {
        let now = json!({"metadata": {"labels": {"app": "web"}},
                         "spec": {"template": {"spec": {
                             "containers": [{"name": "web", "image": "web:2",
                                             "env": [{"name": "POD_IP"}]}],
                             "volumes": [{"name": "data"}]}}}});
        let others = json!({"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"web\"}": {"f:env": {"k:{\"name\":\"A\"}": {"f:value": {}}}}}}}}});
        let patch = removals(&owned(), &others, &now).expect("the probe was dropped");
        assert_eq!(
            patch,
            json!({"spec": {"template": {"spec": {
                "containers": [{"name": "web", "readinessProbe": null}]}}}})
        );
    }

    #[test]
    fn a_key_left_to_its_default_still_names_the_item() {
        let owned =
            json!({"f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}}}});
        assert_eq!(
            removals(
                &owned,
                &json!({}),
                &json!({"ports": [{"containerPort": 80}]})
            ),
            None
        );
        assert_eq!(
            removals(
                &owned,
                &json!({}),
                &json!({"ports": [{"containerPort": 81}]})
            ),
            Some(json!({"ports": [{"containerPort": 80, "protocol": "TCP", "$patch": "delete"}]}))
        );
    }

    #[test]
    fn removals_merge_into_the_object_by_list_keys() {
        let object = json!({"spec": {"containers": [{"name": "web", "image": "web:2"}]}});
        let patch = json!({"spec": {"containers": [
            {"name": "web", "readinessProbe": null},
            {"name": "old", "$patch": "delete"}]}});
        assert_eq!(
            with_removals(&object, &patch),
            json!({"spec": {"containers": [
                {"name": "web", "image": "web:2", "readinessProbe": null},
                {"name": "old", "$patch": "delete"}]}})
        );
    }
}
