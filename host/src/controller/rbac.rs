//! The least the controller needs, as Kubernetes objects: its ServiceAccount and the rules
//! it uses — a ClusterRole for every namespace, or a Role and RoleBinding per namespace.

use serde_json::{Value, json};

/// The controller's ServiceAccount and the namespace it lives in.
pub const SERVICE_ACCOUNT: (&str, &str) = ("berth-system", "berth-controller");

/// What the controller sends, by resource: Components (finalizers, status), Events, and
/// what a deploy, an undeploy and its wait do to a component's objects (the CLI's verbs
/// minus exec).
fn rules() -> Value {
    let write = ["get", "list", "watch", "create", "patch", "delete"];
    json!([
        {"apiGroups": ["berth.dev"], "resources": ["components"],
         "verbs": ["get", "list", "watch", "patch"]},
        {"apiGroups": ["berth.dev"], "resources": ["components/status"], "verbs": ["patch"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        // update: a failed rollout's rollback replaces the pod template.
        {"apiGroups": ["apps"], "resources": ["deployments"],
         "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"]},
        {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["list"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
        {"apiGroups": [""], "resources": ["configmaps", "services", "serviceaccounts"],
         "verbs": write},
        {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": write},
        {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": write},
        {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies", "ingresses"],
         "verbs": write},
    ])
}

/// The objects that let the controller run as its ServiceAccount: over every namespace
/// (`namespaces` empty: a ClusterRole and its binding), or over those only (a Role and a
/// RoleBinding in each, no ClusterRole); and the Lease of its leader election, in its own
/// namespace. A `List`, as `kubectl apply -f` takes it.
pub fn rbac(namespaces: &[String]) -> Value {
    let (home, account) = SERVICE_ACCOUNT;
    let labels = json!({"app.kubernetes.io/name": "berth-controller"});
    let subject = json!([{"kind": "ServiceAccount", "name": account, "namespace": home}]);
    let mut items = vec![
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": home, "labels": labels}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": account, "namespace": home, "labels": labels}}),
    ];
    if namespaces.is_empty() {
        items.push(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                          "metadata": {"name": account, "labels": labels}, "rules": rules()}),
        );
        items.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1",
                          "kind": "ClusterRoleBinding",
                          "metadata": {"name": account, "labels": labels},
                          "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                      "kind": "ClusterRole", "name": account},
                          "subjects": subject}));
    }
    // The Lease the replicas elect a leader with, in the controller's own namespace.
    let lease = format!("{account}-lease");
    items.push(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                      "metadata": {"name": lease, "namespace": home, "labels": labels},
                      "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                                 "verbs": ["get", "list", "watch", "create", "update"]}]}),
    );
    items.push(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                      "metadata": {"name": lease, "namespace": home, "labels": labels},
                      "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "Role", "name": lease},
                      "subjects": subject}),
    );
    for namespace in namespaces {
        items.push(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                          "metadata": {"name": account, "namespace": namespace,
                                       "labels": labels},
                          "rules": rules()}),
        );
        items.push(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                          "metadata": {"name": account, "namespace": namespace,
                                       "labels": labels},
                          "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                      "kind": "Role", "name": account},
                          "subjects": subject}),
        );
    }
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(list: &Value) -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let ns = i["metadata"]["namespace"].as_str().unwrap_or("-");
                format!("{}/{ns}", i["kind"].as_str().unwrap())
            })
            .collect()
    }

    #[test]
    fn every_namespace_takes_a_cluster_role_and_some_a_role_in_each_and_none() {
        assert_eq!(
            kinds(&rbac(&[])),
            [
                "Namespace/-",
                "ServiceAccount/berth-system",
                "ClusterRole/-",
                "ClusterRoleBinding/-",
                "Role/berth-system",
                "RoleBinding/berth-system"
            ]
        );
        let some = rbac(&["a".into(), "b".into()]);
        assert_eq!(
            kinds(&some),
            [
                "Namespace/-",
                "ServiceAccount/berth-system",
                "Role/berth-system",
                "RoleBinding/berth-system",
                "Role/a",
                "RoleBinding/a",
                "Role/b",
                "RoleBinding/b"
            ]
        );
        assert_eq!(some["items"][4]["rules"], rules());
    }
}
