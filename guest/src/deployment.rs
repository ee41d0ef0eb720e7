//! The Deployment: pod template, selector and replicas.

use crate::labels::Labels;
use crate::model::{
    Container, Deployment, DeploymentSpec, LabelSelector, LocalObjectReference, ObjectMeta,
    PodSpec, PodTemplate, TemplateMeta, Volume,
};

/// What goes into the Deployment besides its containers' contents.
#[derive(Debug)]
pub struct DeploymentParts<'a> {
    pub name: String,
    pub namespace: &'a str,
    pub hostname: &'a str,
    pub replicas: i32,
    /// Labels of the Deployment object.
    pub labels: Labels,
    /// Labels of the pods; the selector is `selector_keys` of these.
    pub pod_labels: Labels,
    pub selector_keys: &'a [&'a str],
    pub containers: Vec<Container>,
    pub init_containers: Vec<Container>,
    pub volumes: Vec<Volume>,
    pub pull_secrets: &'a [String],
}

/// Build the `apps/v1` Deployment.
pub fn deployment(parts: DeploymentParts<'_>) -> Deployment {
    let match_labels = parts
        .pod_labels
        .iter()
        .filter(|(k, _)| parts.selector_keys.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Deployment {
        api_version: "apps/v1",
        kind: "Deployment",
        metadata: ObjectMeta {
            name: parts.name,
            namespace: parts.namespace.to_owned(),
            labels: parts.labels,
            annotations: Labels::new(),
        },
        spec: DeploymentSpec {
            replicas: parts.replicas,
            selector: LabelSelector { match_labels },
            template: PodTemplate {
                metadata: TemplateMeta {
                    labels: parts.pod_labels,
                },
                spec: PodSpec {
                    hostname: parts.hostname.to_owned(),
                    containers: parts.containers,
                    init_containers: parts.init_containers,
                    volumes: parts.volumes,
                    image_pull_secrets: parts
                        .pull_secrets
                        .iter()
                        .map(|name| LocalObjectReference { name: name.clone() })
                        .collect(),
                },
            },
        },
    }
}
