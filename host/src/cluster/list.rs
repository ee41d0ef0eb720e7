//! `list`: every component berth manages in a namespace or in all of them, from one list
//! request of Deployments (the one workload each component has), whatever their number.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams};
use serde::Serialize;

use super::request::CONTROLLED_BY_ANNOTATION;
use super::request::REVISION_ANNOTATION;
use super::rollout::images_of;
use super::{COMPONENT_LABEL, Cluster, ClusterError, MANAGED_BY, MANAGED_BY_LABEL};
use super::{RULES_DIGEST_ANNOTATION, name_of};

/// Where to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The cluster's namespace.
    Namespace,
    /// Every namespace.
    AllNamespaces,
}

/// One component, as `list` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ComponentSummary {
    /// The namespace.
    pub namespace: String,
    /// The component's name.
    pub name: String,
    /// The Deployment's name.
    pub deployment: String,
    /// Ready pods.
    pub ready: i32,
    /// Pods wanted.
    pub desired: i32,
    /// Images of the pod template's containers.
    pub images: Vec<String>,
    /// The deployment controller's revision.
    pub revision: Option<String>,
    /// `sha256:<hex>` of the rules component that built it, if deployed by a berth that
    /// records it.
    pub rules_digest: Option<String>,
    /// Who keeps it: `cli` (whoever runs berth), or the controller's `Component/<name>`.
    pub managed_by: String,
    /// When the Deployment was created (RFC 3339).
    pub created: Option<String>,
    /// Seconds since then.
    pub age_seconds: Option<i64>,
}

impl Cluster {
    /// The components berth manages in `scope`, whose Deployments also match `selector`
    /// (label-selector syntax, e.g. `team=payments`), sorted by namespace and name. One
    /// list request.
    pub async fn list(
        &self,
        scope: Scope,
        selector: Option<&str>,
    ) -> Result<Vec<ComponentSummary>, ClusterError> {
        let api: Api<Deployment> = match scope {
            Scope::Namespace => self.requests.typed(),
            Scope::AllNamespaces => Api::all(self.client().clone()),
        };
        let mut labels = format!("{MANAGED_BY_LABEL}={MANAGED_BY},{COMPONENT_LABEL}");
        if let Some(selector) = selector.filter(|s| !s.trim().is_empty()) {
            labels = format!("{labels},{selector}");
        }
        let where_ = match scope {
            Scope::Namespace => format!("in namespace {}", self.namespace()),
            Scope::AllNamespaces => "in any namespace".to_owned(),
        };
        let deployments = api
            .list(&ListParams::default().labels(&labels))
            .await
            .map_err(ClusterError::api(format!(
                "cannot list Deployments {where_}"
            )))?;
        let now = Timestamp::now();
        let mut components: Vec<ComponentSummary> =
            deployments.items.iter().map(|d| summary(d, now)).collect();
        components.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        Ok(components)
    }
}

fn summary(d: &Deployment, now: Timestamp) -> ComponentSummary {
    let meta = &d.metadata;
    let annotation = |key: &str| meta.annotations.as_ref().and_then(|a| a.get(key)).cloned();
    let created = meta.creation_timestamp.as_ref().map(|t| t.0);
    ComponentSummary {
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta
            .labels
            .as_ref()
            .and_then(|l| l.get(COMPONENT_LABEL))
            .cloned()
            .unwrap_or_default(),
        deployment: name_of(meta),
        ready: d
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0),
        desired: d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
        images: images_of(d),
        revision: annotation(REVISION_ANNOTATION),
        rules_digest: annotation(RULES_DIGEST_ANNOTATION),
        managed_by: annotation(CONTROLLED_BY_ANNOTATION).unwrap_or_else(|| "cli".to_owned()),
        created: created.map(|t| t.to_string()),
        age_seconds: created.map(|t| now.as_second() - t.as_second()),
    }
}
