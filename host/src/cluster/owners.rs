//! Which fields berth's apply took from other field managers, read from an object's
//! managed fields before and after: what deploy reports as taken over.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::api::DynamicObject;
use serde::Serialize;
use serde_json::Value;

use super::FIELD_MANAGER;

/// Fields of an object that another field manager owned and berth's apply took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TakenOver {
    /// The manager that owned them (`kubectl-edit`, `hotfix`, …).
    pub manager: String,
    /// Their paths, `spec.template.spec.containers[name=web].image`.
    pub fields: Vec<String>,
}

/// The fields each other manager owned in `before` that berth's apply owns in `after` and
/// that manager no longer does: taken, not shared (a manager that applied the same value
/// keeps co-owning it). Managers of berth's own (its earlier creates, the replica
/// hand-over) and status writers are not others.
pub fn taken_over(
    before: &DynamicObject,
    after: &DynamicObject,
    ours: impl Fn(&ManagedFieldsEntry) -> bool,
) -> Vec<TakenOver> {
    let Some(berth) = fields_of(after, |e| {
        e.manager.as_deref() == Some(FIELD_MANAGER) && e.operation.as_deref() == Some("Apply")
    }) else {
        return Vec::new();
    };
    let others = |o: &DynamicObject| -> BTreeMap<String, BTreeSet<String>> {
        let mut by_manager: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for entry in o.metadata.managed_fields.iter().flatten() {
            let status = entry.subresource.as_deref().is_some_and(|s| !s.is_empty());
            if ours(entry) || status || entry.manager.as_deref() == Some(FIELD_MANAGER) {
                continue;
            }
            let manager = entry.manager.clone().unwrap_or_default();
            let paths = entry.fields_v1.as_ref().map(|f| paths(&f.0));
            by_manager
                .entry(manager)
                .or_default()
                .extend(paths.into_iter().flatten());
        }
        by_manager
    };
    let (was, still) = (others(before), others(after));
    was.into_iter()
        .filter_map(|(manager, owned)| {
            let kept = still.get(&manager);
            let fields: Vec<String> = owned
                .into_iter()
                .filter(|p| berth.contains(p) && !kept.is_some_and(|k| k.contains(p)))
                .collect();
            // The deepest paths only: `…containers[name=web].image`, not the element too.
            let leaves: Vec<String> = (fields.iter())
                .filter(|p| {
                    !fields.iter().any(|q| {
                        q.len() > p.len()
                            && q.starts_with(p.as_str())
                            && matches!(q.as_bytes()[p.len()], b'.' | b'[')
                    })
                })
                .cloned()
                .collect();
            (!leaves.is_empty()).then_some(TakenOver {
                manager,
                fields: leaves,
            })
        })
        .collect()
}

/// The fields of `rendered` (the object as berth applies it) that another manager owns in
/// `live` and berth's apply does not: drift, which berth's next apply takes back. Shared
/// fields (another manager applied berth's value) are not drift. Managers of berth's own
/// (`ours`) and status writers are not others. Reads nothing but its arguments.
pub(super) fn drifted(
    live: &DynamicObject,
    rendered: &Value,
    ours: impl Fn(&ManagedFieldsEntry) -> bool,
) -> Vec<TakenOver> {
    let berth = fields_of(live, |e| {
        e.manager.as_deref() == Some(FIELD_MANAGER) && e.operation.as_deref() == Some("Apply")
    })
    .unwrap_or_default();
    let mut by_manager: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in live.metadata.managed_fields.iter().flatten() {
        let status = entry.subresource.as_deref().is_some_and(|s| !s.is_empty());
        if ours(entry) || status || entry.manager.as_deref() == Some(FIELD_MANAGER) {
            continue;
        }
        let Some(fields) = &entry.fields_v1 else {
            continue;
        };
        let mut found = BTreeSet::new();
        walk(&fields.0, Some(rendered), String::new(), &mut found);
        found.retain(|p| !berth.contains(p));
        if !found.is_empty() {
            let manager = entry.manager.clone().unwrap_or_default();
            by_manager.entry(manager).or_default().extend(found);
        }
    }
    by_manager
        .into_iter()
        .map(|(manager, fields)| TakenOver {
            manager,
            fields: fields.into_iter().collect(),
        })
        .collect()
}

