//! Everything a platform team applies to run the controller in the cluster: the CRD, the
//! ServiceAccount and its RBAC, the site config, and a Deployment of replicas electing a
//! leader, probed on its health endpoints, non-root with a read-only root filesystem.

use serde_json::{Value, json};

use super::rbac::{SERVICE_ACCOUNT, rbac};

/// Where the site config is mounted in the controller's pods.
const CONFIG_PATH: &str = "/etc/berth/site.yaml";

/// How the controller is installed. Defaults, as policy: 2 replicas, every namespace, the
/// default rules, no site config.
#[derive(Clone, Debug)]
pub struct Install {
    image: String,
    replicas: u32,
    namespaces: Vec<String>,
    rules: Option<String>,
    site_config: Option<String>,
}

impl Install {
    /// The controller from `image` (berth's own, with `berth` as its entrypoint).
    pub fn new(image: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            replicas: 2,
            namespaces: Vec::new(),
            rules: None,
            site_config: None,
        }
    }

    /// How many replicas (one leads).
    pub fn replicas(mut self, replicas: u32) -> Self {
        self.replicas = replicas;
        self
    }

    /// Watch only these namespaces (none: every namespace, with a ClusterRole).
    pub fn namespaces(mut self, namespaces: Vec<String>) -> Self {
        self.namespaces = namespaces;
        self
    }

    /// The rules, by a reference the pods can pull (`oci://…@sha256:…`).
    pub fn rules(mut self, reference: impl Into<String>) -> Self {
        self.rules = Some(reference.into());
        self
    }

    /// The site config's text, put in a ConfigMap the pods mount.
    pub fn site_config(mut self, text: impl Into<String>) -> Self {
        self.site_config = Some(text.into());
        self
    }

    /// The objects, in the order `kubectl apply -f` creates them: a `List`.
    pub fn manifests(&self) -> Value {
        let (home, account) = SERVICE_ACCOUNT;
        let labels = json!({"app.kubernetes.io/name": "berth-controller"});
        let mut items = vec![super::crd()];
        let access = rbac(&self.namespaces);
        items.extend(access["items"].as_array().cloned().unwrap_or_default());
        let mut args = vec![json!("controller"), json!("--http"), json!("0.0.0.0:8080")];
        for namespace in &self.namespaces {
            args.extend([json!("--namespace"), json!(namespace)]);
        }
        if let Some(rules) = &self.rules {
            args.extend([json!("--rules"), json!(rules)]);
        }
        let mut mounts = vec![json!({"name": "cache", "mountPath": "/var/cache/berth"})];
        let mut volumes = vec![json!({"name": "cache", "emptyDir": {}})];
        if let Some(text) = &self.site_config {
            items.push(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": account, "namespace": home, "labels": labels},
                "data": {"site.yaml": text}}));
            args.extend([json!("--config"), json!(CONFIG_PATH)]);
            mounts.push(json!({"name": "config", "mountPath": "/etc/berth", "readOnly": true}));
            volumes.push(json!({"name": "config", "configMap": {"name": account}}));
        }
        let container = json!({
            "name": "controller",
            "image": self.image,
            "args": args,
            "env": [
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "BERTH_CACHE_DIR", "value": "/var/cache/berth"},
            ],
            "ports": [{"name": "http", "containerPort": 8080}],
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"},
                              "periodSeconds": 10, "failureThreshold": 3},
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"},
                               "periodSeconds": 5},
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                          "limits": {"memory": "256Mi"}},
            "securityContext": {"allowPrivilegeEscalation": false,
                                "readOnlyRootFilesystem": true,
                                "capabilities": {"drop": ["ALL"]}},
            "volumeMounts": mounts,
        });
        items.push(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": account, "namespace": home, "labels": labels},
            "spec": {
                "replicas": self.replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": account,
                        // SIGTERM hands the Lease over at once; 10 s is plenty.
                        "terminationGracePeriodSeconds": 10,
                        "securityContext": {"runAsNonRoot": true, "runAsUser": 65532,
                                            "runAsGroup": 65532,
                                            "seccompProfile": {"type": "RuntimeDefault"}},
                        "containers": [container],
                        "volumes": volumes,
                    },
                },
            },
        }));
        json!({"apiVersion": "v1", "kind": "List", "items": items})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crd_rbac_and_a_probed_non_root_deployment_of_two() {
        let list = Install::new("registry.example/berth:1")
            .namespaces(vec!["a".into()])
            .rules("oci://registry.example/rules@sha256:00")
            .site_config("image_pull_secrets: [x]\n")
            .manifests();
        let items = list["items"].as_array().unwrap();
        let kinds: Vec<&str> = items.iter().map(|i| i["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "CustomResourceDefinition",
                "Namespace",
                "ServiceAccount",
                "Role",
                "RoleBinding",
                "Role",
                "RoleBinding",
                "ConfigMap",
                "Deployment"
            ]
        );
        let deployment = items.last().unwrap();
        assert_eq!(deployment["spec"]["replicas"], 2);
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        let container = &pod["containers"][0];
        assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
        let args: Vec<&str> = container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(
            args,
            [
                "controller",
                "--http",
                "0.0.0.0:8080",
                "--namespace",
                "a",
                "--rules",
                "oci://registry.example/rules@sha256:00",
                "--config",
                "/etc/berth/site.yaml"
            ]
        );
    }
}
