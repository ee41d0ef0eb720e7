//! The controller: `Component` resources reconciled on the cluster with the platform
//! team's rules, through the same engine the CLI's verbs use.

mod rbac;
mod reconcile;
mod remedy;
mod resource;
mod status;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef as Key;
use kube::runtime::{Controller as Runtime, watcher};
use kube::{Client, ResourceExt};

pub use rbac::{SERVICE_ACCOUNT, rbac};
pub use reconcile::{DELETION_POLICY, FINALIZER, RECONCILE_REQUESTED_AT};
pub use resource::{Component, ComponentSpec, ComponentStatus, Condition, Inventory, Remediation};

use crate::cluster::{COMPONENT_LABEL, Cluster, ClusterError, MANAGED_BY, MANAGED_BY_LABEL};
use crate::{Rules, SiteConfig};
use reconcile::{Context, error_policy, reconcile};

/// Reconciles at work at once, over every namespace watched; a rollout holds none.
const CONCURRENCY: usize = 4;

/// Why a reconcile, or the controller, failed.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// A request failed: the engine's, or reading or writing the Component itself (its
    /// status, its finalizer), the API server's words in the message.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// Applying the component's objects failed (its status says why; retried).
    #[error("{0}")]
    Apply(String),
}

/// One reconcile done: which Component, and how it ended.
#[derive(Debug)]
#[non_exhaustive]
pub struct Reconciled {
    /// `namespace/name`; empty when a watch failed rather than a reconcile.
    pub component: String,
    /// `Ok`: done; `Err`: why it failed (tried again after a back-off).
    pub outcome: Result<(), String>,
}

/// The controller of `Component` resources. Defaults, as policy: every namespace; the
/// rules and site config given, which no Component can replace; at most 4 reconciles at
/// once, never two of one Component.
pub struct Controller {
    client: Client,
    rules: Rules,
    site: SiteConfig,
    namespaces: Vec<String>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("namespaces", &self.namespaces)
            .finish_non_exhaustive()
    }
}

impl Controller {
    /// A controller reconciling with `rules` and `site`, over `cluster`'s connection (its
    /// namespace aside).
    pub fn new(cluster: &Cluster, rules: Rules, site: SiteConfig) -> Self {
        Self {
            client: cluster.client().clone(),
            rules,
            site,
            namespaces: Vec::new(),
        }
    }

    /// Watch only these namespaces (none: all).
    pub fn namespaces(mut self, namespaces: Vec<String>) -> Self {
        self.namespaces = namespaces;
        self
    }

    /// Reconcile until SIGINT or SIGTERM, calling `seen` after each reconcile.
    pub async fn run(self, mut seen: impl FnMut(Reconciled)) -> Result<(), ControllerError> {
        let capabilities = Cluster::new(self.client.clone(), "default")
            .capabilities()
            .await?;
        let reporter = Reporter {
            controller: "berth-controller".to_owned(),
            instance: None,
        };
        let context = Arc::new(Context {
            recorder: Recorder::new(self.client.clone(), reporter),
            client: self.client.clone(),
            rules: self.rules,
            site: self.site,
            capabilities,
            failures: std::sync::Mutex::default(),
            turns: tokio::sync::Semaphore::new(CONCURRENCY),
        });
        let scopes: Vec<Option<String>> = if self.namespaces.is_empty() {
            vec![None]
        } else {
            self.namespaces.into_iter().map(Some).collect()
        };
        let runs = scopes.into_iter().map(|namespace| {
            let (components, deployments) = match &namespace {
                Some(ns) => (
                    Api::<Component>::namespaced(self.client.clone(), ns),
                    Api::<Deployment>::namespaced(self.client.clone(), ns),
                ),
                None => (
                    Api::<Component>::all(self.client.clone()),
                    Api::<Deployment>::all(self.client.clone()),
                ),
            };
            let berths =
                watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
            let context = context.clone();
            Runtime::new(components, watcher::Config::default())
                .watches(deployments, berths, |d: Deployment| {
                    // The Component of the same name as the component the labels name.
                    let component = d.labels().get(COMPONENT_LABEL)?.clone();
                    Some(Key::new(&component).within(&d.namespace()?))
                })
                .shutdown_on_signal()
                .run(
                    |component, context: Arc<Context>| async move {
                        let key = Key::from_obj(&*component);
                        let result = reconcile(component, context.clone()).await;
                        if result.is_ok() {
                            let mut failures = context
                                .failures
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner);
                            failures.remove(&key);
                        }
                        result
                    },
                    error_policy,
                    context,
                )
                .boxed()
        });
        let mut all = futures::stream::select_all(runs);
        while let Some(result) = all.next().await {
            let reconciled = match result {
                Ok((key, _)) => Reconciled {
                    component: name(key.namespace.as_deref(), &key.name),
                    outcome: Ok(()),
                },
                Err(kube::runtime::controller::Error::ReconcilerFailed(error, key)) => Reconciled {
                    component: name(key.namespace.as_deref(), &key.name),
                    outcome: Err(crate::one_line::one_line(&error)),
                },
                Err(other) => Reconciled {
                    component: String::new(),
                    outcome: Err(crate::one_line::one_line(&other)),
                },
            };
            seen(reconciled);
        }
        Ok(())
    }
}

/// The CustomResourceDefinition of `Component`, as JSON `kubectl apply` takes.
pub fn crd() -> serde_json::Value {
    use kube::CustomResourceExt;
    serde_json::to_value(Component::crd()).unwrap_or_default()
}

fn name(namespace: Option<&str>, name: &str) -> String {
    format!("{}/{name}", namespace.unwrap_or_default())
}