/// The leaf paths under `node` (a `fieldsV1` set) into `out`; with a `value` (the rendered
/// object), only where it has the field too.
fn walk(node: &Value, value: Option<&Value>, path: String, out: &mut BTreeSet<String>) {
    let children = node.as_object().filter(|m| !m.is_empty());
    let Some(children) = children else {
        if !path.is_empty() {
            out.insert(path);
        }
        return;
    };
    for (key, child) in children {
        if key == "." {
            out.insert(path.clone());
            continue;
        }
        let (step, below) = match key.split_at(key.find(':').map_or(0, |i| i + 1)) {
            ("f:", name) => {
                let step = if path.is_empty() {
                    name.to_owned()
                } else {
                    format!(".{name}")
                };
                (step, value.map(|v| v.get(name)))
            }
            ("k:", keys) => {
                let wanted: serde_json::Map<String, Value> =
                    serde_json::from_str(keys).unwrap_or_default();
                let item = value.map(|v| {
                    v.as_array().and_then(|items| {
                        items.iter().find(|i| {
                            wanted
                                .iter()
                                .all(|(k, v)| i.get(k).or_else(|| defaulted(k)) == Some(v))
                        })
                    })
                });
                (format!("[{}]", key_fields(keys)), item)
            }
            ("v:", set) => {
                let wanted: Option<Value> = serde_json::from_str(set).ok();
                let item = value.map(|v| {
                    v.as_array()
                        .and_then(|items| items.iter().find(|i| Some(*i) == wanted.as_ref()))
                });
                (format!("[={set}]"), item)
            }
            ("i:", index) => {
                let item = value.map(|v| {
                    index
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| v.as_array()?.get(i))
                });
                (format!("[{index}]"), item)
            }
            _ => (format!(".{key}"), value.map(|_| None)),
        };
        match below {
            // Everything, or only what `value` has.
            None => walk(child, None, format!("{path}{step}"), out),
            Some(Some(below)) => walk(child, Some(below), format!("{path}{step}"), out),
            Some(None) => {}
        }
    }
}

/// The value the API server gives a list item's key field left out: a port's `protocol`
/// (Service and container ports are keyed by port and protocol; rules seldom say TCP).
fn defaulted(key: &str) -> Option<&'static Value> {
    static TCP: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| Value::from("TCP"));
    (key == "protocol").then(|| &*TCP)
}

/// Every field path of the first entry `which` picks.
fn fields_of(
    object: &DynamicObject,
    which: impl Fn(&ManagedFieldsEntry) -> bool,
) -> Option<BTreeSet<String>> {
    let entry = object
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .find(|e| which(e))?;
    Some(paths(&entry.fields_v1.as_ref()?.0))
}

/// The leaf paths of a `fieldsV1` set: `f:spec` → `spec`, `k:{"name":"web"}` →
/// `[name=web]`, `v:"x"` → `[="x"]`, `i:0` → `[0]`; a `.` key marks its node as a field.
fn paths(fields: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    walk(fields, None, String::new(), &mut out);
    out
}

