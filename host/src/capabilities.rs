//! What a cluster serves, as Helm's `.Capabilities`: its Kubernetes version and every
//! served `group/version`. Read by discovery (`Cluster::capabilities`), or assumed for
//! offline renders.

/// A cluster's Kubernetes version and served API versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// `MAJOR.MINOR`, e.g. `1.20`.
    pub kube_version: String,
    /// Every served `group/version` (`v1` for the core group), sorted.
    pub api_versions: Vec<String>,
}

/// The newest Kubernetes version berth's Kubernetes types (k8s-openapi) know.
pub const NEWEST_KNOWN_VERSION: &str = "1.33";

/// The API versions a Kubernetes 1.33 cluster serves by default (no aggregated or custom
/// APIs): what an offline render assumes unless told otherwise.
const SERVED_BY_1_33: &[&str] = &[
    "admissionregistration.k8s.io/v1",
    "apiextensions.k8s.io/v1",
    "apiregistration.k8s.io/v1",
    "apps/v1",
    "authentication.k8s.io/v1",
    "authorization.k8s.io/v1",
    "autoscaling/v1",
    "autoscaling/v2",
    "batch/v1",
    "certificates.k8s.io/v1",
    "coordination.k8s.io/v1",
    "discovery.k8s.io/v1",
    "events.k8s.io/v1",
    "flowcontrol.apiserver.k8s.io/v1",
    "networking.k8s.io/v1",
    "node.k8s.io/v1",
    "policy/v1",
    "rbac.authorization.k8s.io/v1",
    "scheduling.k8s.io/v1",
    "storage.k8s.io/v1",
    "v1",
];

impl Capabilities {
    /// What berth assumes without a cluster: the newest version its types know, serving
    /// that version's built-in APIs.
    pub fn newest_known() -> Self {
        Self {
            kube_version: NEWEST_KNOWN_VERSION.to_owned(),
            api_versions: SERVED_BY_1_33.iter().map(|v| (*v).to_owned()).collect(),
        }
    }

    /// Whether the cluster serves `api_version` (`policy/v1`, `v1`).
    pub fn serves(&self, api_version: &str) -> bool {
        self.api_versions.iter().any(|v| v == api_version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_default_is_the_newest_known_version() {
        let caps = Capabilities::newest_known();
        assert_eq!(caps.kube_version, "1.33");
        assert!(caps.serves("policy/v1") && caps.serves("v1") && caps.serves("apps/v1"));
        assert!(!caps.serves("policy/v1beta1"), "removed in 1.25");
        let mut sorted = caps.api_versions.clone();
        sorted.sort();
        assert_eq!(sorted, caps.api_versions);
    }
}
