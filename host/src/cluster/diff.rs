//! diff: what a deploy would change, object by object — each live object against the API
//! server's dry run of berth's apply (so drift made by someone else shows), and what the
//! deploy would prune.

use kube::api::DynamicObject;
use serde::Serialize;
use serde_json::Value;

use super::apply::comparable;
use super::execute::Done;
use super::inventory::{keeper_of, kinds_of};
use super::plan::{Step, plan, step as plan_step};
use super::resources::Resources;
use super::{Cluster, ClusterError, RENDERED_HASH_ANNOTATION};
use crate::objects::{ObjectRef, Rendered};
use crate::render::Secrets;

/// How one object would change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// It does not exist: deploy would create it.
    Added,
    /// Deploy would change it.
    Changed,
    /// The render no longer builds it: deploy would delete it.
    Deleted,
    /// Deploy would leave it as it is.
    Unchanged,
}

/// One object as it is and as a deploy would leave it, without what the API server keeps
/// for itself (managed fields, resource version, generation, uid, creation time, status).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ObjectDiff {
    /// The object.
    pub object: ObjectRef,
    /// How it would change.
    pub change: Change,
    /// As it is (`None`: absent).
    pub live: Option<Value>,
    /// As deploy would leave it (`None`: deleted).
    pub after: Option<Value>,
}

impl ObjectDiff {
    fn new(object: ObjectRef, live: Option<&DynamicObject>, after: Option<&DynamicObject>) -> Self {
        let change = match (live, after) {
            (None, _) => Change::Added,
            (_, None) => Change::Deleted,
            (Some(live), Some(after)) if comparable(live) == comparable(after) => Change::Unchanged,
            _ => Change::Changed,
        };
        Self {
            object,
            change,
            live: live.map(shown),
            after: after.map(shown),
        }
    }

    /// The object with a Secret's values masked as `kubectl diff` masks them: `***`, or
    /// `*** (before)` and `*** (after)` where a value changes.
    pub fn masked(&self) -> Self {
        let is_secret = self.object.api_version == "v1" && self.object.kind == "Secret";
        let mut masked = self.clone();
        if is_secret {
            let after = self.after.as_ref();
            let live = self.live.as_ref();
            if let Some(l) = masked.live.as_mut() {
                mask(l, after, "before");
            }
            if let Some(a) = masked.after.as_mut() {
                mask(a, live, "after");
            }
        }
        masked
    }

    /// A unified diff of the object as it is and as deploy would leave it, as YAML
    /// (`--- live/…`, `+++ berth/…`); empty when unchanged. Secret values masked unless
    /// `secrets` is [`Secrets::Show`].
    pub fn unified(&self, secrets: Secrets) -> String {
        if self.change == Change::Unchanged {
            return String::new();
        }
        let shown = match secrets {
            Secrets::Mask => self.masked(),
            Secrets::Show => self.clone(),
        };
        let yaml = |v: &Option<Value>| {
            v.as_ref()
                .map(|v| serde_saphyr::to_string(&sorted(v)).unwrap_or_default())
                .unwrap_or_default()
        };
        let (live, after) = (yaml(&shown.live), yaml(&shown.after));
        let o = &self.object;
        let path = format!(
            "{}/{}/{}/{}",
            o.api_version,
            o.kind,
            o.namespace.as_deref().unwrap_or_default(),
            o.name
        );
        similar::TextDiff::from_lines(&live, &after)
            .unified_diff()
            .context_radius(3)
            .header(&format!("live/{path}"), &format!("berth/{path}"))
            .to_string()
    }
}

impl Cluster {
    /// What deploying `rendered` as `component` would change: the plan deploy would carry
    /// out, each step sent as a server-side dry run (so drift made by someone else shows as
    /// a change, and the server's defaults and admission are in the answer), the objects
    /// the render no longer builds as deletions. Nothing is changed. The same refusals as
    /// deploy: a kind the cluster does not serve, an object another owns.
    pub async fn diff(
        &self,
        component: &str,
        rendered: &Rendered,
    ) -> Result<Vec<ObjectDiff>, ClusterError> {
        // A component the controller keeps is compared as the controller applies it (its
        // mark included): the diff shows what the Component's next apply would change.
        let parent = self.owned_parent(component).await?;
        let this = match parent.as_ref().and_then(keeper_of) {
            Some(keeper) => Cluster {
                requests: self.requests.as_keeper(keeper),
                gate: self.gate.clone(),
            },
            None => self.clone(),
        };
        let mut found = Resources::default();
        let members = this.members(component, rendered, &mut found).await?;
        let inventory = parent.as_ref().map(kinds_of);
        let live = this
            .live(component, &members, inventory, &mut found)
            .await?;
        let plan = plan(component, &members, &live)?;
        let dry = this.dry_run();
        let mut diffs = Vec::new();
        for step in &plan.steps {
            let done = dry.consistent_step(component, step).await?;
            let (live, after) = (done.live.as_ref(), done.after.as_ref());
            diffs.push(ObjectDiff::new(done.reference.clone(), live, after));
        }
        Ok(diffs)
    }