/// `{"containerPort":80,"protocol":"TCP"}` as `containerPort=80,protocol=TCP`.
fn key_fields(keys: &str) -> String {
    match serde_json::from_str::<serde_json::Map<String, Value>>(keys) {
        Ok(map) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(","),
        Err(_) => keys.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(entries: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "dep-web", "managedFields": entries},
        }))
        .unwrap()
    }

    fn entry(manager: &str, operation: &str, fields: Value) -> Value {
        json!({"manager": manager, "operation": operation, "apiVersion": "apps/v1",
               "fieldsType": "FieldsV1", "fieldsV1": fields})
    }

    #[test]
    fn fields_another_manager_lost_to_berth_are_reported_and_shared_ones_are_not() {
        let image = json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"web\"}": {".": {}, "f:image": {}}}}}}});
        let replicas = json!({"f:spec": {"f:replicas": {}}});
        let both = json!({"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"web\"}": {".": {}, "f:image": {}}}}}}});
        let before = object(json!([
            entry("hotfix", "Update", image.clone()),
            entry("scaler", "Apply", replicas.clone()),
            entry(
                "berth",
                "Apply",
                json!({"f:metadata": {"f:labels": {"f:app": {}}}})
            ),
        ]));
        // After: berth owns both; the scaler applied the same count and still co-owns it.
        let after = object(json!([
            entry("scaler", "Apply", replicas),
            entry("berth", "Apply", both),
        ]));
        let taken = taken_over(&before, &after, |_| false);
        assert_eq!(
            taken,
            [TakenOver {
                manager: "hotfix".into(),
                fields: vec!["spec.template.spec.containers[name=web].image".into()],
            }]
        );
        // Berth's own earlier managers are not "another".
        assert!(taken_over(&before, &after, |e| e.manager.as_deref() == Some("hotfix")).is_empty());
    }

    #[test]
    fn drift_is_a_rendered_field_another_manager_took_and_berth_no_longer_owns() {
        let rendered = json!({"metadata": {"labels": {"app": "web"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "web", "image": "web:1"}]}}}});
        let image = json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"web\"}": {"f:image": {}}}}}}});
        let berth_all = json!({"f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"web\"}": {".": {}, "f:name": {}, "f:image": {}}}}}}});
        let berth_without_image = json!({"f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"web\"}": {".": {}, "f:name": {}}}}}}});
        // kubectl edit changed the image: berth lost it.
        let edited = object(json!([
            entry("berth", "Apply", berth_without_image.clone()),
            entry("kubectl-edit", "Update", image.clone()),
        ]));
        assert_eq!(
            drifted(&edited, &rendered, |_| false),
            [TakenOver {
                manager: "kubectl-edit".into(),
                fields: vec!["spec.template.spec.containers[name=web].image".into()],
            }]
        );
        // Another manager applied berth's own value: shared, not drift.
        let shared = object(json!([
            entry("berth", "Apply", berth_all),
            entry("other", "Apply", image),
        ]));
        assert!(drifted(&shared, &rendered, |_| false).is_empty());
        // A field berth does not render (an annotation, another container): not drift.
        let beside = object(json!([
            entry("berth", "Apply", berth_without_image),
            entry(
                "other",
                "Update",
                json!({"f:metadata": {"f:annotations": {"f:note": {}}},
                "f:spec": {"f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"debug\"}": {".": {}, "f:image": {}}}}}}})
            ),
        ]));
        assert!(drifted(&beside, &rendered, |_| false).is_empty());
    }

    #[test]
    fn drift_in_a_port_keyed_by_a_defaulted_protocol_is_found() {
        // The rules leave `protocol` out; the server keys the port with TCP.
        let rendered = json!({"spec": {"ports": [{"name": "http", "port": 8080}]}});
        let key = |protocol: &str| format!("k:{{\"port\":8080,\"protocol\":\"{protocol}\"}}");
        let named =
            |protocol: &str| json!({"f:spec": {"f:ports": {key(protocol): {"f:name": {}}}}});
        let berth = json!({"f:spec": {"f:ports": {key("TCP"): {".": {}, "f:port": {}}}}});
        let taken = object(json!([
            entry("berth", "Apply", berth.clone()),
            entry("kubectl-patch", "Update", named("TCP")),
        ]));
        assert_eq!(
            drifted(&taken, &rendered, |_| false),
            [TakenOver {
                manager: "kubectl-patch".into(),
                fields: vec!["spec.ports[port=8080,protocol=TCP].name".into()],
            }]
        );
        // The name of a UDP port of that number is not one berth renders.
        let udp = object(json!([
            entry("berth", "Apply", berth),
            entry("kubectl-patch", "Update", named("UDP")),
        ]));
        assert!(drifted(&udp, &rendered, |_| false).is_empty());
    }
}
