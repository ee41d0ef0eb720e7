//! Operating components on a Kubernetes cluster: the connection, and finding a component's
//! objects by the ownership labels berth stamps on them, whatever the rules named them.

mod applied;
mod apply;
mod current;
mod deploy;
mod diff;
mod discovery;
mod error;
mod exec;
mod execute;
mod gate;
mod gone;
mod history;
mod inventory;
mod list;
mod owned;
mod owners;
mod plan;
mod release;
mod removal;
mod request;
mod resources;
mod retry;
mod rollout;
mod undeploy;
mod undo;
mod watched;

use std::path::PathBuf;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams};
use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tower::buffer::BufferLayer;
use tower::retry::RetryLayer;

use request::Requests;

pub use apply::Action;
pub use deploy::DeployReport;
pub use diff::{Change, ObjectDiff};
pub use error::ClusterError;
pub use exec::{ExecLine, ExecOutcome, Stream};
pub use gate::{Gate, Sent};
pub use history::{Revision, Rollback};
pub use inventory::applyset_id;
pub use list::{ComponentSummary, Scope};
pub use owners::TakenOver;
pub use rollout::{RolloutState, Scaled, Status, Upgraded};
pub use undeploy::UndeployReport;
pub use undo::UndoReport;
pub(crate) use watched::{Read, Snapshot, Watched};

use request::FIELD_MANAGER;
pub use request::{COMPONENT_LABEL, CONTROLLED_BY_ANNOTATION, MANAGED_BY, MANAGED_BY_LABEL};
/// Annotation with the hash of the object as the rules built it, to tell "unchanged".
pub const RENDERED_HASH_ANNOTATION: &str = "berth.dev/rendered-hash";
/// Annotation with the SHA-256 of the rules component that built the object
/// (`sha256:<hex>`).
pub const RULES_DIGEST_ANNOTATION: &str = "berth.dev/rules-digest";

/// Where to find the cluster, like kubectl's flags.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// Kubeconfig file; default `$KUBECONFIG`, `~/.kube/config`, then in-cluster.
    pub kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig to use; default its current context.
    pub context: Option<String>,
    /// Namespace; default the context's, else `default`.
    pub namespace: Option<String>,
}

/// A connection to one namespace of a cluster.
#[derive(Clone)]
pub struct Cluster {
    requests: Requests,
    /// The gate every write of the connection passes, when berth made the connection.
    gate: Option<Gate>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("namespace", &self.requests.namespace())
            .field("dry_run", &self.requests.is_dry_run())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Connect as `connection` says: an explicit kubeconfig file or context, else the
    /// standard inference (`KUBECONFIG`, `~/.kube/config`, in-cluster service account).
    pub async fn connect(connection: &Connection) -> Result<Self, ClusterError> {
        let options = KubeConfigOptions {
            context: connection.context.clone(),
            ..KubeConfigOptions::default()
        };
        let mut config = match &connection.kubeconfig {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(path).map_err(ClusterError::Kubeconfig)?;
                Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(ClusterError::Kubeconfig)?
            }
            None if connection.context.is_some() => Config::from_kubeconfig(&options)
                .await
                .map_err(ClusterError::Kubeconfig)?,
            None => Config::infer().await.map_err(ClusterError::InferConfig)?,
        };
        let namespace = connection
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        // kube's own retries would also repeat a write after a gateway timeout, and wait up
        // to minutes; berth's are bounded and leave writes that may have happened alone.
        config.default_retry = false;
        let gate = Gate::default();
        let client = ClientBuilder::try_from(config)
            .map_err(ClusterError::Client)?
            // Under the retries: each attempt passes it.
            .with_layer(&gate::GateLayer(gate.clone()))
            // The retry layer sends a request again, so the service under it is shared.
            .with_layer(&BufferLayer::new(1024))
            .with_layer(&RetryLayer::new(retry::Transient::new()))
            .build();
        let mut cluster = Self::new(client, namespace);
        cluster.gate = Some(gate);
        Ok(cluster)
    }

    /// Use an existing client in `namespace` (its writes pass no gate of berth's).
    pub fn new(client: Client, namespace: impl Into<String>) -> Self {
        Self {
            requests: Requests::new(client, namespace.into()),
            gate: None,
        }
    }

    /// The gate every write of this connection passes: open unless a controller that
    /// does not lead closed it. `None` for a connection made with [`Cluster::new`].
    pub fn gate(&self) -> Option<&Gate> {
        self.gate.as_ref()
    }

    /// This connection with every write a server-side dry run (`dryRun=All`): the API
    /// server admits and validates each request as it would, and persists nothing.
    pub fn dry_run(&self) -> Self {
        Self {
            requests: self.requests.dry_run(),
            gate: self.gate.clone(),
        }
    }

    /// This connection as the controller keeping Component `name`: what it applies is
    /// marked as kept by that Component, which it alone may change.
    pub(crate) fn for_component(&self, name: &str) -> Self {
        Self {
            requests: self.requests.for_component(name),
            gate: self.gate.clone(),
        }
    }

    /// Refuse to change `component` when another (a Component) keeps it: `meta` is one of
    /// its objects as read.
    fn not_kept_by_another(&self, component: &str, meta: &ObjectMeta) -> Result<(), ClusterError> {
        match self.requests.kept_by_another(meta) {
            None => Ok(()),
            Some(controller) => Err(ClusterError::Controlled {
                component: component.to_owned(),
                controller,
                namespace: self.namespace().to_owned(),
            }),
        }
    }

    /// Whether writes are server-side dry runs.
    pub fn is_dry_run(&self) -> bool {
        self.requests.is_dry_run()
    }

    /// The client, for what the request layer does not send (exec streams).
    pub(crate) fn client(&self) -> &Client {
        self.requests.client()
    }

    /// The namespace operated on.
    pub fn namespace(&self) -> &str {
        self.requests.namespace()
    }

    fn deployments(&self) -> Api<Deployment> {
        self.requests.typed()
    }

    /// The Deployment of `component`, found by berth's ownership labels.
    pub async fn find_deployment(&self, component: &str) -> Result<Deployment, ClusterError> {
        let mut found = self.find_deployments(component).await?;
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(ClusterError::NotFound {
                component: component.to_owned(),
                namespace: self.namespace().to_owned(),
            }),
            n => Err(ClusterError::Ambiguous {
                component: component.to_owned(),
                namespace: self.namespace().to_owned(),
                count: n,
            }),
        }
    }

    /// Every Deployment carrying `component`'s ownership labels (one, unless rules renamed
    /// it and the old one awaits pruning).
    async fn find_deployments(&self, component: &str) -> Result<Vec<Deployment>, ClusterError> {
        Ok(self
            .deployments()
            .list(&owned_by(component))
            .await
            .map_err(ClusterError::api(format!(
                "cannot list Deployments in namespace {}",
                self.namespace()
            )))?
            .items)
    }
}

/// Selector of the objects berth manages for `component`.
fn owned_by(component: &str) -> ListParams {
    ListParams::default().labels(&format!(
        "{MANAGED_BY_LABEL}={MANAGED_BY},{COMPONENT_LABEL}={component}"
    ))
}

/// The name of an object, for messages.
fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}
