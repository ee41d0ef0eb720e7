//! Checking what a rules component returned: every object parsed into the Kubernetes
//! types berth operates on, in the target namespace, one Deployment and its Services.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use serde::Serialize;

use crate::runtime::{Source, wit};

/// The objects of one component, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The component's Deployment.
    pub deployment: Deployment,
    /// Its Services, in the order the rules returned them.
    pub services: Vec<Service>,
}

/// An object the host refuses, naming the rules component and the object.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: returned {object}: {problem}")]
pub struct InvalidObject {
    /// The rules component.
    pub source_name: Source,
    /// `Kind/name` of the object, or `output` for the set as a whole.
    pub object: String,
    /// What is wrong.
    pub problem: String,
}

impl Rendered {
    /// Check the objects returned for `namespace`.
    pub fn from_objects(
        source: &Source,
        objects: Vec<wit::K8sObject>,
        namespace: &str,
    ) -> Result<Self, InvalidObject> {
        let refuse = |object: String, problem: String| InvalidObject {
            source_name: source.clone(),
            object,
            problem,
        };
        let mut deployments = Vec::new();
        let mut services = Vec::new();
        for obj in objects {
            let label = format!("{} {}/{}", obj.api_version, obj.kind, obj.name);
            match (obj.api_version.as_str(), obj.kind.as_str()) {
                ("apps/v1", "Deployment") => {
                    let mut d: Deployment = serde_json::from_str(&obj.json).map_err(|e| {
                        refuse(label.clone(), format!("not a valid Deployment: {e}"))
                    })?;
                    place(&mut d.metadata, &obj.name, namespace).map_err(|p| refuse(label, p))?;
                    deployments.push(d);
                }
                ("v1", "Service") => {
                    let mut s: Service = serde_json::from_str(&obj.json)
                        .map_err(|e| refuse(label.clone(), format!("not a valid Service: {e}")))?;
                    place(&mut s.metadata, &obj.name, namespace).map_err(|p| refuse(label, p))?;
                    services.push(s);
                }
                _ => {
                    return Err(refuse(
                        label,
                        "berth accepts only apps/v1 Deployments and v1 Services".into(),
                    ));
                }
            }
        }
        let deployment = match <[Deployment; 1]>::try_from(deployments) {
            Ok([d]) => d,
            Err(found) => {
                return Err(refuse(
                    "output".into(),
                    format!("{} Deployments; exactly one is required", found.len()),
                ));
            }
        };
        Ok(Self {
            deployment,
            services,
        })
    }

    /// Every object as a JSON value, Deployment first.
    pub fn to_values(&self) -> Vec<serde_json::Value> {
        std::iter::once(value(&self.deployment))
            .chain(self.services.iter().map(value))
            .collect()
    }
}

/// Check the object's name and set its namespace to the target.
fn place(
    meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    declared: &str,
    namespace: &str,
) -> Result<(), String> {
    if meta.name.as_deref() != Some(declared) {
        return Err(format!(
            "metadata.name {:?} differs from the declared name",
            meta.name
        ));
    }
    match meta.namespace.as_deref() {
        None | Some("") => meta.namespace = Some(namespace.to_owned()),
        Some(ns) if ns == namespace => {}
        Some(ns) => {
            return Err(format!(
                "namespace {ns:?} is not the target namespace {namespace:?}"
            ));
        }
    }
    Ok(())
}

fn value(object: &impl Serialize) -> serde_json::Value {
    // k8s-openapi types always serialize to JSON.
    serde_json::to_value(object).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(api_version: &str, kind: &str, name: &str, json: serde_json::Value) -> wit::K8sObject {
        wit::K8sObject {
            api_version: api_version.into(),
            kind: kind.into(),
            name: name.into(),
            json: json.to_string(),
        }
    }

    fn deployment(name: &str, namespace: Option<&str>) -> wit::K8sObject {
        let mut json = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}});
        if let Some(ns) = namespace {
            json["metadata"]["namespace"] = ns.into();
        }
        obj("apps/v1", "Deployment", name, json)
    }

    fn check(objects: Vec<wit::K8sObject>) -> Result<Rendered, String> {
        Rendered::from_objects(&Source::Default, objects, "team").map_err(|e| e.to_string())
    }

    #[test]
    fn namespace_is_set_when_empty_and_kept_when_target() {
        let r = check(vec![deployment("dep-a", None)]).unwrap();
        assert_eq!(r.deployment.metadata.namespace.as_deref(), Some("team"));
        assert!(check(vec![deployment("dep-a", Some("team"))]).is_ok());
    }

    #[test]
    fn refusals_name_rules_and_object() {
        let err = check(vec![deployment("dep-a", Some("kube-system"))]).unwrap_err();
        assert_eq!(
            err,
            "default rules: returned apps/v1 Deployment/dep-a: namespace \"kube-system\" is not the target namespace \"team\""
        );
        let err = check(vec![deployment("dep-a", None), deployment("dep-b", None)]).unwrap_err();
        assert_eq!(
            err,
            "default rules: returned output: 2 Deployments; exactly one is required"
        );
        let err = check(vec![]).unwrap_err();
        assert!(
            err.ends_with("0 Deployments; exactly one is required"),
            "{err}"
        );
        let binding = obj(
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            "root",
            serde_json::json!({}),
        );
        let err = check(vec![deployment("dep-a", None), binding]).unwrap_err();
        assert!(
            err.contains(
                "ClusterRoleBinding/root: berth accepts only apps/v1 Deployments and v1 Services"
            ),
            "{err}"
        );
        let err = check(vec![obj(
            "apps/v1",
            "Deployment",
            "dep-a",
            serde_json::json!({"kind": "Service"}),
        )])
        .unwrap_err();
        assert!(err.contains("not a valid Deployment"), "{err}");
        let err = check(vec![deployment("dep-a", None), obj("v1", "Service", "svc", serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "other"}}))]).unwrap_err();
        assert!(
            err.contains(
                "v1 Service/svc: metadata.name Some(\"other\") differs from the declared name"
            ),
            "{err}"
        );
    }
}
