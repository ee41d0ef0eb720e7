//! Checking what a rules component returned: every object parsed into the Kubernetes
//! types berth operates on, with no field those types do not know, valid names and labels,
//! in the target namespace; exactly one Deployment whose selector matches its pods, and
//! its Services.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::runtime::{RawObject, Source};
use crate::selector::{Requirement, Selector};

/// The objects of one component, checked, and the rules component that built them.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The component's name (the spec's `component_name`).
    pub component: String,
    /// The component's Deployment.
    pub deployment: Deployment,
    /// Its Services, in the order the rules returned them.
    pub services: Vec<Service>,
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
    /// Neither an `apps/v1` Deployment nor a `v1` Service.
    #[error("berth accepts only apps/v1 Deployments and v1 Services")]
    Kind,
    /// The JSON does not parse into the Kubernetes type.
    #[error("not a valid {kind}: {message}")]
    Malformed {
        /// The kind.
        kind: &'static str,
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
    /// Two Services with one name: the second would replace the first.
    #[error("two Services named {0:?}")]
    DuplicateService(String),
}

impl Rendered {
    /// Check the objects the rules `source` (whose bytes hash to `rules_digest`) returned
    /// for `component` in `namespace`.
    pub fn from_objects(
        source: &Source,
        rules_digest: &str,
        component: &str,
        objects: Vec<RawObject>,
        namespace: &str,
    ) -> Result<Self, InvalidObject> {
        let refuse = |object: String, problem: Problem| InvalidObject {
            source_name: source.clone(),
            object,
            problem,
        };
        let mut deployments = Vec::new();
        let mut services = Vec::new();
        let mut service_names = BTreeSet::new();
        for obj in objects {
            let label = format!("{} {}/{}", obj.api_version, obj.kind, obj.name);
            match (obj.api_version.as_str(), obj.kind.as_str()) {
                ("apps/v1", "Deployment") => {
                    let mut d: Deployment =
                        parse(&obj.json, "Deployment").map_err(|p| refuse(label.clone(), p))?;
                    check_deployment(&mut d, &obj.name, namespace).map_err(|p| refuse(label, p))?;
                    deployments.push(d);
                }
                ("v1", "Service") => {
                    let mut s: Service =
                        parse(&obj.json, "Service").map_err(|p| refuse(label.clone(), p))?;
                    check_service(&mut s, &obj.name, namespace)
                        .map_err(|p| refuse(label.clone(), p))?;
                    if !service_names.insert(obj.name.clone()) {
                        return Err(refuse(label, Problem::DuplicateService(obj.name)));
                    }
                    services.push(s);
                }
                _ => return Err(refuse(label, Problem::Kind)),
            }
        }
        let deployment = match <[Deployment; 1]>::try_from(deployments) {
            Ok([d]) => d,
            Err(found) => {
                return Err(refuse(
                    "output".into(),
                    Problem::DeploymentCount(found.len()),
                ));
            }
        };
        Ok(Self {
            component: component.to_owned(),
            deployment,
            services,
            rules: source.clone(),
            rules_digest: rules_digest.to_owned(),
        })
    }

    /// Every object, Deployment first.
    pub fn objects(&self) -> impl Iterator<Item = Object<'_>> {
        std::iter::once(Object::Deployment(&self.deployment))
            .chain(self.services.iter().map(Object::Service))
    }
}

