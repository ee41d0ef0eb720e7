//! The controller: `Component` resources reconciled on the cluster with the platform
//! team's rules, through the same engine the CLI's verbs use.

mod lease;
mod manifests;
mod metrics;
mod quiet;
mod rbac;
mod reconcile;
mod remedy;
mod resource;
mod status;

use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use kube::Client;
use kube::api::Api;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef as Key;
use kube::runtime::{Controller as Runtime, watcher};

pub use lease::{DEFAULT_LEASE_DURATION, LeaseConfig};
pub use manifests::Install;
pub use metrics::Metrics;
pub use rbac::{SERVICE_ACCOUNT, rbac};
pub use reconcile::{DELETION_POLICY, FINALIZER, RECONCILE_REQUESTED_AT};
pub use resource::{Component, ComponentSpec, ComponentStatus, Condition, Inventory, Remediation};

use crate::cluster::{Cluster, ClusterError, Gate, Watched};
use crate::{Rules, SiteConfig};
use lease::Elector;
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
    /// Leader election asked of a connection berth did not make: nothing could keep a
    /// replica that does not lead from writing.
    #[error("leader election needs a connection made by Cluster::connect (its writes gated)")]
    Ungated,
    /// Applying the component's objects failed (its status says why; retried).
    #[error("{0}")]
    Apply(String),
}

/// What the controller did or saw, for its log.
#[derive(Debug)]
#[non_exhaustive]
pub enum Happening {
    /// One reconcile of the Component `namespace/name`: `Ok`, or why it failed (tried
    /// again after a back-off).
    Reconciled {
        /// `namespace/name`.
        component: String,
        /// The generation of its spec it saw.
        generation: Option<i64>,
        /// How long it took.
        took: std::time::Duration,
        /// How it ended.
        outcome: Result<(), String>,
    },
    /// A watch failed (it starts again after a back-off).
    WatchFailed(String),
    /// This replica now leads (`true`: it reconciles) or no longer does.
    Leading(bool),
    /// The Lease could not be read or written: why (tried again).
    LeaseFailed(String),
}

/// The controller of `Component` resources. Defaults, as policy: every namespace; the
/// rules and site config given, which no Component can replace; at most 4 reconciles at
/// once, never two of one Component; no leader election (one replica).
pub struct Controller {
    client: Client,
    gate: Option<Gate>,
    rules: Rules,
    site: SiteConfig,
    namespaces: Vec<String>,
    lease: Option<LeaseConfig>,
    metrics: Metrics,
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
        let controller = Self {
            client: cluster.client().clone(),
            gate: cluster.gate().cloned(),
            rules,
            site,
            namespaces: Vec::new(),
            lease: None,
            metrics: Metrics::default(),
        };
        if let Some(gate) = &controller.gate {
            controller.metrics.count(gate.clone());
        }
        controller
    }

    /// Its metrics and readiness, to serve while it runs.
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// Run as one of several replicas: only the one holding `lease` reconciles, and a
    /// replica writes nothing unless it does (see [`LeaseConfig`]).
    pub fn leader_election(mut self, lease: LeaseConfig) -> Self {
        self.lease = Some(lease);
        self
    }

    /// Watch only these namespaces (none: all).
    pub fn namespaces(mut self, namespaces: Vec<String>) -> Self {
        self.namespaces = namespaces;
        self
    }

    /// Reconcile until SIGINT or SIGTERM, telling `seen` what happens. With leader
    /// election, only while this replica leads; a signal then hands the Lease over. The
    /// election is a task of its own: on a multi-threaded runtime it renews the Lease
    /// whatever the reconciles do.
    pub async fn run(self, mut seen: impl FnMut(Happening)) -> Result<(), ControllerError> {
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
            metrics: self.metrics.clone(),
            told: std::sync::Mutex::default(),
            quiet: quiet::Quiet::default(),
        });
        let metrics = self.metrics;
        let scopes: Vec<Option<String>> = if self.namespaces.is_empty() {
            vec![None]
        } else {
            self.namespaces.into_iter().map(Some).collect()
        };
        let Some(lease) = self.lease else {
            // One replica: it leads from the start, and is ready once its caches are.
            metrics.lease_seen();
            metrics.leading(true);
            let (mut all, synced) = reconcilers(&self.client, &scopes, &context, true);
            let synced = synced.then(|()| async { metrics.synced() }).fuse();
            tokio::pin!(synced);
            loop {
                tokio::select! {
                    result = all.next() => match result {
                        Some(result) => seen(happening(result, &context)),
                        None => return Ok(()),
                    },
                    () = &mut synced => {}
                }
            }
        };
        let gate = self.gate.ok_or(ControllerError::Ungated)?;
        let (elector, mut leading, mut failures) =
            Elector::new(self.client.clone(), lease, gate, metrics.clone());
        let work = async {
            loop {
                // Until it leads, saying why it cannot when the Lease fails.
                loop {
                    tokio::select! {
                        led = leading.wait_for(|l| *l) => match led {
                            Ok(_) => break,
                            Err(_) => return,
                        },
                        Some(why) = failures.recv() => seen(Happening::LeaseFailed(why)),
                    }
                }
                seen(Happening::Leading(true));
                metrics.leading(true);
                // Fresh watches each term: what was cached before may be old.
                let (mut all, synced) = reconcilers(&self.client, &scopes, &context, false);
                let synced = synced.then(|()| async { metrics.synced() }).fuse();
                tokio::pin!(synced);
                loop {
                    tokio::select! {
                        result = all.next() => match result {
                            Some(result) => seen(happening(result, &context)),
                            None => break,
                        },
                        () = &mut synced => {}
                        Some(why) = failures.recv() => seen(Happening::LeaseFailed(why)),
                        _ = leading.wait_for(|l| !*l) => break,
                    }
                }
                metrics.leading(false);
                seen(Happening::Leading(false));
            }
        };
        // A task of its own: on a runtime with worker threads, a slow build of the rules
        // in a reconcile does not hold up the renewals.
        let election = tokio::spawn(elector.run(signalled()));
        tokio::select! {
            _ = election => {}
            () = work => {}
        }
        Ok(())
    }
}

