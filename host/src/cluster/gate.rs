//! A gate on every write a connection sends: open for a CLI; for a controller replica,
//! open only while it leads (its Lease renewed in time), checked on each attempt the retry
//! layer makes, so a replica paused past its term cannot write when it resumes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, FutureExt};
use http::{Method, Request};
use kube::client::Body;
use tower::{BoxError, Layer, Service};

/// Open for good.
const ALWAYS: u64 = u64::MAX;

/// Whether writes may be sent, and until when; and how many requests passed it. Cloned,
/// it is the same gate.
#[derive(Clone, Debug)]
pub struct Gate {
    /// The process's reference point: `until` counts microseconds from it.
    epoch: Instant,
    /// Writes may be sent before `epoch + until` µs; [`ALWAYS`]: without a limit.
    until: Arc<AtomicU64>,
    /// Requests sent: reads, writes (the Lease's aside), the Lease's.
    sent: Arc<[AtomicU64; 3]>,
    /// Writes sent and not answered yet.
    in_flight: Arc<AtomicU64>,
    /// The path of the one Lease whose requests always pass (leader election's), set once.
    lease: Arc<std::sync::OnceLock<String>>,
}

/// How many requests a connection sent, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sent {
    /// GET and HEAD, watches included (each counts once, when it starts).
    pub reads: u64,
    /// Creates, patches, replaces and deletes, the Lease's aside.
    pub writes: u64,
    /// The Lease's reads and writes (leader election).
    pub lease: u64,
}

impl Default for Gate {
    /// Open for good, as a CLI's.
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            until: Arc::new(AtomicU64::new(ALWAYS)),
            sent: Arc::default(),
            in_flight: Arc::default(),
            lease: Arc::default(),
        }
    }
}

impl Gate {
    /// Writes may be sent until `deadline`, not after.
    pub fn open_until(&self, deadline: Instant) {
        let micros = deadline.saturating_duration_since(self.epoch).as_micros();
        let micros = u64::try_from(micros).unwrap_or(ALWAYS - 1);
        self.until.store(micros, Ordering::SeqCst);
    }

    /// No write may be sent.
    pub fn close(&self) {
        self.until.store(0, Ordering::SeqCst);
    }

    /// Let the requests of Lease `namespace/name` pass whatever the gate says: the
    /// election's own (set once; later calls change nothing).
    pub fn pass_lease(&self, namespace: &str, name: &str) {
        let path = format!("/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases");
        let _ = self.lease.set(format!("{path}/{name}"));
    }

    /// Whether `path` is the election's Lease, or its collection (where it is created).
    fn is_lease(&self, path: &str) -> bool {
        self.lease.get().is_some_and(|lease| {
            path == lease || Some(path) == lease.rsplit_once('/').map(|(collection, _)| collection)
        })
    }

    /// Writes sent and not answered yet.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// How many requests passed the gate so far.
    pub fn sent(&self) -> Sent {
        let [reads, writes, lease] = &*self.sent;
        Sent {
            reads: reads.load(Ordering::Relaxed),
            writes: writes.load(Ordering::Relaxed),
            lease: lease.load(Ordering::Relaxed),
        }
    }

    /// Whether a write may be sent now.
    pub fn is_open(&self) -> bool {
        let until = self.until.load(Ordering::SeqCst);
        until == ALWAYS || Instant::now() < self.epoch + Duration::from_micros(until)
    }
}

/// A write refused at the gate: this replica does not lead (or no longer knows it does).
#[derive(Debug, thiserror::Error)]
#[error("not sent: this controller is not the leader (its Lease is not renewed)")]
pub struct Closed;

/// The layer that puts `gate` in front of a service.
#[derive(Clone, Debug)]
pub struct GateLayer(pub Gate);

impl<S> Layer<S> for GateLayer {
    type Service = Gated<S>;

    fn layer(&self, inner: S) -> Gated<S> {
        Gated {
            gate: self.0.clone(),
            inner,
        }
    }
}

/// A service whose writes pass the gate (reads and the Lease's own requests always do).
#[derive(Clone, Debug)]
pub struct Gated<S> {
    gate: Gate,
    inner: S,
}

impl<S> Service<Request<Body>> for Gated<S>
where
    S: Service<Request<Body>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let read = matches!(*request.method(), Method::GET | Method::HEAD);
        let lease = self.gate.is_lease(request.uri().path());
        if !(read || lease || self.gate.is_open()) {
            return async { Err(Box::new(Closed) as BoxError) }.boxed();
        }
        let kind = match (lease, read) {
            (true, _) => 2,
            (false, true) => 0,
            (false, false) => 1,
        };
        self.gate.sent[kind].fetch_add(1, Ordering::Relaxed);
        let sent = self.inner.call(request);
        if kind != 1 {
            return async move { sent.await.map_err(Into::into) }.boxed();
        }
        // A write in flight until answered (or dropped): a leader handing over waits for it.
        let in_flight = InFlight::new(self.gate.in_flight.clone());
        async move {
            let answer = sent.await.map_err(Into::into);
            drop(in_flight);
            answer
        }
        .boxed()
    }
}

/// One write counted in flight while it lives.
struct InFlight(Arc<AtomicU64>);

impl InFlight {
    fn new(count: Arc<AtomicU64>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    /// What a gated service lets through to the API server: the paths that reached it.
    async fn sent(gate: &Gate, requests: &[(Method, &str)]) -> Vec<String> {
        let reached = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = reached.clone();
        let inner = tower::service_fn(move |request: Request<Body>| {
            seen.lock()
                .unwrap()
                .push(format!("{} {}", request.method(), request.uri().path()));
            async { Ok::<_, BoxError>(http::Response::new(Body::empty())) }
        });
        let service = GateLayer(gate.clone()).layer(inner);
        for (method, path) in requests {
            let request = Request::builder()
                .method(method.clone())
                .uri(*path)
                .body(Body::empty())
                .unwrap();
            let _ = service.clone().oneshot(request).await;
        }
        reached.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn a_closed_gate_stops_writes_but_not_reads_or_the_lease() {
        let requests = [
            (Method::GET, "/apis/apps/v1/namespaces/a/deployments/web"),
            (Method::PATCH, "/apis/apps/v1/namespaces/a/deployments/web"),
            (Method::DELETE, "/api/v1/namespaces/a/services/web"),
            (
                Method::PUT,
                "/apis/coordination.k8s.io/v1/namespaces/b/leases/l",
            ),
            (
                Method::PUT,
                "/apis/coordination.k8s.io/v1/namespaces/a/leases/mine",
            ),
        ];
        let gate = Gate::default();
        gate.pass_lease("b", "l");
        assert_eq!(sent(&gate, &requests).await.len(), 5);
        let counted = gate.sent();
        assert_eq!((counted.reads, counted.writes, counted.lease), (1, 3, 1));
        assert_eq!(gate.in_flight(), 0);
        gate.close();
        assert_eq!(
            sent(&gate, &requests).await,
            [
                "GET /apis/apps/v1/namespaces/a/deployments/web",
                "PUT /apis/coordination.k8s.io/v1/namespaces/b/leases/l"
            ]
        );
    }

    #[test]
    fn open_for_good_then_until_a_deadline_then_closed() {
        let gate = Gate::default();
        assert!(gate.is_open());
        gate.open_until(Instant::now() + Duration::from_secs(60));
        assert!(gate.clone().is_open());
        gate.open_until(Instant::now() - Duration::from_millis(1));
        assert!(!gate.is_open());
        gate.open_until(Instant::now() + Duration::from_secs(60));
        gate.close();
        assert!(!gate.is_open());
    }
}
