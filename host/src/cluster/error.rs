//! Errors of cluster operations, one variant per failing step; API errors carry the API
//! server's own message (`deployments.apps is forbidden: User "x" cannot create …`).

use std::time::Duration;

/// Why a cluster operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No usable kubeconfig or in-cluster configuration.
    #[error("cannot configure the cluster connection: {0}")]
    Config(String),
    /// The API server refused or failed a request.
    #[error("{action}: {}", describe(.error))]
    Api { action: String, error: kube::Error },
    /// No object carries the component's ownership labels.
    #[error("no component {component:?} deployed by berth in namespace {namespace:?}")]
    NotFound {
        component: String,
        namespace: String,
    },
    /// Several Deployments carry the component's ownership labels.
    #[error(
        "{count} Deployments in namespace {namespace:?} claim component {component:?}; remove the extra ones"
    )]
    Ambiguous {
        component: String,
        namespace: String,
        count: usize,
    },
    /// An object of the same name exists and belongs to something else.
    #[error(
        "{kind} {name:?} already exists in namespace {namespace:?} and is not berth's {component:?}; refusing to take it over"
    )]
    Foreign {
        kind: &'static str,
        name: String,
        namespace: String,
        component: String,
    },
    /// A deploy failed; what it had created was removed.
    #[error("{error} (rolled back: {})", if .removed.is_empty() { "nothing had been created".to_owned() } else { format!("removed {}", .removed.join(", ")) })]
    RolledBack {
        error: Box<ClusterError>,
        removed: Vec<String>,
    },
    /// Watching a Deployment failed.
    #[error("cannot watch Deployment {name}: {error}")]
    Watch { name: String, error: String },
    /// Waiting ran out of time.
    #[error("timed out after {waited:?} waiting for {component:?}: {last}")]
    Timeout {
        component: String,
        waited: Duration,
        last: String,
    },
    /// The rollout cannot finish.
    #[error("rollout of {component:?} failed: {reason}")]
    RolloutFailed { component: String, reason: String },
    /// The Deployment went away while waiting.
    #[error("{component:?} was deleted while waiting for it")]
    Deleted { component: String },
    /// No container at the index given.
    #[error("{component:?} has {count} container(s); there is no container index {index}")]
    ContainerIndex {
        component: String,
        index: usize,
        count: usize,
    },
    /// Rollback without history.
    #[error("{component:?} has no previous revision to roll back to")]
    NoHistory { component: String },
    /// Rollback to a revision that is not there.
    #[error("{component:?} has no revision {revision} (known: {known})")]
    UnknownRevision {
        component: String,
        revision: i64,
        known: String,
    },
    /// exec found no running pod.
    #[error("{component:?} has no running pods")]
    NoRunningPods { component: String },
}

impl ClusterError {
    /// Wrap a client error of the step `action`.
    pub fn api(action: impl Into<String>) -> impl FnOnce(kube::Error) -> ClusterError {
        let action = action.into();
        move |error| ClusterError::Api { action, error }
    }
}

/// The API server's message for API errors; the client's for the rest.
fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        kube::Error::Api(status) => format!("{} ({})", status.reason, status.code),
        other => other.to_string(),
    }
}
