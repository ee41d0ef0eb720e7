//! Errors of cluster operations, one variant per failing step; API errors carry the API
//! server's own message (`deployments.apps is forbidden: User "x" cannot create …`).

use std::time::Duration;

use super::request::describe;
use super::undo::UndoReport;
use crate::kinds::KindName;
use crate::objects::ObjectRef;

/// Why a cluster operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The kubeconfig file or context could not be used.
    #[error("cannot use the kubeconfig")]
    Kubeconfig(#[source] kube::config::KubeconfigError),
    /// No kubeconfig and no in-cluster service account to fall back on.
    #[error("cannot find a cluster to connect to")]
    InferConfig(#[source] kube::config::InferConfigError),
    /// The HTTP client could not be built from the configuration.
    #[error("cannot set up the cluster client")]
    Client(#[source] kube::Error),
    /// The API server refused or failed a request; the message is the API server's own.
    /// (The client's error is a field, not the `source()`: the message says it already.)
    #[error("{action}: {}", describe(.error))]
    Api {
        /// The step, e.g. `cannot create Service web`.
        action: String,
        /// The client's error.
        error: kube::Error,
    },
    /// No object carries the component's ownership labels.
    #[error("no component {component:?} deployed by berth in namespace {namespace:?}")]
    NotFound {
        /// The component.
        component: String,
        /// The namespace.
        namespace: String,
    },
    /// Several Deployments carry the component's ownership labels.
    #[error(
        "{count} Deployments in namespace {namespace:?} claim component {component:?}; remove the extra ones"
    )]
    Ambiguous {
        /// The component.
        component: String,
        /// The namespace.
        namespace: String,
        /// How many there are.
        count: usize,
    },
    /// An object of the same name exists and belongs to something else.
    #[error(
        "{} {:?} already exists in namespace {:?} and is not berth's {component:?}; refusing to take it over",
        object.kind, object.name, object.namespace.as_deref().unwrap_or_default()
    )]
    Foreign {
        /// The object found.
        object: Box<ObjectRef>,
        /// The component being deployed.
        component: String,
    },
    /// A deploy failed; what it had changed was put back. (Why is a field, not the
    /// `source()`: the message says it already.)
    #[error("{error} (rolled back: {})", describe_undone(.undone))]
    RolledBack {
        /// Why the deploy failed.
        error: Box<ClusterError>,
        /// What was put back, and what could not be.
        undone: Box<UndoReport>,
    },
    /// Watching an object failed. (What failed is a field, not the `source()`: the message
    /// says it already.)
    #[error("cannot watch {object}: {error}")]
    Watch {
        /// The object watched.
        object: Box<ObjectRef>,
        /// What failed.
        error: kube::runtime::watcher::Error,
    },
    /// Waiting ran out of time.
    #[error("timed out after {waited:?} waiting for {component:?}: {last}")]
    Timeout {
        /// The component.
        component: String,
        /// How long berth waited.
        waited: Duration,
        /// The last state seen.
        last: String,
    },
    /// The rollout cannot finish.
    #[error("rollout of {component:?} failed: {reason}")]
    RolloutFailed {
        /// The component.
        component: String,
        /// Why, in the Deployment's own words.
        reason: String,
    },
    /// The Deployment went away while waiting.
    #[error("{component:?} was deleted while waiting for it")]
    Deleted {
        /// The component.
        component: String,
    },
    /// No container at the index given.
    #[error("{component:?} has {count} container(s); there is no container index {index}")]
    ContainerIndex {
        /// The component.
        component: String,
        /// The index given.
        index: usize,
        /// How many there are.
        count: usize,
    },
    /// Rollback without history.
    #[error("{component:?} has no previous revision to roll back to")]
    NoHistory {
        /// The component.
        component: String,
    },
    /// Rollback to a revision that is not there.
    #[error("{component:?} has no revision {revision} (known: {})", revisions(.known))]
    UnknownRevision {
        /// The component.
        component: String,
        /// The revision asked for.
        revision: i64,
        /// The revisions there are, in order.
        known: Vec<i64>,
    },
    /// The Deployment's selector cannot be used to find its pods.
    #[error("the Deployment of {component:?}: spec.selector {problem}")]
    Selector {
        /// The component.
        component: String,
        /// What is wrong with the selector.
        #[source]
        problem: crate::selector::SelectorError,
    },
    /// The cluster does not serve a kind the rules built (checked before anything is
    /// created).
    #[error("the cluster does not serve {} {}", kind.api_version, kind.kind)]
    NotServed {
        /// The kind.
        kind: KindName,
    },
    /// The cluster serves a kind the rules built as cluster-scoped.
    #[error("{} {} is cluster-scoped on this cluster; berth applies only namespaced objects", kind.api_version, kind.kind)]
    ClusterScoped {
        /// The kind.
        kind: KindName,
    },
    /// scale on a component whose replica count an autoscaler owns.
    #[error(
        "the replicas of {component:?} are set by its HorizontalPodAutoscaler {autoscaler}; change its minReplicas/maxReplicas instead"
    )]
    Autoscaled {
        /// The component.
        component: String,
        /// The autoscaler.
        autoscaler: String,
    },
    /// A change to a component the controller keeps, made by anyone else (the CLI).
    #[error(
        "{component:?} is kept by {controller} in namespace {namespace:?} (the controller's): change the Component, not the component"
    )]
    Controlled {
        /// The component.
        component: String,
        /// `Component/<name>`.
        controller: String,
        /// The namespace.
        namespace: String,
    },
    /// exec found no running pod.
    #[error("{component:?} has no running pods")]
    NoRunningPods {
        /// The component.
        component: String,
    },
}

impl ClusterError {
    /// Wrap a client error of the step `action`.
    pub fn api(action: impl Into<String>) -> impl FnOnce(kube::Error) -> ClusterError {
        let action = action.into();
        move |error| ClusterError::Api { action, error }
    }

    /// The same error, an API error's step named `action` (a verb's own words for a
    /// step the engine took).
    pub(super) fn named(self, action: String) -> ClusterError {
        match self {
            ClusterError::Api { error, .. } => ClusterError::Api { action, error },
            other => other,
        }
    }
}

fn revisions(known: &[i64]) -> String {
    if known.is_empty() {
        return "none".to_owned();
    }
    known
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_undone(undone: &UndoReport) -> String {
    let names = |objects: &[ObjectRef]| {
        objects
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if !undone.removed.is_empty() {
        parts.push(format!("removed {}", names(&undone.removed)));
    }
    if !undone.restored.is_empty() {
        parts.push(format!("restored {}", names(&undone.restored)));
    }
    if !undone.recreated.is_empty() {
        parts.push(format!("made again {}", names(&undone.recreated)));
    }
    for (object, why) in &undone.failed {
        parts.push(format!("could not restore {object}: {why}"));
    }
    if parts.is_empty() {
        return "nothing had been changed".to_owned();
    }
    parts.join("; ")
}
