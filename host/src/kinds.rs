//! Which kinds of object the host accepts from rules: the kinds a workload commonly owns,
//! those the platform allows besides, never a cluster-scoped one.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// A kind at one API version, written `APIVERSION/KIND` (`v1/Secret`,
/// `cert-manager.io/v1/Certificate`), as `--allow-kind` and `allowed_kinds` take it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct KindName {
    /// `group/version`, or `version` for the core group.
    pub api_version: String,
    /// The kind.
    pub kind: String,
}

/// A text that is not `APIVERSION/KIND`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not APIVERSION/KIND (e.g. v1/Secret, cert-manager.io/v1/Certificate)")]
pub struct KindNameError(pub String);

impl FromStr for KindName {
    type Err = KindNameError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || KindNameError(text.to_owned());
        let (api_version, kind) = text.rsplit_once('/').ok_or_else(bad)?;
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let group_ok = group.is_empty() && !api_version.contains('/')
            || !group.is_empty()
                && group.split('.').all(|part| {
                    !part.is_empty()
                        && part
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                });
        let kind_ok = kind.starts_with(|c: char| c.is_ascii_uppercase())
            && kind.chars().all(|c| c.is_ascii_alphanumeric());
        if group_ok && kind_ok && is_version(version) {
            Ok(Self {
                api_version: api_version.to_owned(),
                kind: kind.to_owned(),
            })
        } else {
            Err(bad())
        }
    }
}

impl TryFrom<String> for KindName {
    type Error = KindNameError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl fmt::Display for KindName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.api_version, self.kind)
    }
}

/// `v1`, `v2beta1`, `v1alpha3`: a Kubernetes API version.
fn is_version(text: &str) -> bool {
    let Some(rest) = text.strip_prefix('v') else {
        return false;
    };
    let major = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    let level = major
        .strip_prefix("alpha")
        .or_else(|| major.strip_prefix("beta"));
    major.len() < rest.len()
        && match level {
            None => major.is_empty(),
            Some(n) => !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()),
        }
}

/// The API group of an `apiVersion` (empty for the core group).
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// The kinds a workload commonly owns, accepted at any version without an allowance:
/// `(group, kind)`.
pub const DEFAULT_KINDS: &[(&str, &str)] = &[
    ("apps", "Deployment"),
    ("", "Service"),
    ("", "ConfigMap"),
    ("", "ServiceAccount"),
    ("policy", "PodDisruptionBudget"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("networking.k8s.io", "Ingress"),
];

/// The kinds the host accepts: [`DEFAULT_KINDS`] and the ones the platform allows besides
/// (`--allow-kind` and the site config's `allowed_kinds`, the union of both).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedKinds {
    extra: BTreeSet<KindName>,
}

impl AllowedKinds {
    /// Only the default kinds.
    pub fn new() -> Self {
        Self::default()
    }

    /// Allow `kinds` besides.
    pub fn with(mut self, kinds: impl IntoIterator<Item = KindName>) -> Self {
        self.extra.extend(kinds);
        self
    }

    /// Whether an object of `api_version` and `kind` is accepted.
    pub fn allows(&self, api_version: &str, kind: &str) -> bool {
        let group = group_of(api_version);
        DEFAULT_KINDS.contains(&(group, kind))
            || self
                .extra
                .iter()
                .any(|k| k.api_version == api_version && k.kind == kind)
    }
}

/// Cluster-scoped kinds by berth's tables (k8s-openapi's), at any version of their group:
/// refused before the cluster is asked. At deploy, discovery refuses any other.
pub fn is_cluster_scoped(api_version: &str, kind: &str) -> bool {
    let group = group_of(api_version);
    CLUSTER_SCOPED
        .iter()
        .any(|(g, k)| *g == group && *k == kind)
}

