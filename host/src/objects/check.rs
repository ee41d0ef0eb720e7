//! Checks of names, namespaces, labels and selectors, as the API server makes them.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use kube::api::DynamicObject;
use serde_json::Value;

use super::Problem;
use super::strict::{known, parse};
use crate::runtime::RawObject;
use crate::selector::{Requirement, Selector};

pub(super) fn check_deployment(
    d: &mut Deployment,
    declared: &str,
    namespace: &str,
) -> Result<(), Problem> {
    place(&mut d.metadata, declared, namespace)?;
    if !is_dns_subdomain(declared) {
        return Err(Problem::InvalidName {
            name: declared.to_owned(),
            rule: SUBDOMAIN,
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

pub(super) fn check_service(
    s: &mut Service,
    declared: &str,
    namespace: &str,
) -> Result<(), Problem> {
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

/// Check an object of any kind but the Deployment and Services: parsed strictly when
/// berth's Kubernetes types know its kind and version, else by shape (`apiVersion` and
/// `kind` as declared, metadata with no unknown field); its name, namespace and labels.
/// The API server validates the rest when it is applied.
pub(super) fn check_other(obj: &RawObject, namespace: &str) -> Result<DynamicObject, Problem> {
    let malformed = |message: String| Problem::Malformed {
        kind: obj.kind.clone(),
        message,
    };
    let value = match known(&obj.api_version, &obj.kind, &obj.json) {
        Some(parsed) => parsed?,
        None => {
            let value: Value =
                serde_json::from_str(&obj.json).map_err(|e| malformed(e.to_string()))?;
            for (field, declared) in [("apiVersion", &obj.api_version), ("kind", &obj.kind)] {
                if value.get(field).and_then(Value::as_str) != Some(declared.as_str()) {
                    return Err(malformed(format!(
                        "{field} {} differs from the declared {declared:?}",
                        value.get(field).unwrap_or(&Value::Null)
                    )));
                }
            }
            let metadata = value.get("metadata").cloned().unwrap_or(Value::Null);
            if !metadata.is_object() {
                return Err(malformed("metadata is not an object".into()));
            }
            let _: ObjectMeta = parse(&metadata.to_string(), "ObjectMeta")?;
            value
        }
    };
    let mut object: DynamicObject =
        serde_json::from_value(value).map_err(|e| malformed(e.to_string()))?;
    place(&mut object.metadata, &obj.name, namespace)?;
    if !is_dns_subdomain(&obj.name) {
        return Err(Problem::InvalidName {
            name: obj.name.clone(),
            rule: SUBDOMAIN,
        });
    }
    check_labels("metadata.labels", object.metadata.labels.as_ref())?;
    Ok(object)
}

const SUBDOMAIN: &str =
    "DNS-1123 subdomain (lower-case letters, digits, '-' and '.', at most 253 characters)";

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
