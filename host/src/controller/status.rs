//! A Component's status as a value: from what a reconcile found, the conditions kstatus
//! reads (`Ready` always; `Reconciling` and `Stalled` only while true). Pure.

use super::resource::{ComponentStatus, Condition, Inventory};

/// What a reconcile found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The spec does not parse: the field and why.
    InvalidSpec(String),
    /// The rules refused the spec, or built objects the host refuses.
    RulesRefused(String),
    /// Writing the objects failed (retried with back-off).
    ApplyFailed(String),
    /// Applied; the rollout is under way.
    Progressing(String),
    /// Applied and rolled out.
    Succeeded(String),
    /// The rollout cannot finish.
    RolloutFailed(String),
    /// A rollout failed and was rolled back; it is tried again.
    RolledBack(String),
}

impl Found {
    fn reason(&self) -> &'static str {
        match self {
            Found::InvalidSpec(_) => "InvalidSpec",
            Found::RulesRefused(_) => "RulesRefused",
            Found::ApplyFailed(_) => "ApplyFailed",
            Found::Progressing(_) => "Progressing",
            Found::Succeeded(_) => "Succeeded",
            Found::RolloutFailed(_) => "RolloutFailed",
            Found::RolledBack(_) => "RolledBack",
        }
    }

    fn message(&self) -> &str {
        match self {
            Found::InvalidSpec(m)
            | Found::RulesRefused(m)
            | Found::ApplyFailed(m)
            | Found::Progressing(m)
            | Found::Succeeded(m)
            | Found::RolloutFailed(m)
            | Found::RolledBack(m) => m,
        }
    }
}

/// What was applied, when this reconcile or an earlier one applied.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Applied {
    /// The generation applied.
    pub generation: i64,
    /// The rules component's digest.
    pub rules_digest: String,
    /// The kinds and count of the objects.
    pub inventory: Inventory,
}

/// The status after a reconcile of `generation` found `found`, `applied` being what is on
/// the cluster (`None`: keep what `previous` says). A condition whose status does not change
/// keeps its transition time; `now` is the time of one that does.
pub fn status(
    previous: Option<&ComponentStatus>,
    generation: i64,
    found: &Found,
    applied: Option<&Applied>,
    revision: Option<i64>,
    now: &str,
) -> ComponentStatus {
    let previous = previous.cloned().unwrap_or_default();
    let condition = |type_: &str, status: &str| {
        let since = previous
            .conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map_or_else(|| now.to_owned(), |c| c.last_transition_time.clone());
        Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: found.reason().to_owned(),
            message: found.message().to_owned(),
            observed_generation: generation,
            last_transition_time: since,
        }
    };
    let ready = matches!(found, Found::Succeeded(_));
    let mut conditions = vec![condition("Ready", if ready { "True" } else { "False" })];
    match found {
        Found::Progressing(_) | Found::ApplyFailed(_) | Found::RolledBack(_) => {
            conditions.push(condition("Reconciling", "True"));
        }
        Found::InvalidSpec(_) | Found::RulesRefused(_) | Found::RolloutFailed(_) => {
            conditions.push(condition("Stalled", "True"));
        }
        Found::Succeeded(_) => {}
    }
    let mut next = ComponentStatus {
        observed_generation: Some(generation),
        conditions,
        revision: revision.or(previous.revision),
        ..previous.clone()
    };
    if let Some(applied) = applied {
        next.last_applied_generation = Some(applied.generation);
        next.rules_digest = Some(applied.rules_digest.clone());
        next.rules_short_digest = Some(applied.rules_digest.chars().take(12).collect());
        next.inventory = Some(applied.inventory.clone());
    }
    next
}