macro_rules! cluster_scoped {
    ($($t:ty),* $(,)?) => {
        /// `(group, kind)` of every cluster-scoped kind k8s-openapi knows; the compiler
        /// checks each is cluster-scoped.
        const CLUSTER_SCOPED: &[(&str, &str)] = &[$(
            {
                const fn scope<T: k8s_openapi::Resource<Scope = k8s_openapi::ClusterResourceScope>>() {}
                scope::<$t>();
                (<$t as k8s_openapi::Resource>::GROUP, <$t as k8s_openapi::Resource>::KIND)
            }
        ),*];
    };
}

use k8s_openapi::api as k;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as crd;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as aggregator;

cluster_scoped!(
    k::core::v1::Namespace,
    k::core::v1::Node,
    k::core::v1::PersistentVolume,
    k::rbac::v1::ClusterRole,
    k::rbac::v1::ClusterRoleBinding,
    k::storage::v1::StorageClass,
    k::storage::v1::CSIDriver,
    k::storage::v1::CSINode,
    k::storage::v1::VolumeAttachment,
    k::scheduling::v1::PriorityClass,
    k::node::v1::RuntimeClass,
    k::networking::v1::IngressClass,
    k::admissionregistration::v1::ValidatingWebhookConfiguration,
    k::admissionregistration::v1::MutatingWebhookConfiguration,
    k::admissionregistration::v1::ValidatingAdmissionPolicy,
    k::admissionregistration::v1::ValidatingAdmissionPolicyBinding,
    k::certificates::v1::CertificateSigningRequest,
    k::flowcontrol::v1::FlowSchema,
    k::flowcontrol::v1::PriorityLevelConfiguration,
    crd::CustomResourceDefinition,
    aggregator::APIService,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_parse_as_written() {
        let secret: KindName = "v1/Secret".parse().unwrap();
        assert_eq!(
            (secret.api_version.as_str(), secret.kind.as_str()),
            ("v1", "Secret")
        );
        let cert: KindName = "cert-manager.io/v1/Certificate".parse().unwrap();
        assert_eq!(cert.api_version, "cert-manager.io/v1");
        assert_eq!(cert.to_string(), "cert-manager.io/v1/Certificate");
        for bad in [
            "Secret",
            "v1/secret",
            "apps/Deployment",
            "a/b/c/Kind",
            "/v1/X",
            "x.io/v1/",
            "vendor/Kind",
            "x.io/v1beta/Kind",
        ] {
            let err = bad.parse::<KindName>().unwrap_err();
            assert!(err.to_string().contains("is not APIVERSION/KIND"), "{bad}");
        }
        for good in [
            "apps/v1/StatefulSet",
            "batch/v1/Job",
            "x.io/v2beta1/Thing",
            "v1alpha1/Y",
        ] {
            assert!(good.parse::<KindName>().is_ok(), "{good}");
        }
    }

    #[test]
    fn defaults_at_any_version_and_allowances_at_theirs() {
        let kinds = AllowedKinds::new();
        assert!(kinds.allows("policy/v1beta1", "PodDisruptionBudget"));
        assert!(kinds.allows("autoscaling/v2", "HorizontalPodAutoscaler"));
        assert!(!kinds.allows("v1", "Secret"));
        assert!(!kinds.allows("cert-manager.io/v1", "Certificate"));
        let kinds = kinds.with(["v1/Secret".parse().unwrap()]);
        assert!(kinds.allows("v1", "Secret"));
        assert!(!kinds.allows("v2", "Secret"));
    }

    #[test]
    fn cluster_scoped_kinds_at_any_version() {
        assert!(is_cluster_scoped(
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding"
        ));
        assert!(is_cluster_scoped(
            "rbac.authorization.k8s.io/v1beta1",
            "ClusterRole"
        ));
        assert!(is_cluster_scoped("v1", "Namespace"));
        assert!(is_cluster_scoped(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition"
        ));
        assert!(!is_cluster_scoped("rbac.authorization.k8s.io/v1", "Role"));
        assert!(!is_cluster_scoped("v1", "Secret"));
    }
}
