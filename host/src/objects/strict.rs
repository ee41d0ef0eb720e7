//! Parsing objects of the kinds berth's Kubernetes types know, refusing any field those
//! types do not have.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Problem;

/// Parse `json` into a Kubernetes type, refusing fields the type does not know: serde
/// would drop them without a word, and the object applied would not be the one built.
pub(super) fn parse<T: DeserializeOwned + Serialize>(
    json: &str,
    kind: &'static str,
) -> Result<T, Problem> {
    // One typed pass that notes any field the type skips: what valid objects take. Only
    // when it fails or skips something does the slower pass below run, for the error's
    // field path and its rule that an unknown field set to null is absent, not unknown.
    let mut skipped = false;
    let mut de = serde_json::Deserializer::from_str(json);
    let parsed = serde_ignored::deserialize(&mut de, |_| skipped = true).and_then(|parsed| {
        de.end()?;
        Ok(parsed)
    });
    match parsed {
        Ok(parsed) if !skipped => Ok(parsed),
        _ => parse_with_paths(json, kind),
    }
}

/// [`parse`] through a JSON tree: slower, but it names the field at fault.
pub(super) fn parse_with_paths<T: DeserializeOwned + Serialize>(
    json: &str,
    kind: &'static str,
) -> Result<T, Problem> {
    let malformed = |message: String| Problem::Malformed {
        kind: kind.to_owned(),
        message,
    };
    let original: Value = serde_json::from_str(json).map_err(|e| malformed(e.to_string()))?;
    let parsed: T = serde_path_to_error::deserialize(&original).map_err(|e| {
        let path = e.path().to_string();
        malformed(format!("{path}: {}", e.into_inner()))
    })?;
    if let Some(path) = unknown_field(&original, &value(&parsed), String::new()) {
        return Err(Problem::UnknownField { kind, path });
    }
    Ok(parsed)
}

/// The first field of `original` that is missing from `known` (the object parsed and
/// serialized again), as a path like `spec.template.spec.containers[0].privileged`.
/// Nulls are skipped: they mean "absent" to Kubernetes too.
fn unknown_field(original: &Value, known: &Value, path: String) -> Option<String> {
    match (original, known) {
        (Value::Object(fields), Value::Object(known_fields)) => {
            fields.iter().find_map(|(key, value)| {
                let field = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match known_fields.get(key) {
                    _ if value.is_null() => None,
                    None => Some(field),
                    Some(known) => unknown_field(value, known, field),
                }
            })
        }
        (Value::Array(items), Value::Array(known_items)) => items
            .iter()
            .zip(known_items)
            .enumerate()
            .find_map(|(i, (item, known))| unknown_field(item, known, format!("{path}[{i}]"))),
        _ => None,
    }
}

pub(super) fn value(object: &impl Serialize) -> serde_json::Value {
    // k8s-openapi types always serialize to JSON.
    serde_json::to_value(object).unwrap_or_default()
}

/// Parse `json`, an object of `api_version` and `kind`, strictly when berth's Kubernetes
/// types know that kind at that version; `None` when they do not.
pub(super) fn known(api_version: &str, kind: &str, json: &str) -> Option<Result<Value, Problem>> {
    KNOWN
        .iter()
        .find(|k| k.api_version == api_version && k.kind == kind)
        .map(|k| (k.parse)(json))
}

/// A namespaced kind berth's Kubernetes types know, and its strict parser.
struct Known {
    api_version: &'static str,
    kind: &'static str,
    parse: fn(&str) -> Result<Value, Problem>,
}

macro_rules! known {
    ($($t:ty),* $(,)?) => {
        /// Every namespaced kind berth may be given besides the Deployment and Services;
        /// the compiler checks each is namespaced.
        const KNOWN: &[Known] = &[$(
            {
                const fn scope<T: k8s_openapi::Resource<Scope = k8s_openapi::NamespaceResourceScope>>() {}
                scope::<$t>();
                Known {
                    api_version: <$t as k8s_openapi::Resource>::API_VERSION,
                    kind: <$t as k8s_openapi::Resource>::KIND,
                    parse: |json| {
                        parse::<$t>(json, <$t as k8s_openapi::Resource>::KIND).map(|o| value(&o))
                    },
                }
            }
        ),*];
    };
}

use k8s_openapi::api as k;

known!(
    k::core::v1::ConfigMap,
    k::core::v1::Secret,
    k::core::v1::ServiceAccount,
    k::core::v1::PersistentVolumeClaim,
    k::core::v1::LimitRange,
    k::core::v1::ResourceQuota,
    k::core::v1::Endpoints,
    k::core::v1::Pod,
    k::core::v1::PodTemplate,
    k::core::v1::ReplicationController,
    k::apps::v1::StatefulSet,
    k::apps::v1::DaemonSet,
    k::apps::v1::ReplicaSet,
    k::batch::v1::Job,
    k::batch::v1::CronJob,
    k::policy::v1::PodDisruptionBudget,
    k::autoscaling::v1::HorizontalPodAutoscaler,
    k::autoscaling::v2::HorizontalPodAutoscaler,
    k::networking::v1::NetworkPolicy,
    k::networking::v1::Ingress,
    k::rbac::v1::Role,
    k::rbac::v1::RoleBinding,
    k::coordination::v1::Lease,
    k::discovery::v1::EndpointSlice,
);