/// The JSON merge patch that makes the status `previous` into `next`: a field `next` no
/// longer has is set to null (left out, the API server would keep it).
pub fn patch(previous: Option<&ComponentStatus>, next: &ComponentStatus) -> serde_json::Value {
    let mut next = serde_json::to_value(next).unwrap_or_default();
    let before = previous.map(serde_json::to_value).and_then(Result::ok);
    if let (Some(serde_json::Value::Object(before)), serde_json::Value::Object(next)) =
        (before, &mut next)
    {
        for key in before.keys() {
            next.entry(key.clone()).or_insert(serde_json::Value::Null);
        }
    }
    serde_json::json!({ "status": next })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(status: &ComponentStatus) -> Vec<(&str, &str, &str)> {
        status
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
            .collect()
    }

    #[test]
    fn each_finding_sets_the_conditions_kstatus_reads() {
        let cases = [
            (
                Found::Progressing("1 of 2 updated".into()),
                vec![
                    ("Ready", "False", "Progressing"),
                    ("Reconciling", "True", "Progressing"),
                ],
            ),
            (
                Found::Succeeded("rolled out".into()),
                vec![("Ready", "True", "Succeeded")],
            ),
            (
                Found::InvalidSpec("spec.component.ports[1]: bad".into()),
                vec![
                    ("Ready", "False", "InvalidSpec"),
                    ("Stalled", "True", "InvalidSpec"),
                ],
            ),
            (
                Found::RulesRefused("no".into()),
                vec![
                    ("Ready", "False", "RulesRefused"),
                    ("Stalled", "True", "RulesRefused"),
                ],
            ),
            (
                Found::ApplyFailed("503".into()),
                vec![
                    ("Ready", "False", "ApplyFailed"),
                    ("Reconciling", "True", "ApplyFailed"),
                ],
            ),
        ];
        for (found, want) in cases {
            let got = status(None, 3, &found, None, None, "t0");
            assert_eq!(types(&got), want, "{found:?}");
            assert_eq!(got.observed_generation, Some(3));
            assert!(got.conditions.iter().all(|c| c.observed_generation == 3));
            assert!(got.conditions.iter().all(|c| c.message == found.message()));
        }
    }

    #[test]
    fn a_condition_keeps_its_transition_time_until_its_status_changes() {
        let progressing = status(None, 1, &Found::Progressing("a".into()), None, None, "t0");
        let still = status(
            Some(&progressing),
            1,
            &Found::Progressing("b".into()),
            None,
            None,
            "t1",
        );
        assert_eq!(still.conditions[0].last_transition_time, "t0");
        let done = status(
            Some(&still),
            1,
            &Found::Succeeded("c".into()),
            None,
            None,
            "t2",
        );
        assert_eq!(done.conditions[0].last_transition_time, "t2");
        // Unchanged input, unchanged status: a reconcile that finds nothing new writes nothing.
        let again = status(
            Some(&done),
            1,
            &Found::Succeeded("c".into()),
            None,
            None,
            "t3",
        );
        assert_eq!(again, done);
    }

    #[test]
    fn what_was_applied_is_kept_until_something_else_is() {
        let applied = Applied {
            generation: 2,
            rules_digest: "0123456789abcdef".into(),
            inventory: Inventory {
                kinds: vec!["Deployment.apps".into()],
                count: 1,
            },
        };
        let first = status(
            None,
            2,
            &Found::Progressing("x".into()),
            Some(&applied),
            Some(4),
            "t0",
        );
        assert_eq!(first.rules_short_digest.as_deref(), Some("0123456789ab"));
        assert_eq!(first.last_applied_generation, Some(2));
        // A refused generation 3: what runs is still generation 2's.
        let refused = status(
            Some(&first),
            3,
            &Found::InvalidSpec("y".into()),
            None,
            None,
            "t1",
        );
        assert_eq!(refused.last_applied_generation, Some(2));
        assert_eq!(refused.revision, Some(4));
        assert_eq!(refused.observed_generation, Some(3));
    }

    #[test]
    fn a_field_the_status_no_longer_has_is_removed_not_left_as_it_was() {
        let before = ComponentStatus {
            failures: 2,
            last_handled_reconcile_at: Some("1".into()),
            revision: Some(3),
            ..ComponentStatus::default()
        };
        let after = ComponentStatus {
            revision: Some(4),
            ..ComponentStatus::default()
        };
        assert_eq!(
            patch(Some(&before), &after),
            serde_json::json!({"status": {"revision": 4, "failures": null,
                                          "lastHandledReconcileAt": null}})
        );
        assert_eq!(
            patch(None, &after),
            serde_json::json!({"status": {"revision": 4}})
        );
    }
}
