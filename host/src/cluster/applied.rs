//! The part of a live object that berth applied, read through its managed fields: what an
//! undo makes again of an object a deploy pruned, so the server's own fields (a Service's
//! cluster IP) are allocated anew rather than claimed by berth's create.

use serde_json::{Map, Value};

use super::removal::same_item;

/// `object` cut down to the fields of `fields` (a `FieldsV1` set): a field whose set is
/// empty (or only `.`) whole, a struct field by field, a list item by its keys (`k:`) or
/// its value (`v:`), in the list's order.
pub(super) fn pick(object: &Value, fields: &Value) -> Value {
    let Some(fields) = fields.as_object().filter(|f| f.keys().any(|k| k != ".")) else {
        return object.clone();
    };
    match object {
        Value::Object(map) => {
            let mut picked = Map::new();
            for (key, below) in fields {
                if let Some(name) = key.strip_prefix("f:")
                    && let Some(value) = map.get(name)
                {
                    picked.insert(name.to_owned(), pick(value, below));
                }
            }
            Value::Object(picked)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter_map(|item| {
                    fields.iter().find_map(|(key, below)| {
                        if let Some(keys) = key.strip_prefix("k:") {
                            let keys: Map<String, Value> = serde_json::from_str(keys).ok()?;
                            same_item(&keys, item).then(|| pick(item, below))
                        } else {
                            let value: Value =
                                serde_json::from_str(key.strip_prefix("v:")?).ok()?;
                            (value == *item).then(|| item.clone())
                        }
                    })
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_service_without_what_the_server_allocated() {
        let live = json!({
            "metadata": {"name": "web", "labels": {"app": "web", "other": "x"}},
            "spec": {
                "clusterIP": "10.0.0.7", "clusterIPs": ["10.0.0.7"], "type": "NodePort",
                "selector": {"app": "web"},
                "ports": [
                    {"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080, "targetPort": 8080},
                    {"name": "metrics", "port": 9090, "protocol": "TCP", "nodePort": 31000, "targetPort": 9090}
                ]
            },
            "status": {"loadBalancer": {}}
        });
        // What berth sent: the label app, the selector, type, the http port with its node port.
        let berth = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:type": {}, "f:selector": {".": {}, "f:app": {}},
                "f:ports": {".": {}, "k:{\"port\":80,\"protocol\":\"TCP\"}": {
                    ".": {}, "f:name": {}, "f:port": {}, "f:nodePort": {}, "f:targetPort": {}}}
            }
        });
        assert_eq!(
            pick(&live, &berth),
            json!({
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "type": "NodePort", "selector": {"app": "web"},
                    "ports": [{"name": "http", "port": 80, "nodePort": 30080, "targetPort": 8080}]
                }
            })
        );
    }

    #[test]
    fn set_items_by_value_and_leaves_whole() {
        let live = json!({"metadata": {"finalizers": ["a", "b"]}, "data": {"k": "v"}});
        let fields =
            json!({"f:metadata": {"f:finalizers": {".": {}, "v:\"b\"": {}}}, "f:data": {}});
        assert_eq!(
            pick(&live, &fields),
            json!({"metadata": {"finalizers": ["b"]}, "data": {"k": "v"}})
        );
    }
}
