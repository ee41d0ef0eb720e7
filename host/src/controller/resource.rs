//! The `Component` resource (`berth.dev/v1alpha1`): a component spec declared in the
//! cluster, and the status the controller reports on it, kstatus-compatible.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A component declared in the cluster: the controller keeps it as its spec says, built by
/// the platform team's rules.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "berth.dev",
    version = "v1alpha1",
    kind = "Component",
    namespaced,
    status = "ComponentStatus",
    shortname = "comp",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Revision","type":"integer","jsonPath":".status.revision"}"#,
    printcolumn = r#"{"name":"Rules","type":"string","jsonPath":".status.rulesShortDigest"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ComponentSpec {
    /// The component spec, exactly as `berth deploy --spec` reads it from a file. Kept as
    /// is by the API server (unknown keys preserved) so that berth's own strict parser sees
    /// a typo and names it, rather than the API server dropping it.
    #[schemars(schema_with = "preserved")]
    pub component: Value,
    /// Leave the component as it is: no apply, no drift correction.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,
    /// How often the objects are checked when nothing woke the controller: `10m`, `1h`
    /// (default 10m). A change to them wakes it at once; a check that finds nothing changed
    /// since the last reconcile (from the controller's watches) sends no request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// How long a rollout may take before it counts as failed: `30s`, `5m` (default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// What is done when a rollout fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<Remediation>,
}

/// A failed rollout is rolled back to the last good revision and tried again, `retries`
/// times in all (default 3); then the Component is Stalled until its spec, the rules or its
/// `berth.dev/reconcile-requested-at` annotation change.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Remediation {
    /// Attempts of one generation's rollout before giving up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
}

/// What the controller saw and did, for people, `kubectl wait` and GitOps tools.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Reconciling`, `Stalled` (kstatus).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The SHA-256 of the rules component that built what is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_digest: Option<String>,
    /// Its first 12 characters, for the printer column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_short_digest: Option<String>,
    /// The Deployment's revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// The generation last applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_generation: Option<i64>,
    /// The objects applied: their kinds (`Kind.group`) and how many there are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<Inventory>,
    /// Failed rollouts of what is applied, in a row.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failures: u32,
    /// The last revision that rolled out: where a failed rollout goes back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_good_revision: Option<i64>,
    /// When the controller last applied (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_time: Option<String>,
    /// When a rollout last failed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_time: Option<String>,
    /// The `berth.dev/reconcile-requested-at` value last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What the component consists of on the cluster.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// Each kind, as the ApplySet inventory writes it (`Deployment.apps`).
    pub kinds: Vec<String>,
    /// How many objects.
    pub count: i64,
}

/// A condition, as `metav1.Condition` has it.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `Reconciling` or `Stalled`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// One word in CamelCase: why.
    pub reason: String,
    /// For people: names the field or object.
    pub message: String,
    /// The generation it was set for.
    pub observed_generation: i64,
    /// When the status last changed (RFC 3339).
    pub last_transition_time: String,
}

/// An object of any shape, kept as written.
fn preserved(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    #[test]
    fn the_crd_keeps_the_spec_for_berths_parser_and_has_a_status_subresource() {
        let crd = serde_json::to_value(Component::crd()).unwrap();
        assert_eq!(crd["metadata"]["name"], "components.berth.dev");
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        let version = &crd["spec"]["versions"][0];
        assert_eq!(version["name"], "v1alpha1");
        assert!(version["subresources"]["status"].is_object());
        let component =
            &version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["component"];
        assert_eq!(component["x-kubernetes-preserve-unknown-fields"], true);
        let columns: Vec<&str> = version["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(columns, ["Ready", "Reason", "Revision", "Rules", "Age"]);
    }
}