/// One object of a [`Rendered`] set; serializes as the object itself.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Object<'a> {
    /// The Deployment.
    Deployment(&'a Deployment),
    /// A Service.
    Service(&'a Service),
}

impl Object<'_> {
    /// Which object this is.
    pub fn reference(&self) -> ObjectRef {
        match self {
            Object::Deployment(d) => ObjectRef::of("apps/v1", "Deployment", &d.metadata),
            Object::Service(s) => ObjectRef::of("v1", "Service", &s.metadata),
        }
    }
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

    /// The API group (empty for the core group).
    pub fn group(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map_or("", |(group, _)| group)
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

/// Parse `json` into a Kubernetes type, refusing fields the type does not know: serde
/// would drop them without a word, and the object applied would not be the one built.
fn parse<T: DeserializeOwned + Serialize>(json: &str, kind: &'static str) -> Result<T, Problem> {
    // One typed pass that notes any field the type skips: what valid objects take. Only
    // when it fails or skips something does the slower pass below run, for the error's
    // field path and its rule that an unknown field set to null is absent, not unknown.
    let mut skipped = false;
    let mut de = serde_json::Deserializer::from_str(json);
    let parsed = serde_ignored::deserialize(&mut de, |_| skipped = true).and_then(|parsed| {
        de.end()?;
        Ok(parsed)
    });
    match parsed {
        Ok(parsed) if !skipped => Ok(parsed),
        _ => parse_with_paths(json, kind),
    }
}

/// [`parse`] through a JSON tree: slower, but it names the field at fault.
fn parse_with_paths<T: DeserializeOwned + Serialize>(
    json: &str,
    kind: &'static str,
) -> Result<T, Problem> {
    let malformed = |message: String| Problem::Malformed { kind, message };
    let original: Value = serde_json::from_str(json).map_err(|e| malformed(e.to_string()))?;
    let parsed: T = serde_path_to_error::deserialize(&original).map_err(|e| {
        let path = e.path().to_string();
        malformed(format!("{path}: {}", e.into_inner()))
    })?;
    if let Some(path) = unknown_field(&original, &value(&parsed), String::new()) {
        return Err(Problem::UnknownField { kind, path });
    }
    Ok(parsed)
}

/// The first field of `original` that is missing from `known` (the object parsed and
/// serialized again), as a path like `spec.template.spec.containers[0].privileged`.
/// Nulls are skipped: they mean "absent" to Kubernetes too.
fn unknown_field(original: &Value, known: &Value, path: String) -> Option<String> {
    match (original, known) {
        (Value::Object(fields), Value::Object(known_fields)) => {
            fields.iter().find_map(|(key, value)| {
                let field = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match known_fields.get(key) {
                    _ if value.is_null() => None,
                    None => Some(field),
                    Some(known) => unknown_field(value, known, field),
                }
            })
        }
        (Value::Array(items), Value::Array(known_items)) => items
            .iter()
            .zip(known_items)
            .enumerate()
            .find_map(|(i, (item, known))| unknown_field(item, known, format!("{path}[{i}]"))),
        _ => None,
    }
}

fn check_deployment(d: &mut Deployment, declared: &str, namespace: &str) -> Result<(), Problem> {
    place(&mut d.metadata, declared, namespace)?;
    if !is_dns_subdomain(declared) {
        return Err(Problem::InvalidName {
            name: declared.to_owned(),
            rule: "DNS-1123 subdomain (lower-case letters, digits, '-' and '.', at most 253 characters)",
        });
    }
    check_labels("metadata.labels", d.metadata.labels.as_ref())?;
    let spec = d.spec.as_ref().ok_or(Problem::NoSpec)?;
    let pod_labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref());
    check_labels("spec.template.metadata.labels", pod_labels)?;
    check_labels(
        "spec.selector.matchLabels",
        spec.selector.match_labels.as_ref(),
    )?;
    selects(&spec.selector, pod_labels.unwrap_or(&BTreeMap::new())).map_err(Problem::Selector)
}

fn check_service(s: &mut Service, declared: &str, namespace: &str) -> Result<(), Problem> {
    place(&mut s.metadata, declared, namespace)?;
    if !is_dns_label(declared) || !declared.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(Problem::InvalidName {
            name: declared.to_owned(),
            rule: "DNS-1035 label (lower-case letters, digits and '-', starting with a letter, at most 63 characters)",
        });
    }
    check_labels("metadata.labels", s.metadata.labels.as_ref())?;
    let selector = s.spec.as_ref().and_then(|spec| spec.selector.as_ref());
    check_labels("spec.selector", selector)
}

/// Check the object's name and set its namespace to the target.
fn place(meta: &mut ObjectMeta, declared: &str, namespace: &str) -> Result<(), Problem> {
    if meta.name.as_deref() != Some(declared) {
        return Err(Problem::NameMismatch {
            found: meta.name.clone(),
        });
    }
    match meta.namespace.as_deref() {
        None | Some("") => meta.namespace = Some(namespace.to_owned()),
        Some(ns) if ns == namespace => {}
        Some(ns) => {
            return Err(Problem::Namespace {
                found: ns.to_owned(),
                target: namespace.to_owned(),
            });
        }
    }
    Ok(())
}

/// Whether the selector is non-empty and matches `labels`, as the API server requires of
/// a Deployment (`selector does not match template labels`).
fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> Result<(), String> {
    let selector = Selector::new(selector).map_err(|e| e.to_string())?;
    match selector.first_unmatched(labels) {
        None => Ok(()),
        Some(Requirement::Equals(key, value)) => Err(format!(
            "requires {key}={value}, which the pod template labels do not have"
        )),
        Some(other) => Err(format!(
            "requires {other}, which the pod template labels do not meet"
        )),
    }
}

fn check_labels(path: &str, labels: Option<&BTreeMap<String, String>>) -> Result<(), Problem> {
    for (key, value) in labels.into_iter().flatten() {
        let invalid = |message: String| Problem::InvalidLabel {
            path: format!("{path}.{key}"),
            message,
        };
        let (prefix, name) = match key.rsplit_once('/') {
            Some((prefix, name)) => (Some(prefix), name),
            None => (None, key.as_str()),
        };
        if !prefix.is_none_or(is_dns_subdomain) || !is_label_name(name) {
            return Err(invalid(format!("{key:?} is not a valid label key")));
        }
        if !value.is_empty() && !is_label_name(value) {
            return Err(invalid(format!("{value:?} is not a valid label value")));
        }
    }
    Ok(())
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    b.len() <= 63
        && b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && b.iter().all(|c| alnum(c) || *c == b'-')
}

/// DNS-1123 labels joined by '.', at most 253 characters.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// A label name or value: at most 63 of `[A-Za-z0-9._-]`, alphanumeric at both ends.
fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() <= 63
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn value(object: &impl Serialize) -> serde_json::Value {
    // k8s-openapi types always serialize to JSON.
    serde_json::to_value(object).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    fn check(objects: Vec<RawObject>) -> Result<Rendered, String> {
        Rendered::from_objects(&Source::Default, "", "web", objects, "team")
            .map_err(|e| e.to_string())
    }

    fn problem(objects: Vec<RawObject>) -> Problem {
        Rendered::from_objects(&Source::Default, "", "web", objects, "team")
            .expect_err("refused")
            .problem
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
                "ClusterRoleBinding/root: berth accepts only apps/v1 Deployments and v1 Services"
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
        assert_eq!(p, Problem::DuplicateService("a".into()));
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
}
