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