    /// `step` as a dry run, its live object and answer one consistent pair: when another
    /// writer (a controller bumping the revision after a rollout) changed the object
    /// between the read and the dry run, it is read again and the step decided again, so a
    /// diff never shows someone else's write as berth's change.
    async fn consistent_step(&self, component: &str, step: &Step) -> Result<Done, ClusterError> {
        let mut step = step.clone();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let done = self.execute_step(component, &step).await?;
            // A dry run keeps the resource version of the object it started from.
            let version = |o: &DynamicObject| o.metadata.resource_version.clone();
            let moved = match (&done.live, &done.after) {
                (Some(live), Some(after)) => version(live) != version(after),
                _ => false,
            };
            let Step::Update { member, .. } = &step else {
                return Ok(done);
            };
            if !moved || attempt == CONSISTENT_READS {
                return Ok(done);
            }
            let now = self.read_member(member).await?;
            step = plan_step(component, member, now.as_ref(), None)?;
        }
    }
}

/// Reads of an object and its dry run until both see the same version of it.
const CONSISTENT_READS: usize = 5;

/// An object as diff shows it: without what the API server keeps for itself.
fn shown(object: &DynamicObject) -> Value {
    let mut value = comparable(object);
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in ["uid", "creationTimestamp", "selfLink"] {
            meta.remove(field);
        }
    }
    value
}

/// Mask the values of a Secret's `data` and `stringData`, marking those that differ from
/// `other`'s with `side`; and berth's hash of the Secret as rendered, from which a short
/// value could be guessed.
fn mask(secret: &mut Value, other: Option<&Value>, side: &str) {
    if let Some(hash) = secret.pointer_mut(&format!(
        "/metadata/annotations/{}",
        RENDERED_HASH_ANNOTATION.replace('/', "~1")
    )) {
        *hash = "***".into();
    }
    for field in ["data", "stringData"] {
        let theirs = other.and_then(|o| o.get(field));
        if let Some(values) = secret.get_mut(field).and_then(Value::as_object_mut) {
            for (key, value) in values.iter_mut() {
                let same = theirs.and_then(|t| t.get(key)) == Some(&*value);
                *value = if same {
                    "***".into()
                } else {
                    format!("*** ({side})").into()
                };
            }
        }
    }
}

/// `value` with every object's keys in order, so both sides print alike.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(values: Value) -> ObjectDiff {
        let object = ObjectRef {
            api_version: "v1".into(),
            kind: "Secret".into(),
            namespace: Some("shop".into()),
            name: "db".into(),
            uid: None,
        };
        ObjectDiff {
            object,
            change: Change::Changed,
            live: Some(json!({"data": {"a": "MQ==", "b": "Mg=="},
                              "metadata": {"annotations": {"berth.dev/rendered-hash": "abc123"}}})),
            after: Some(values),
        }
    }

    #[test]
    fn secret_values_are_masked_and_changes_marked() {
        let diff = secret(json!({"data": {"a": "MQ==", "b": "Mw=="}}));
        let masked = diff.masked();
        assert_eq!(
            masked.live,
            Some(json!({"data": {"a": "***", "b": "*** (before)"},
                        "metadata": {"annotations": {"berth.dev/rendered-hash": "***"}}}))
        );
        assert_eq!(
            masked.after,
            Some(json!({"data": {"a": "***", "b": "*** (after)"}}))
        );
        let text = diff.unified(Secrets::Mask);
        assert!(!text.contains("Mw==") && !text.contains("Mg=="), "{text}");
        assert!(
            text.contains("-  b: '*** (before)'") || text.contains("-  b: \"*** (before)\""),
            "{text}"
        );
        assert!(diff.unified(Secrets::Show).contains("Mw=="));
    }

    #[test]
    fn a_unified_diff_names_both_sides_and_shows_the_change() {
        let object = ObjectRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some("shop".into()),
            name: "dep-web".into(),
            uid: None,
        };
        let diff = ObjectDiff {
            object,
            change: Change::Changed,
            live: Some(json!({"spec": {"replicas": 2, "image": "web:1"}})),
            after: Some(json!({"spec": {"image": "web:2", "replicas": 2}})),
        };
        let text = diff.unified(Secrets::Mask);
        assert!(text.starts_with("--- live/apps/v1/Deployment/shop/dep-web\n+++ berth/apps/v1/Deployment/shop/dep-web\n"), "{text}");
        assert!(
            text.contains("-  image: web:1\n+  image: web:2\n"),
            "{text}"
        );
        assert!(
            !text.contains("-  replicas"),
            "key order does not make a change: {text}"
        );
    }
}
