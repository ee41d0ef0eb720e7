//! Label selectors with their full semantics, `matchLabels` and `matchExpressions`: one type
//! for the object checks (does a Deployment select its own pods?) and for the lookups of a
//! component's pods and ReplicaSets, so a lookup never approximates what the cluster selects.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` (a `matchLabels` entry).
    Equals(String, String),
    /// `key in (values)`.
    In(String, Vec<String>),
    /// `key notin (values)`: also true when the label is absent.
    NotIn(String, Vec<String>),
    /// `key`: the label is present.
    Exists(String),
    /// `!key`: the label is absent.
    DoesNotExist(String),
}

/// A label selector: every requirement must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

/// A selector berth will not use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// No requirement at all: it would select every object of the namespace.
    #[error("is empty: it would select every pod of the namespace")]
    Empty,
    /// An operator Kubernetes does not have.
    #[error("matchExpressions[{index}]: unknown operator {operator:?}")]
    Operator {
        /// Which expression.
        index: usize,
        /// The operator found.
        operator: String,
    },
    /// `In`/`NotIn` without values, or `Exists`/`DoesNotExist` with some.
    #[error("matchExpressions[{index}]: {operator} {problem}")]
    Values {
        /// Which expression.
        index: usize,
        /// Its operator.
        operator: String,
        /// What is wrong with its values.
        problem: &'static str,
    },
}

impl Selector {
    /// The selector a Kubernetes `LabelSelector` means. Refuses an empty one.
    pub fn new(selector: &LabelSelector) -> Result<Self, SelectorError> {
        let mut requirements: Vec<Requirement> = selector
            .match_labels
            .iter()
            .flatten()
            .map(|(k, v)| Requirement::Equals(k.clone(), v.clone()))
            .collect();
        for (index, e) in selector.match_expressions.iter().flatten().enumerate() {
            let values = e.values.clone().unwrap_or_default();
            let problem = |problem| SelectorError::Values {
                index,
                operator: e.operator.clone(),
                problem,
            };
            let requirement = match e.operator.as_str() {
                "In" | "NotIn" if values.is_empty() => return Err(problem("needs values")),
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    return Err(problem("takes no values"));
                }
                "In" => Requirement::In(e.key.clone(), values),
                "NotIn" => Requirement::NotIn(e.key.clone(), values),
                "Exists" => Requirement::Exists(e.key.clone()),
                "DoesNotExist" => Requirement::DoesNotExist(e.key.clone()),
                other => {
                    return Err(SelectorError::Operator {
                        index,
                        operator: other.to_owned(),
                    });
                }
            };
            requirements.push(requirement);
        }
        if requirements.is_empty() {
            return Err(SelectorError::Empty);
        }
        Ok(Self { requirements })
    }

    /// Whether objects with `labels` are selected.
    #[cfg(test)]
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.first_unmatched(labels).is_none()
    }

    /// The first requirement `labels` do not meet.
    pub fn first_unmatched(&self, labels: &BTreeMap<String, String>) -> Option<&Requirement> {
        self.requirements.iter().find(|r| {
            let held = match r {
                Requirement::Equals(k, v) => labels.get(k) == Some(v),
                Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
                Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
                Requirement::Exists(k) => labels.contains_key(k),
                Requirement::DoesNotExist(k) => !labels.contains_key(k),
            };
            !held
        })
    }

    /// The selector in the API's query syntax (`app=web,tier in (a,b),!legacy`), for
    /// `labelSelector=` on list and watch requests.
    pub fn to_query(&self) -> String {
        self.requirements
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl std::fmt::Display for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Requirement::Equals(k, v) => write!(f, "{k}={v}"),
            Requirement::In(k, vs) => write!(f, "{k} in ({})", vs.join(",")),
            Requirement::NotIn(k, vs) => write!(f, "{k} notin ({})", vs.join(",")),
            Requirement::Exists(k) => write!(f, "{k}"),
            Requirement::DoesNotExist(k) => write!(f, "!{k}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn selector(value: serde_json::Value) -> Result<Selector, SelectorError> {
        Selector::new(&serde_json::from_value(value).expect("a LabelSelector"))
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn labels_and_expressions_must_all_hold() {
        let s = selector(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "track", "operator": "NotIn", "values": ["canary"]},
                {"key": "team", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist"}
            ]
        }))
        .unwrap();
        assert_eq!(
            s.to_query(),
            "app=web,tier in (a,b),track notin (canary),team,!legacy"
        );
        let pod = [("app", "web"), ("tier", "b"), ("team", "x")];
        assert!(s.matches(&labels(&pod)));
        assert!(s.matches(&labels(&[pod[0], pod[1], pod[2], ("track", "stable")])));
        for (why, l) in [
            ("other app", labels(&[("app", "api"), pod[1], pod[2]])),
            ("tier not in", labels(&[pod[0], ("tier", "c"), pod[2]])),
            ("tier absent", labels(&[pod[0], pod[2]])),
            (
                "canary",
                labels(&[pod[0], pod[1], pod[2], ("track", "canary")]),
            ),
            ("no team", labels(&[pod[0], pod[1]])),
            ("legacy", labels(&[pod[0], pod[1], pod[2], ("legacy", "")])),
        ] {
            assert!(!s.matches(&l), "{why}");
        }
    }

    #[test]
    fn expressions_alone_are_a_selector() {
        let s = selector(
            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}),
        )
        .unwrap();
        assert_eq!(s.to_query(), "app in (web)");
        assert!(s.matches(&labels(&[("app", "web")])));
        assert!(!s.matches(&labels(&[("app", "other")])));
    }

    #[test]
    fn refusals() {
        assert_eq!(selector(json!({})), Err(SelectorError::Empty));
        assert_eq!(
            selector(json!({"matchLabels": {}, "matchExpressions": []})),
            Err(SelectorError::Empty)
        );
        assert_eq!(
            selector(
                json!({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["b"]}]})
            )
            .unwrap_err()
            .to_string(),
            "matchExpressions[0]: unknown operator \"Equals\""
        );
        assert_eq!(
            selector(json!({"matchExpressions": [{"key": "a", "operator": "In"}]}))
                .unwrap_err()
                .to_string(),
            "matchExpressions[0]: In needs values"
        );
        assert_eq!(
            selector(
                json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})
            )
            .unwrap_err()
            .to_string(),
            "matchExpressions[0]: Exists takes no values"
        );
    }
}
