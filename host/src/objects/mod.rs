//! Checking what a rules component returned: objects of the kinds the host accepts,
//! parsed strictly where berth's Kubernetes types know the kind (no field they do not
//! have) and checked by shape otherwise; valid names and labels, in the target namespace,
//! never cluster-scoped; exactly one Deployment whose selector matches its pods.

mod check;
mod strict;

use std::borrow::Cow;
use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::DynamicObject;
use serde::Serialize;

use crate::kinds::{AllowedKinds, KindName, group_of, is_cluster_scoped};
use crate::runtime::{RawObject, Source};

/// The name of `component`'s inventory (its ApplySet parent ConfigMap), which its rules may
/// not build.
pub fn parent_name(component: &str) -> String {
    format!("berth-{component}")
}
use check::{check_deployment, check_other, check_service};
use strict::parse;

/// The objects of one component, checked, and the rules component that built them.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The component's name (the spec's `component_name`).
    pub component: String,
    /// The component's Deployment: the workload status, scale, upgrade, rollback and exec
    /// operate on. Without `spec.replicas` when an autoscaler of the set owns them.
    pub deployment: Deployment,
    /// Its Services, in the order the rules returned them.
    pub services: Vec<Service>,
    /// Every other object (ConfigMaps, PodDisruptionBudgets, custom resources, …), in the
    /// order the rules returned them.
    pub others: Vec<DynamicObject>,
    /// The HorizontalPodAutoscaler of the set that scales the Deployment, if any.
    pub autoscaler: Option<String>,
    /// The rules component that built them.
    pub rules: Source,
    /// The SHA-256 of that component's bytes, in hex.
    pub rules_digest: String,
}

/// An object the host refuses, naming the rules component and the object.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: returned {object}: {problem}")]
pub struct InvalidObject {
    /// The rules component.
    pub source_name: Source,
    /// `apiVersion Kind/name` of the object, or `output` for the set as a whole.
    pub object: String,
    /// What is wrong.
    pub problem: Problem,
}

