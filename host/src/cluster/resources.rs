//! Where each kind lives on the cluster: its resource name and scope, from discovery for
//! any kind beyond the few every cluster serves, asked once per API version in a call.

use std::collections::HashMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use kube::api::ApiResource;
use kube::core::GroupVersion;
use kube::discovery::{self, ApiGroup, Scope};

use super::request::GroupKind;
use super::{Cluster, ClusterError};
use crate::kinds::{KindName, group_of};

/// The API resources found so far in one call.
#[derive(Default)]
pub(super) struct Resources {
    /// By `apiVersion`: what discovery said that version serves (`None`: not served).
    versions: HashMap<String, Option<ApiGroup>>,
    /// By group: the group, all of its versions (`None`: not served).
    groups: HashMap<String, Option<ApiGroup>>,
}

/// Kinds served at these versions by every cluster berth supports: no discovery needed.
fn builtin(api_version: &str, kind: &str) -> Option<ApiResource> {
    let erase = |r: ApiResource| (r.api_version == api_version && r.kind == kind).then_some(r);
    [
        ApiResource::erase::<Deployment>(&()),
        ApiResource::erase::<Service>(&()),
        ApiResource::erase::<ConfigMap>(&()),
        ApiResource::erase::<Secret>(&()),
        ApiResource::erase::<ServiceAccount>(&()),
    ]
    .into_iter()
    .find_map(erase)
}

impl Cluster {
    /// The resource of `kind` at exactly its `apiVersion`; refused when the cluster does not
    /// serve it or serves it cluster-scoped.
    pub(super) async fn resource(
        &self,
        kind: &KindName,
        found: &mut Resources,
    ) -> Result<ApiResource, ClusterError> {
        if let Some(resource) = builtin(&kind.api_version, &kind.kind) {
            return Ok(resource);
        }
        if !found.versions.contains_key(&kind.api_version) {
            let gv: GroupVersion = kind
                .api_version
                .parse()
                .map_err(|_| ClusterError::NotServed { kind: kind.clone() })?;
            let group = match discovery::pinned_group(self.client(), &gv).await {
                Ok(group) => Some(group),
                Err(error) if not_served(&error) => None,
                Err(error) => {
                    return Err(ClusterError::Api {
                        action: format!("cannot discover the resources of {}", kind.api_version),
                        error,
                    });
                }
            };
            found.versions.insert(kind.api_version.clone(), group);
        }
        let version = kind.api_version.rsplit('/').next().unwrap_or_default();
        let (resource, caps) = found.versions[&kind.api_version]
            .as_ref()
            .and_then(|group| {
                group
                    .versioned_resources(version)
                    .into_iter()
                    .find(|(r, _)| r.kind == kind.kind)
            })
            .ok_or_else(|| ClusterError::NotServed { kind: kind.clone() })?;
        if caps.scope == Scope::Cluster {
            return Err(ClusterError::ClusterScoped { kind: kind.clone() });
        }
        Ok(resource)
    }

    /// A resource of the group-kind `group_kind` (`PodDisruptionBudget.policy`) at the
    /// version the cluster prefers, to list its objects; `None` when it serves none.
    pub(super) async fn resource_of_group_kind(
        &self,
        group_kind: &GroupKind,
        found: &mut Resources,
    ) -> Result<Option<ApiResource>, ClusterError> {
        let (kind, group) = (group_kind.kind(), group_kind.group());
        if let Some(resource) = [("apps", "v1"), ("", "v1")]
            .into_iter()
            .filter(|(g, _)| *g == group)
            .find_map(|(g, v)| builtin(&api_version(g, v), kind))
        {
            return Ok(Some(resource));
        }
        if !found.groups.contains_key(group) {
            let served = match discovery::group(self.client(), group).await {
                Ok(served) => Some(served),
                Err(error) if not_served(&error) => None,
                Err(error) => {
                    return Err(ClusterError::Api {
                        action: format!("cannot discover the API group {group:?}"),
                        error,
                    });
                }
            };
            found.groups.insert(group.to_owned(), served);
        }
        let resource = found.groups[group].as_ref().and_then(|served| {
            served
                .recommended_kind(kind)
                .filter(|(_, caps)| caps.scope == Scope::Namespaced)
                .map(|(resource, _)| resource)
        });
        debug_assert!(
            resource
                .as_ref()
                .is_none_or(|r| group_of(&r.api_version) == group)
        );
        Ok(resource)
    }
}

fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

/// Whether discovery failed because the group or version is not served at all.
fn not_served(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code == 404,
        kube::Error::Discovery(_) => true,
        _ => false,
    }
}