/// What kube's controller runtime says of each reconcile, or of a watch that failed.
type Outcome = Result<
    (Key<Component>, kube::runtime::controller::Action),
    kube::runtime::controller::Error<ControllerError, watcher::Error>,
>;

/// The reconcilers of every scope, as one stream, and a future done once each has its
/// cache of Components; `on_signal`: each ends gracefully on SIGINT or SIGTERM (else it
/// ends when dropped). Each reconciles a Component when it changes, and when one of the
/// objects its label names changes (the watches that keep their versions tell).
fn reconcilers(
    client: &Client,
    scopes: &[Option<String>],
    context: &Arc<Context>,
    on_signal: bool,
) -> (
    futures::stream::BoxStream<'static, Outcome>,
    futures::future::BoxFuture<'static, ()>,
) {
    // What the last term left is not what these watches will show.
    context.quiet.forget_all();
    let mut stores = Vec::new();
    let runs: Vec<_> = scopes
        .iter()
        .map(|namespace| {
            let components = match namespace {
                Some(ns) => Api::<Component>::namespaced(client.clone(), ns),
                None => Api::<Component>::all(client.clone()),
            };
            let (changed, changes) = futures::channel::mpsc::unbounded();
            let watched = Watched::new(client.clone(), namespace.clone(), changed);
            // The Component of the same name as the component the labels name.
            let changes =
                changes.map(|(ns, component): (String, String)| Key::new(&component).within(&ns));
            let runtime =
                Runtime::new(components, watcher::Config::default()).reconcile_on(changes);
            stores.push(runtime.store());
            let runtime = if on_signal {
                runtime.shutdown_on_signal()
            } else {
                runtime
            };
            runtime
                .run(
                    move |component, context: Arc<Context>| {
                        let watched = watched.clone();
                        async move {
                            let key = Key::from_obj(&*component);
                            let generation = component.metadata.generation;
                            let started = std::time::Instant::now();
                            let result = reconcile(component, context.clone(), watched).await;
                            let took = started.elapsed();
                            context.metrics.reconciled(result.is_ok(), took);
                            context
                                .told
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .insert(key.clone(), (generation, took));
                            if result.is_ok() {
                                let mut failures = context
                                    .failures
                                    .lock()
                                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                                failures.remove(&key);
                            }
                            result
                        }
                    },
                    error_policy,
                    context.clone(),
                )
                .boxed()
        })
        .collect();
    let synced = async move {
        for store in stores {
            // Err: the store's writer is gone, and the reconciler with it.
            let _ = store.wait_until_ready().await;
        }
    };
    (futures::stream::select_all(runs).boxed(), synced.boxed())
}

/// What a reconciler's result says happened (with what the reconcile left in `context`).
fn happening(result: Outcome, context: &Context) -> Happening {
    let reconciled = |key: &Key<Component>, outcome| {
        let mut told = context
            .told
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (generation, took) = told.remove(key).unwrap_or_default();
        Happening::Reconciled {
            component: name(key.namespace.as_deref(), &key.name),
            generation,
            took,
            outcome,
        }
    };
    match result {
        Ok((key, _)) => reconciled(&key, Ok(())),
        Err(kube::runtime::controller::Error::ReconcilerFailed(error, key)) => {
            let key = Key::new(&key.name).within(key.namespace.as_deref().unwrap_or_default());
            reconciled(&key, Err(crate::one_line::one_line(&error)))
        }
        Err(other) => Happening::WatchFailed(crate::one_line::one_line(&other)),
    }
}

/// Done at the first SIGINT or SIGTERM.
async fn signalled() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut terminate) = signal(SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
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
