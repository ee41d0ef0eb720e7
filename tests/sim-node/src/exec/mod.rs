//! The kubelet exec endpoint: TLS, WebSocket upgrade, channel protocol, real processes.

mod protocol;
mod request;
mod session;

use std::{path::PathBuf, sync::Arc};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::{
    self,
    handshake::server::{ErrorResponse, Request, Response},
    http::{HeaderValue, StatusCode, header::SEC_WEBSOCKET_PROTOCOL},
};

pub use protocol::Protocol;
pub use request::ExecRequest;

use crate::{
    process,
    runtime::{Key, Life, PodRuntime, Runtime},
};

/// Why one exec connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("TLS handshake: {0}")]
    Tls(#[source] std::io::Error),
    #[error("setting TCP_NODELAY: {0}")]
    Socket(#[source] std::io::Error),
    #[error("WebSocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
    #[error("preparing the pod directory {path}: {source}")]
    WorkDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What exec sessions share: the pods' containers and how to read pod specs.
#[derive(Clone)]
pub struct ExecContext {
    client: kube::Client,
    runtime: Arc<Runtime>,
}

impl std::fmt::Debug for ExecContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecContext")
            .field("runtime", &self.runtime)
            .finish_non_exhaustive()
    }
}

/// What an exec session needs to know of its pod.
struct Target {
    /// Literal `env` values of the container.
    env: Vec<(String, String)>,
    /// The pod's containers, whose end ends the session.
    pod: Option<Arc<PodRuntime>>,
}

impl ExecContext {
    pub fn new(client: kube::Client, runtime: Arc<Runtime>) -> Self {
        Self { client, runtime }
    }

    fn key(req: &ExecRequest) -> Key {
        (req.namespace.clone(), req.pod.clone())
    }

    /// The scratch directory of a pod, where its commands run.
    fn pod_dir(&self, req: &ExecRequest) -> PathBuf {
        self.runtime.pod_dir(&Self::key(req))
    }

    /// Whether the pod's containers are gone (its grace period is over).
    fn stopped(&self, req: &ExecRequest) -> bool {
        self.runtime
            .find(&Self::key(req))
            .is_some_and(|p| p.life() == Life::Stopped)
    }

    /// The container's environment and the pod's runtime, best effort (no environment if
    /// the pod is unreadable).
    async fn target(&self, req: &ExecRequest) -> Target {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &req.namespace);
        let Ok(pod) = api.get(&req.pod).await else {
            return Target {
                env: Vec::new(),
                pod: self.runtime.find(&Self::key(req)),
            };
        };
        let env = pod
            .spec
            .iter()
            .flat_map(|s| &s.containers)
            .filter(|c| c.name == req.container)
            .flat_map(process::literal_env)
            .collect();
        let uid = pod.metadata.uid.unwrap_or_default();
        Target {
            env,
            pod: Some(self.runtime.track(&Self::key(req), &uid)),
        }
    }
}

/// Accepts kubelet connections forever, one task per connection.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ctx: Arc<ExecContext>,
) -> std::io::Result<()> {
    loop {
        let (tcp, peer) = listener.accept().await?;
        let acceptor = acceptor.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(tcp, acceptor, &ctx).await {
                eprintln!("sim-node: exec connection from {peer}: {e}");
            }
        });
    }
}

async fn handle(tcp: TcpStream, acceptor: TlsAcceptor, ctx: &ExecContext) -> Result<(), ExecError> {
    // As Go's net package does for every connection the kubelet serves: a small frame
    // (the status) goes out at once, not held back by Nagle's algorithm.
    tcp.set_nodelay(true).map_err(ExecError::Socket)?;
    let tls = acceptor.accept(tcp).await.map_err(ExecError::Tls)?;
    let mut accepted: Option<(Protocol, ExecRequest)> = None;
    // The error type is tungstenite's; its size is not ours to choose.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        let exec = ExecRequest::parse(req.uri())
            .map_err(|e| reject(StatusCode::NOT_FOUND, &e.to_string()))?;
        // As a kubelet answers for a container that is gone.
        if ctx.stopped(&exec) {
            return Err(reject(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("container not found ({:?})", exec.container),
            ));
        }
        let offered: Vec<&str> = req
            .headers()
            .get_all(SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        let protocol = if offered.is_empty() {
            Protocol::V1
        } else {
            let chosen = Protocol::negotiate(offered.iter().copied()).ok_or_else(|| {
                reject(
                    StatusCode::BAD_REQUEST,
                    &format!("none of the offered subprotocols {offered:?} is supported"),
                )
            })?;
            resp.headers_mut().insert(
                SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(chosen.name()),
            );
            chosen
        };
        accepted = Some((protocol, exec));
        Ok(resp)
    };
    let ws = tokio_tungstenite::accept_hdr_async(tls, callback).await?;
    let Some((protocol, exec)) = accepted else {
        return Ok(());
    };
    session::run(ws, protocol, exec, ctx).await
}

fn reject(code: StatusCode, message: &str) -> ErrorResponse {
    let mut resp = ErrorResponse::new(Some(message.to_owned()));
    *resp.status_mut() = code;
    resp
}