/// What is wrong with an object, or with the set of objects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// A kind the platform has not allowed.
    #[error(
        "berth does not accept {kind} objects unless the platform allows them (--allow-kind {kind}, or allowed_kinds in the site config)"
    )]
    NotAllowed {
        /// The kind, as an allowance names it.
        kind: KindName,
    },
    /// A cluster-scoped kind: a component's objects live in its namespace.
    #[error("{kind} is cluster-scoped; berth applies only namespaced objects")]
    ClusterScoped {
        /// The kind.
        kind: KindName,
    },
    /// The JSON does not parse into the Kubernetes type, or is not an object of the kind
    /// declared.
    #[error("not a valid {kind}: {message}")]
    Malformed {
        /// The kind.
        kind: String,
        /// What is wrong.
        message: String,
    },
    /// A field the Kubernetes type does not have: it would be dropped silently.
    #[error("unknown field {path} (not part of the Kubernetes {kind})")]
    UnknownField {
        /// The kind.
        kind: &'static str,
        /// Where.
        path: String,
    },
    /// `metadata.name` is not the name the rules declared for the object.
    #[error("metadata.name {found:?} differs from the declared name")]
    NameMismatch {
        /// What was found.
        found: Option<String>,
    },
    /// The name is not one Kubernetes accepts for this kind.
    #[error("name {name:?} is not a {rule}")]
    InvalidName {
        /// The name.
        name: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// The object is meant for another namespace.
    #[error("namespace {found:?} is not the target namespace {target:?}")]
    Namespace {
        /// What was found.
        found: String,
        /// The target namespace.
        target: String,
    },
    /// A label key or value Kubernetes would refuse.
    #[error("{path}: {message}")]
    InvalidLabel {
        /// Where.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The Deployment has no spec.
    #[error("has no spec")]
    NoSpec,
    /// The Deployment's selector is empty or does not select its own pods.
    #[error("spec.selector {0}")]
    Selector(String),
    /// Not exactly one Deployment.
    #[error("{0} Deployments; exactly one is required")]
    DeploymentCount(usize),
    /// Two objects of one kind and name: the second would replace the first.
    #[error("returned twice")]
    Duplicate,
    /// The name of the component's inventory (`berth-<component>` ConfigMap).
    #[error("{0:?} is the name of the component's inventory, which berth keeps")]
    Reserved(String),
    /// An autoscaler that scales something other than the component's Deployment.
    #[error("spec.scaleTargetRef names {target}, not the component's Deployment {deployment}")]
    ScaleTarget {
        /// What it names.
        target: String,
        /// The component's Deployment.
        deployment: String,
    },
}

impl Rendered {
    /// Check the objects the rules `source` (whose bytes hash to `rules_digest`) returned
    /// for `component` in `namespace`, accepting the kinds `allowed`.
    pub fn from_objects(
        source: &Source,
        rules_digest: &str,
        component: &str,
        objects: Vec<RawObject>,
        namespace: &str,
        allowed: &AllowedKinds,
    ) -> Result<Self, InvalidObject> {
        let refuse = |object: String, problem: Problem| InvalidObject {
            source_name: source.clone(),
            object,
            problem,
        };
        let mut deployments = Vec::new();
        let mut services = Vec::new();
        let mut others = Vec::new();
        let mut seen = BTreeSet::new();
        for obj in objects {
            let label = format!("{} {}/{}", obj.api_version, obj.kind, obj.name);
            // Named only in a refusal: building it for every object would cost the render.
            let kind = || KindName {
                api_version: obj.api_version.clone(),
                kind: obj.kind.clone(),
            };
            if is_cluster_scoped(&obj.api_version, &obj.kind) {
                return Err(refuse(label, Problem::ClusterScoped { kind: kind() }));
            }
            if !allowed.allows(&obj.api_version, &obj.kind) {
                return Err(refuse(label, Problem::NotAllowed { kind: kind() }));
            }
            if obj.api_version == "v1"
                && obj.kind == "ConfigMap"
                && obj.name == parent_name(component)
            {
                return Err(refuse(label, Problem::Reserved(obj.name)));
            }
            // One name per group-kind: two versions of one kind are one object.
            if !seen.insert((
                group_of(&obj.api_version).to_owned(),
                obj.kind.clone(),
                obj.name.clone(),
            )) {
                return Err(refuse(label, Problem::Duplicate));
            }
            let checked = match (obj.api_version.as_str(), obj.kind.as_str()) {
                ("apps/v1", "Deployment") => parse(&obj.json, "Deployment").and_then(|mut d| {
                    check_deployment(&mut d, &obj.name, namespace)?;
                    deployments.push(d);
                    Ok(())
                }),
                ("v1", "Service") => parse(&obj.json, "Service").and_then(|mut s| {
                    check_service(&mut s, &obj.name, namespace)?;
                    services.push(s);
                    Ok(())
                }),
                _ => check_other(&obj, namespace).map(|o| others.push(o)),
            };
            checked.map_err(|p| refuse(label, p))?;
        }
        let mut deployment = match <[Deployment; 1]>::try_from(deployments) {
            Ok([d]) => d,
            Err(found) => {
                return Err(refuse(
                    "output".into(),
                    Problem::DeploymentCount(found.len()),
                ));
            }
        };
        let autoscaler = autoscaler(&others, &deployment).map_err(|(hpa, p)| refuse(hpa, p))?;
        if autoscaler.is_some()
            && let Some(spec) = deployment.spec.as_mut()
        {
            // The autoscaler owns the replica count: applying one would fight it.
            spec.replicas = None;
        }
        Ok(Self {
            component: component.to_owned(),
            deployment,
            services,
            others,
            autoscaler,
            rules: source.clone(),
            rules_digest: rules_digest.to_owned(),
        })
    }

    /// Every object: the Deployment, the Services, then the others in the rules' order.
    pub fn objects(&self) -> impl Iterator<Item = Object<'_>> {
        std::iter::once(Object::Deployment(&self.deployment))
            .chain(self.services.iter().map(Object::Service))
            .chain(self.others.iter().map(|o| Object::Other(Cow::Borrowed(o))))
    }
}

/// The name of the set's HorizontalPodAutoscaler, which must scale the component's
/// Deployment if there is one.
fn autoscaler(
    others: &[DynamicObject],
    deployment: &Deployment,
) -> Result<Option<String>, (String, Problem)> {
    let deployment_name = deployment.metadata.name.clone().unwrap_or_default();
    let mut found = None;
    for hpa in others {
        let Some(types) = &hpa.types else { continue };
        if types.kind != "HorizontalPodAutoscaler" || group_of(&types.api_version) != "autoscaling"
        {
            continue;
        }
        let name = hpa.metadata.name.clone().unwrap_or_default();
        let target = &hpa.data["spec"]["scaleTargetRef"];
        let kind = target["kind"].as_str().unwrap_or_default();
        let target_name = target["name"].as_str().unwrap_or_default();
        let api_version = target["apiVersion"].as_str().unwrap_or("apps/v1");
        if kind != "Deployment" || target_name != deployment_name || group_of(api_version) != "apps"
        {
            let label = format!("{} HorizontalPodAutoscaler/{name}", types.api_version);
            return Err((
                label,
                Problem::ScaleTarget {
                    target: format!("{api_version} {kind}/{target_name}"),
                    deployment: deployment_name,
                },
            ));
        }
        found = Some(name);
    }
    Ok(found)
}

/// One object of a [`Rendered`] set; serializes as the object itself.
// Owned only for a masked Secret, and a set has a handful of objects: no box needed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Object<'a> {
    /// The Deployment.
    Deployment(&'a Deployment),
    /// A Service.
    Service(&'a Service),
    /// Any other object.
    Other(Cow<'a, DynamicObject>),
}

impl Object<'_> {
    /// Which object this is.
    pub fn reference(&self) -> ObjectRef {
        match self {
            Object::Deployment(d) => ObjectRef::of("apps/v1", "Deployment", &d.metadata),
            Object::Service(s) => ObjectRef::of("v1", "Service", &s.metadata),
            Object::Other(o) => ObjectRef::dynamic(o),
        }
    }

    /// The object with a Secret's values replaced by `***`, as `kubectl diff` shows them.
    pub fn masked(self) -> Self {
        match self {
            Object::Other(o) if is_secret(&o) => {
                let mut o = o.into_owned();
                for field in ["data", "stringData"] {
                    if let Some(values) = o.data.get_mut(field).and_then(|v| v.as_object_mut()) {
                        for value in values.values_mut() {
                            *value = "***".into();
                        }
                    }
                }
                Object::Other(Cow::Owned(o))
            }
            other => other,
        }
    }
}

/// Whether `object` is a core `Secret`.
fn is_secret(object: &DynamicObject) -> bool {
    object
        .types
        .as_ref()
        .is_some_and(|t| t.api_version == "v1" && t.kind == "Secret")
}

/// An object on a cluster: its API group and version, kind, namespace, name, and uid once
/// the API server has given it one. Displays as `Kind/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// `group/version`, or `version` for the core group (`apps/v1`, `v1`).
    pub api_version: String,
    /// `Deployment`, `Service`, …
    pub kind: String,
    /// The namespace; `None` for a cluster-scoped object.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
    /// The uid, when known: it tells this object from a later one of the same name.
    pub uid: Option<String>,
}

impl ObjectRef {
    /// The reference of an object of `api_version` and `kind` with metadata `meta`.
    pub fn of(api_version: &str, kind: &str, meta: &ObjectMeta) -> Self {
        Self {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            namespace: meta.namespace.clone(),
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone(),
        }
    }

    /// The reference of an object of any kind.
    pub fn dynamic(object: &DynamicObject) -> Self {
        let types = object.types.clone().unwrap_or_default();
        Self::of(&types.api_version, &types.kind, &object.metadata)
    }

    /// The API group (empty for the core group).
    pub fn group(&self) -> &str {
        group_of(&self.api_version)
    }

    /// The API version within the group.
    pub fn version(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map_or(self.api_version.as_str(), |(_, version)| version)
    }
}

/// As `Kind/name`, the form berth's reports have always printed.
impl Serialize for ObjectRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::strict::parse_with_paths;
    use super::*;
    use serde_json::{Value, json};

    fn obj(api_version: &str, kind: &str, name: &str, json: Value) -> RawObject {
        RawObject {
            api_version: api_version.into(),
            kind: kind.into(),
            name: name.into(),
            json: json.to_string(),
        }
    }

    fn deployment_json(name: &str) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app": "a"}},
            "spec": {
                "selector": {"matchLabels": {"app": "a"}},
                "template": {
                    "metadata": {"labels": {"app": "a", "k8sdeployment": name}},
                    "spec": {"containers": [{"name": "a", "image": "nginx"}]}
                }
            }
        })
    }

    fn deployment(name: &str, namespace: Option<&str>) -> RawObject {
        let mut json = deployment_json(name);
        if let Some(ns) = namespace {
            json["metadata"]["namespace"] = ns.into();
        }
        obj("apps/v1", "Deployment", name, json)
    }

    fn service(name: &str) -> RawObject {
        obj(
            "v1",
            "Service",
            name,
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                   "spec": {"selector": {"app": "a"}, "ports": [{"port": 80}]}}),
        )
    }

    /// The objects checked, the default kinds and `allowed` accepted.
    fn checked(objects: Vec<RawObject>, allowed: &[&str]) -> Result<Rendered, InvalidObject> {
        let allowed = AllowedKinds::new().with(allowed.iter().map(|k| k.parse().unwrap()));
        Rendered::from_objects(&Source::Default, "", "web", objects, "team", &allowed)
    }

    fn check(objects: Vec<RawObject>) -> Result<Rendered, String> {
        checked(objects, &[]).map_err(|e| e.to_string())
    }

    fn problem(objects: Vec<RawObject>) -> Problem {
        checked(objects, &[]).expect_err("refused").problem
    }

    /// The Deployment with one change to its JSON.
    fn changed(change: impl FnOnce(&mut Value)) -> RawObject {
        let mut json = deployment_json("dep-a");
        change(&mut json);
        obj("apps/v1", "Deployment", "dep-a", json)
    }

    #[test]
    fn namespace_is_set_when_empty_and_kept_when_target() {
        let r = check(vec![deployment("dep-a", None), service("a")]).unwrap();
        assert_eq!(r.deployment.metadata.namespace.as_deref(), Some("team"));
        assert_eq!(r.services[0].metadata.namespace.as_deref(), Some("team"));
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
            json!({}),
        );
        let err = check(vec![deployment("dep-a", None), binding]).unwrap_err();
        assert!(
            err.contains(
                "ClusterRoleBinding/root: rbac.authorization.k8s.io/v1/ClusterRoleBinding is cluster-scoped; berth applies only namespaced objects"
            ),
            "{err}"
        );
        let err = check(vec![obj(
            "apps/v1",
            "Deployment",
            "dep-a",
            json!({"kind": "Service"}),
        )])
        .unwrap_err();
        assert!(err.contains("not a valid Deployment"), "{err}");
        let mut other = service("svc");
        other.json = other.json.replace("\"svc\"", "\"other\"");
        let err = check(vec![deployment("dep-a", None), other]).unwrap_err();
        assert!(
            err.contains(
                "v1 Service/svc: metadata.name Some(\"other\") differs from the declared name"
            ),
            "{err}"
        );
    }

    #[test]
    fn names_must_be_valid_for_their_kind() {
        let p = problem(vec![deployment("Dep_A", None)]);
        assert!(
            matches!(&p, Problem::InvalidName { name, rule } if name == "Dep_A" && rule.starts_with("DNS-1123 subdomain")),
            "{p}"
        );
        assert!(check(vec![deployment("dep.a", None)]).is_ok());
        // A Service name is a DNS-1035 label: no dots, a letter first.
        for bad in ["9svc", "svc.a", &"s".repeat(64)] {
            let p = problem(vec![deployment("dep-a", None), service(bad)]);
            assert!(
                matches!(&p, Problem::InvalidName { rule, .. } if rule.starts_with("DNS-1035 label")),
                "{bad}: {p}"
            );
        }
        let p = problem(vec![deployment("dep-a", None), service("a"), service("a")]);
        assert_eq!(p, Problem::Duplicate);
    }

    #[test]
    fn selector_must_select_the_pods() {
        let p = problem(vec![changed(|d| {
            d["spec"]["selector"]["matchLabels"]["app"] = "b".into();
        })]);
        assert_eq!(
            p.to_string(),
            "spec.selector requires app=b, which the pod template labels do not have"
        );
        let p = problem(vec![changed(|d| d["spec"]["selector"] = json!({}))]);
        assert!(
            matches!(&p, Problem::Selector(m) if m.starts_with("is empty")),
            "{p}"
        );
        let in_expr = |op: &str, values: Value| {
            changed(move |d| {
                d["spec"]["selector"] =
                    json!({"matchExpressions": [{"key": "app", "operator": op, "values": values}]});
            })
        };
        assert!(check(vec![in_expr("In", json!(["a", "b"]))]).is_ok());
        assert!(check(vec![in_expr("Exists", Value::Null)]).is_ok());
        assert!(matches!(
            problem(vec![in_expr("NotIn", json!(["a"]))]),
            Problem::Selector(_)
        ));
        assert!(matches!(
            problem(vec![in_expr("DoesNotExist", Value::Null)]),
            Problem::Selector(_)
        ));
        assert!(matches!(
            problem(vec![in_expr("Near", Value::Null)]),
            Problem::Selector(m) if m.contains("unknown operator \"Near\"")
        ));
        let p = problem(vec![changed(|d| {
            d.as_object_mut().unwrap().remove("spec");
        })]);
        assert_eq!(p, Problem::NoSpec);
    }

    #[test]
    fn labels_must_be_valid() {
        let p = problem(vec![changed(|d| {
            d["metadata"]["labels"]["bad key"] = "x".into();
        })]);
        assert!(
            matches!(&p, Problem::InvalidLabel { path, .. } if path == "metadata.labels.bad key"),
            "{p}"
        );
        let p = problem(vec![changed(|d| {
            d["spec"]["template"]["metadata"]["labels"]["team"] = "-x".into();
        })]);
        assert!(
            matches!(&p, Problem::InvalidLabel { path, .. } if path == "spec.template.metadata.labels.team"),
            "{p}"
        );
        assert!(
            check(vec![changed(|d| {
                d["metadata"]["labels"]["example.com/cost-center"] = "".into();
            })])
            .is_ok()
        );
    }

    #[test]
    fn unknown_fields_are_refused_with_their_path() {
        let p = problem(vec![changed(|d| {
            d["spec"]["template"]["spec"]["containers"][0]["privileged"] = true.into();
        })]);
        assert_eq!(
            p.to_string(),
            "unknown field spec.template.spec.containers[0].privileged (not part of the Kubernetes Deployment)"
        );
        let p = problem(vec![changed(|d| d["spec"]["replica"] = 3.into())]);
        assert!(matches!(&p, Problem::UnknownField { path, .. } if path == "spec.replica"));
        let p = problem(vec![changed(|d| d["extra"] = json!({}))]);
        assert!(matches!(&p, Problem::UnknownField { path, .. } if path == "extra"));
        // Nulls and empty values of known fields are fine.
        assert!(
            check(vec![changed(|d| {
                d["metadata"]["annotations"] = Value::Null;
                d["spec"]["template"]["spec"]["volumes"] = json!([]);
                d["spec"]["unknownButNull"] = Value::Null;
            })])
            .is_ok()
        );
        let p = problem(vec![changed(|d| d["spec"]["replicas"] = "two".into())]);
        assert!(
            matches!(&p, Problem::Malformed { message, .. } if message.starts_with("spec.replicas: invalid type")),
            "{p}"
        );
    }

    #[test]
    fn the_default_rules_objects_pass_unchanged() {
        // What the default rules emit for examples/full.yaml, abridged to its every kind
        // of field: the unknown-field check must not refuse any of it.
        let d = changed(|d| {
            d["spec"]["replicas"] = 2.into();
            d["spec"]["template"]["spec"] = json!({
                "hostname": "a",
                "containers": [{
                    "name": "a", "image": "nginx", "imagePullPolicy": "Always",
                    "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}}],
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "volumeMounts": [{"name": "v", "mountPath": "/data", "readOnly": true, "subPath": "x"}],
                    "resources": {"limits": {"cpu": "1", "memory": "512Mi"}},
                    "readinessProbe": {"httpGet": {"path": "/", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 10, "timeoutSeconds": 2, "failureThreshold": 1, "initialDelaySeconds": 5}
                }],
                "initContainers": [],
                "volumes": [{"name": "v", "hostPath": {"path": "/var"}}, {"name": "c", "configMap": {"name": "cm"}}, {"name": "e", "emptyDir": {}}],
                "imagePullSecrets": [{"name": "regcred"}]
            });
        });
        let s = obj(
            "v1",
            "Service",
            "a",
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "a", "annotations": {"msb.onap.org/service-info": "[]"}},
                   "spec": {"type": "NodePort", "selector": {"app": "a"},
                            "ports": [{"name": "xport-t-8443", "port": 8443, "protocol": "TCP", "nodePort": 30443}]}}),
        );
        check(vec![d.clone(), s.clone()]).unwrap();
        // The one-pass parse and the tree parse read the same object.
        let fast: Deployment = parse(&d.json, "Deployment").unwrap();
        let tree: Deployment = parse_with_paths(&d.json, "Deployment").unwrap();
        assert_eq!(fast, tree);
        let fast: Service = parse(&s.json, "Service").unwrap();
        assert_eq!(
            fast,
            parse_with_paths::<Service>(&s.json, "Service").unwrap()
        );
    }

    #[test]
    fn text_after_the_object_is_refused() {
        let mut d = deployment("dep-a", None);
        d.json.push_str(" {}");
        let p = problem(vec![d]);
        assert!(
            matches!(&p, Problem::Malformed { message, .. } if message.contains("trailing characters")),
            "{p}"
        );
    }

    fn check_allowing(objects: Vec<RawObject>, allowed: &[&str]) -> Result<Rendered, Problem> {
        checked(objects, allowed).map_err(|e| e.problem)
    }

    fn secret() -> RawObject {
        obj(
            "v1",
            "Secret",
            "creds",
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
                   "data": {"password": "aHVudGVyMg=="}, "stringData": {"user": "admin"}}),
        )
    }

    fn certificate(json: Value) -> RawObject {
        obj("cert-manager.io/v1", "Certificate", "web-tls", json)
    }

    fn certificate_json() -> Value {
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
               "metadata": {"name": "web-tls", "labels": {"app": "web"}},
               "spec": {"secretName": "web-tls", "dnsNames": ["web.shop"]}})
    }

    #[test]
    fn kinds_beyond_the_defaults_need_an_allowance() {
        let p = check_allowing(vec![deployment("dep-a", None), secret()], &[]).unwrap_err();
        assert_eq!(
            p.to_string(),
            "berth does not accept v1/Secret objects unless the platform allows them (--allow-kind v1/Secret, or allowed_kinds in the site config)"
        );
        let r = check_allowing(vec![deployment("dep-a", None), secret()], &["v1/Secret"]).unwrap();
        assert_eq!(r.others.len(), 1);
        assert_eq!(r.others[0].metadata.namespace.as_deref(), Some("team"));
        let p = check_allowing(
            vec![deployment("dep-a", None), certificate(certificate_json())],
            &["v1/Secret"],
        )
        .unwrap_err();
        assert!(matches!(p, Problem::NotAllowed { .. }), "{p}");
        let r = check_allowing(
            vec![deployment("dep-a", None), certificate(certificate_json())],
            &["cert-manager.io/v1/Certificate"],
        )
        .unwrap();
        assert_eq!(r.others[0].data["spec"]["secretName"], "web-tls");
        // Cluster-scoped kinds are refused even when "allowed".
        let ns = obj(
            "v1",
            "Namespace",
            "x",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}),
        );
        let p = check_allowing(vec![deployment("dep-a", None), ns], &["v1/Namespace"]).unwrap_err();
        assert!(matches!(p, Problem::ClusterScoped { .. }), "{p}");
    }

    #[test]
    fn known_kinds_are_parsed_strictly_and_others_by_shape() {
        let pdb = |extra: Value| {
            let mut json = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": "web"},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "a"}}}});
            json["spec"]["maxUnavailabel"] = extra;
            obj("policy/v1", "PodDisruptionBudget", "web", json)
        };
        assert!(check_allowing(vec![deployment("dep-a", None), pdb(Value::Null)], &[]).is_ok());
        let p = check_allowing(vec![deployment("dep-a", None), pdb(1.into())], &[]).unwrap_err();
        assert_eq!(
            p.to_string(),
            "unknown field spec.maxUnavailabel (not part of the Kubernetes PodDisruptionBudget)"
        );
        // policy/v1beta1 is not in berth's types: checked by shape, the API server does
        // the rest.
        let mut old = pdb(1.into());
        old.api_version = "policy/v1beta1".into();
        old.json = old.json.replace("policy/v1", "policy/v1beta1");
        assert!(check_allowing(vec![deployment("dep-a", None), old], &[]).is_ok());
        let allow = &["cert-manager.io/v1/Certificate"];
        let shape = |change: fn(&mut Value)| {
            let mut json = certificate_json();
            change(&mut json);
            check_allowing(vec![deployment("dep-a", None), certificate(json)], allow).unwrap_err()
        };
        let p = shape(|c| c["apiVersion"] = "cert-manager.io/v2".into());
        assert_eq!(
            p.to_string(),
            "not a valid Certificate: apiVersion \"cert-manager.io/v2\" differs from the declared \"cert-manager.io/v1\""
        );
        let p = shape(|c| c["metadata"]["lables"] = json!({}));
        assert!(
            matches!(&p, Problem::UnknownField { path, .. } if path == "lables"),
            "{p}"
        );
        let p = shape(|c| c["metadata"]["namespace"] = "kube-system".into());
        assert!(matches!(p, Problem::Namespace { .. }), "{p}");
        let p = shape(|c| c["metadata"]["labels"]["bad key"] = "x".into());
        assert!(matches!(p, Problem::InvalidLabel { .. }), "{p}");
        let p = shape(|c| c["metadata"] = json!("web-tls"));
        assert!(p.to_string().ends_with("metadata is not an object"), "{p}");
        let mut dup = certificate(certificate_json());
        dup.api_version = "cert-manager.io/v1".into();
        let p = check_allowing(
            vec![
                deployment("dep-a", None),
                certificate(certificate_json()),
                dup,
            ],
            allow,
        )
        .unwrap_err();
        assert_eq!(p, Problem::Duplicate);
    }

    fn hpa(target_kind: &str, target: &str) -> RawObject {
        obj(
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            "web",
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                   "metadata": {"name": "web"},
                   "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": target_kind, "name": target},
                            "minReplicas": 2, "maxReplicas": 5}}),
        )
    }

    #[test]
    fn an_autoscaler_owns_the_replicas_of_the_deployment_only() {
        let with_replicas = changed(|d| d["spec"]["replicas"] = 3.into());
        let r = check_allowing(vec![with_replicas.clone()], &[]).unwrap();
        assert_eq!(r.deployment.spec.as_ref().unwrap().replicas, Some(3));
        assert_eq!(r.autoscaler, None);
        let r =
            check_allowing(vec![with_replicas.clone(), hpa("Deployment", "dep-a")], &[]).unwrap();
        assert_eq!(r.deployment.spec.as_ref().unwrap().replicas, None);
        assert_eq!(r.autoscaler.as_deref(), Some("web"));
        let p =
            check_allowing(vec![with_replicas, hpa("Deployment", "dep-other")], &[]).unwrap_err();
        assert_eq!(
            p.to_string(),
            "spec.scaleTargetRef names apps/v1 Deployment/dep-other, not the component's Deployment dep-a"
        );
    }

    #[test]
    fn secrets_are_masked_unless_shown() {
        let r = check_allowing(vec![deployment("dep-a", None), secret()], &["v1/Secret"]).unwrap();
        let shown: Vec<Value> = r
            .objects()
            .map(|o| serde_json::to_value(o).unwrap())
            .collect();
        let masked: Vec<Value> = r
            .objects()
            .map(|o| serde_json::to_value(o.masked()).unwrap())
            .collect();
        assert_eq!(shown[1]["data"]["password"], "aHVudGVyMg==");
        assert_eq!(masked[1]["data"]["password"], "***");
        assert_eq!(masked[1]["stringData"]["user"], "***");
        assert_eq!(masked[0], shown[0], "only Secrets are masked");
    }
}
