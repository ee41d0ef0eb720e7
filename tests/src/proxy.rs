//! A loopback HTTPS proxy in front of a test cluster's real API server that records every request and injects faults by rule.
//!
//! It terminates TLS with the cluster's own serving certificate (valid for 127.0.0.1 and
//! signed by its CA), so a copy of the admin kubeconfig with only the port changed talks to
//! it ([`Proxy::kubeconfig`]). Each request is forwarded whole (method, path and query,
//! headers, body) over TLS to the API server, and its answer streamed back (watches work;
//! upgrades to exec streams do not). [`Rule`]s make it answer instead (429, 503, 504 with
//! `Retry-After`), forward and then break the connection (the server acted, the client
//! never hears of it), or hold a request until the test releases it; [`Proxy::hold_after`]
//! forwards only the first k requests, and [`Proxy::completions`] counts the finished ones,
//! so a test can kill its client right after the k-th. It runs on a thread of its own and
//! stops when dropped, or after [`LIFETIME`] at the latest.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::Cluster;

/// How long a proxy runs at most, whatever its test does.
pub const LIFETIME: Duration = Duration::from_secs(600);
/// How long the API server may take to start answering one request.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a paused request waits for [`Proxy::release`] at most.
const PAUSE_LIMIT: Duration = Duration::from_secs(60);
/// Largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// What a [`Rule`] does to a request it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (a Kubernetes `Status` body) without forwarding, with
    /// `Retry-After: <seconds>` if given.
    Answer {
        /// 429, 503, 504, …
        status: u16,
        /// `Retry-After` in seconds.
        retry_after: Option<u64>,
    },
    /// Forward the request, wait for the whole answer, then break the connection instead of
    /// passing the answer on.
    CutAfterForwarding,
    /// Hold the request (not forwarded yet) until [`Proxy::release`], then forward it.
    Pause,
}

/// How many matching requests a [`Rule`] applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Times {
    /// The next n matching requests.
    Next(usize),
    /// The first n attempts of each distinct method and path (with query).
    FirstOfEach(usize),
}

type Predicate = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// A fault for the requests whose method and path (with query) match.
#[derive(Clone)]
pub struct Rule {
    what: String,
    matches: Predicate,
    fault: Fault,
    times: Times,
    used: usize,
    per_key: HashMap<String, usize>,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("what", &self.what)
            .field("fault", &self.fault)
            .field("times", &self.times)
            .field("used", &self.used)
            .finish_non_exhaustive()
    }
}

impl Rule {
    /// `fault` for every request, until narrowed by [`Rule::matching`], [`Rule::times`] or
    /// [`Rule::first_of_each`].
    pub fn new(fault: Fault) -> Self {
        Self {
            what: "every request".into(),
            matches: Arc::new(|_, _| true),
            fault,
            times: Times::Next(usize::MAX),
            used: 0,
            per_key: HashMap::new(),
        }
    }

    /// Answer `status` (with `Retry-After: retry_after` seconds) without forwarding.
    pub fn answer(status: u16, retry_after: Option<u64>) -> Self {
        Self::new(Fault::Answer {
            status,
            retry_after,
        })
    }

    /// Forward, then break the connection instead of answering.
    pub fn cut_after_forwarding() -> Self {
        Self::new(Fault::CutAfterForwarding)
    }

    /// Hold until [`Proxy::release`], then forward.
    pub fn pause() -> Self {
        Self::new(Fault::Pause)
    }

    /// Only requests for which `matches(method, path_and_query)` holds; `what` describes
    /// them in the log.
    pub fn matching(
        mut self,
        what: &str,
        matches: impl Fn(&str, &str) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.what = what.to_owned();
        self.matches = Arc::new(matches);
        self
    }

    /// Only the next `n` matching requests.
    pub fn times(mut self, n: usize) -> Self {
        self.times = Times::Next(n);
        self
    }

    /// Only the first `n` attempts of each distinct method and path: a client's retries of
    /// one request meet the fault `n` times, then pass.
    pub fn first_of_each(mut self, n: usize) -> Self {
        self.times = Times::FirstOfEach(n);
        self
    }

    /// Whether the rule applies to this request; counts it if so.
    fn take(&mut self, method: &str, path: &str) -> bool {
        if !(self.matches)(method, path) {
            return false;
        }
        match self.times {
            Times::Next(n) => {
                if self.used >= n {
                    return false;
                }
                self.used += 1;
                true
            }
            Times::FirstOfEach(n) => {
                let seen = self.per_key.entry(format!("{method} {path}")).or_default();
                if *seen >= n {
                    return false;
                }
                *seen += 1;
                self.used += 1;
                true
            }
        }
    }
}

/// What became of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Still being handled (or a watch still streaming).
    Pending,
    /// Forwarded; the API server answered this status, passed on.
    Forwarded(u16),
    /// Answered by the proxy with this status; not forwarded.
    Injected(u16),
    /// Forwarded; the API server answered this status; the connection was then broken.
    Cut(u16),
    /// Held back by [`Proxy::hold_after`]: never forwarded.
    Held,
    /// Held by a [`Fault::Pause`] rule, waiting for [`Proxy::release`].
    Paused,
    /// Forwarding failed (the API server unreachable, the client gone).
    Failed(String),
}

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// 1 for the first request since the proxy started or was [`Proxy::reset`].
    pub index: usize,
    /// `GET`, `POST`, …
    pub method: String,
    /// Path and query.
    pub path: String,
    /// When it arrived, from the proxy's start.
    pub at: Duration,
    /// What became of it.
    pub outcome: Outcome,
}

impl Seen {
    /// `method path` without the query.
    pub fn key(&self) -> String {
        let path = self.path.split('?').next().unwrap_or_default();
        format!("{} {path}", self.method)
    }
}

impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{:<3} +{:>7.3}s {:<6} {} -> {:?}",
            self.index,
            self.at.as_secs_f64(),
            self.method,
            self.path,
            self.outcome
        )
    }
}

/// What the proxy's tasks share with its handle.
struct Shared {
    started: Instant,
    state: Mutex<State>,
    /// How many requests have finished (answered, injected or cut) since the last reset.
    completed: watch::Sender<usize>,
    /// Bumped by [`Proxy::release`]: paused requests go on.
    released: watch::Sender<u64>,
    /// Bumped whenever what is held back changes: held requests are dropped.
    epoch: watch::Sender<u64>,
}

struct State {
    rules: Vec<Rule>,
    log: Vec<Seen>,
    hold_after: Option<usize>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_outcome(&self, index: usize, outcome: Outcome) {
        let mut state = self.lock();
        if let Some(seen) = state.log.iter_mut().rev().find(|s| s.index == index) {
            seen.outcome = outcome;
        }
    }

    fn complete(&self, index: usize, outcome: Outcome) {
        self.set_outcome(index, outcome);
        self.completed.send_modify(|c| *c += 1);
    }
}

/// What to do with one request.
enum Decision {
    Forward,
    Answer {
        status: u16,
        retry_after: Option<u64>,
    },
    Cut,
    Pause,
    Hold,
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    address: SocketAddr,
    shared: Arc<Shared>,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("address", &self.address)
            .field("kubeconfig", &self.kubeconfig)
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// A proxy in front of `cluster`'s API server (a cluster `tests/cluster/up.sh` started,
    /// by the harness or by `cargo xtask test`: its state dir, beside the admin kubeconfig,
    /// holds the PKI and `cluster.env`). Panics if that cannot be set up.
    pub fn start(cluster: &Cluster) -> Self {
        let beside = cluster
            .admin_kubeconfig
            .parent()
            .filter(|dir| dir.join("pki").is_dir() && dir.join("cluster.env").is_file());
        let state = cluster
            .state_dir
            .as_deref()
            .or(beside)
            .expect("a proxy needs a cluster up.sh started (its PKI beside the kubeconfig)");
        let env = std::fs::read_to_string(state.join("cluster.env")).expect("cluster.env");
        let api_url = env
            .lines()
            .find_map(|l| l.strip_prefix("API_URL="))
            .expect("API_URL in cluster.env")
            .trim()
            .to_owned();
        let upstream = api_url
            .strip_prefix("https://")
            .expect("an https API_URL")
            .trim_end_matches('/')
            .to_owned();
        let pki = state.join("pki");
        let acceptor = TlsAcceptor::from(Arc::new(server_config(&pki)));
        let connector = TlsConnector::from(Arc::new(client_config(&pki)));

        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.set_nonblocking(true).expect("non-blocking");
        let address = listener.local_addr().expect("its address");

        let dir = tempfile::tempdir().expect("temp dir");
        let admin = std::fs::read_to_string(&cluster.admin_kubeconfig).expect("admin kubeconfig");
        assert!(
            admin.contains(&api_url),
            "the admin kubeconfig names {api_url}"
        );
        let kubeconfig = dir.path().join("proxy.kubeconfig");
        std::fs::write(
            &kubeconfig,
            admin.replace(&api_url, &format!("https://{address}")),
        )
        .expect("proxy kubeconfig");

        let shared = Arc::new(Shared {
            started: Instant::now(),
            state: Mutex::new(State {
                rules: Vec::new(),
                log: Vec::new(),
                hold_after: None,
            }),
            completed: watch::channel(0).0,
            released: watch::channel(0).0,
            epoch: watch::channel(0).0,
        });
        let (stop, stopped) = oneshot::channel();
        let upstream = Arc::new(Upstream {
            address: upstream,
            connector,
        });
        let serving = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("berth-e2e-proxy".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("proxy runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("tokio listener");
                    tokio::select! {
                        () = serve(listener, acceptor, upstream, serving) => {}
                        _ = stopped => {}
                        () = tokio::time::sleep(LIFETIME) => {
                            eprintln!("berth-e2e proxy: stopping after its {LIFETIME:?} lifetime");
                        }
                    }
                });
                // Dropping the runtime drops every connection still open.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("proxy thread");
        Self {
            address,
            shared,
            kubeconfig,
            _dir: dir,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// A kubeconfig of the cluster's admin that talks to the proxy.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Add a rule; the first rule that applies to a request decides.
    pub fn add(&self, rule: Rule) {
        self.shared.lock().rules.push(rule);
    }

    /// Drop every rule: forward everything.
    pub fn clear_rules(&self) {
        self.shared.lock().rules.clear();
    }

    /// Forward only the first `k` requests (counted since the last [`Proxy::reset`]);
    /// later ones are held, never forwarded, until the client goes away or this is called
    /// again (then they are dropped). `None`: forward everything.
    pub fn hold_after(&self, k: Option<usize>) {
        self.shared.lock().hold_after = k;
        self.shared.epoch.send_modify(|e| *e += 1);
    }

    /// Let paused requests go on.
    pub fn release(&self) {
        self.shared.released.send_modify(|r| *r += 1);
    }

    /// Start over: no rules, nothing held, an empty log, requests counted from 1 again.
    pub fn reset(&self) {
        {
            let mut state = self.shared.lock();
            state.rules.clear();
            state.log.clear();
            state.hold_after = None;
        }
        self.shared.epoch.send_modify(|e| *e += 1);
        self.shared.completed.send_replace(0);
    }

    /// Every request since the last reset, in the order they arrived.
    pub fn log(&self) -> Vec<Seen> {
        self.shared.lock().log.clone()
    }

    /// The log, one request a line.
    pub fn log_text(&self) -> String {
        self.log()
            .iter()
            .map(|s| format!("  {s}\n"))
            .collect::<String>()
    }

    /// The number of requests finished since the last reset (answered in full, injected
    /// or cut), updated as each finishes.
    pub fn completions(&self) -> watch::Receiver<usize> {
        self.shared.completed.subscribe()
    }

    /// Wait until at least `k` requests have finished; false after `timeout`.
    pub async fn until_completed(&self, k: usize, timeout: Duration) -> bool {
        let mut completions = self.completions();
        tokio::time::timeout(timeout, completions.wait_for(|c| *c >= k))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Wait until a request is paused by a [`Fault::Pause`] rule; false after `timeout`.
    pub async fn until_paused(&self, timeout: Duration) -> Option<Seen> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(seen) = self
                .log()
                .into_iter()
                .find(|s| s.outcome == Outcome::Paused)
            {
                return Some(seen);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The API server behind the proxy.
struct Upstream {
    /// `127.0.0.1:<port>`.
    address: String,
    connector: TlsConnector,
}

impl Upstream {
    async fn connect(&self) -> io::Result<SendRequest<Full<Bytes>>> {
        let tcp = TcpStream::connect(&self.address).await?;
        tcp.set_nodelay(true)?;
        let host = self
            .address
            .rsplit_once(':')
            .map_or("127.0.0.1", |(h, _)| h);
        let name = ServerName::try_from(host.to_owned()).map_err(io::Error::other)?;
        let tls = self.connector.connect(name, tcp).await?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(io::Error::other)?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }
}

fn server_config(pki: &Path) -> ServerConfig {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(pki.join("apiserver.crt"))
            .expect("pki/apiserver.crt")
            .collect::<Result<_, _>>()
            .expect("pki/apiserver.crt");
    let key = PrivateKeyDer::from_pem_file(pki.join("apiserver.key")).expect("pki/apiserver.key");
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("the API server's certificate and key");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

fn client_config(pki: &Path) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(pki.join("ca.crt")).expect("pki/ca.crt") {
        roots
            .add(cert.expect("pki/ca.crt"))
            .expect("the cluster CA");
    }
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    upstream: Arc<Upstream>,
    shared: Arc<Shared>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, upstream, shared) =
            (acceptor.clone(), Arc::clone(&upstream), Arc::clone(&shared));
        tokio::spawn(async move {
            let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                return;
            };
            connection(tls, &upstream, &shared).await;
        });
    }
}

/// One request as read from the client.
struct Incoming {
    method: String,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Bytes,
    close: bool,
}

/// Serve one client connection: its requests one after another.
async fn connection<S>(mut client: S, upstream: &Upstream, shared: &Shared)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    while let Ok(Some(request)) = read_request(&mut client, &mut buf).await {
        let (index, decision) = decide(shared, &request);
        let goes_on = match decision {
            Decision::Hold => {
                shared.set_outcome(index, Outcome::Held);
                hold(&mut client, shared).await;
                false
            }
            Decision::Answer {
                status,
                retry_after,
            } => {
                let written = client
                    .write_all(&injected(status, retry_after))
                    .await
                    .and(client.flush().await);
                shared.complete(index, Outcome::Injected(status));
                written.is_ok()
            }
            Decision::Pause => {
                shared.set_outcome(index, Outcome::Paused);
                let mut released = shared.released.subscribe();
                released.mark_unchanged();
                let _ = tokio::time::timeout(PAUSE_LIMIT, released.changed()).await;
                forward(
                    &mut client,
                    upstream,
                    &mut sender,
                    shared,
                    index,
                    request,
                    false,
                )
                .await
            }
            Decision::Cut => {
                forward(
                    &mut client,
                    upstream,
                    &mut sender,
                    shared,
                    index,
                    request,
                    true,
                )
                .await
            }
            Decision::Forward => {
                forward(
                    &mut client,
                    upstream,
                    &mut sender,
                    shared,
                    index,
                    request,
                    false,
                )
                .await
            }
        };
        if !goes_on {
            break;
        }
    }
}

fn decide(shared: &Shared, request: &Incoming) -> (usize, Decision) {
    let mut state = shared.lock();
    let index = state.log.len() + 1;
    state.log.push(Seen {
        index,
        method: request.method.clone(),
        path: request.path.clone(),
        at: shared.started.elapsed(),
        outcome: Outcome::Pending,
    });
    if state.hold_after.is_some_and(|k| index > k) {
        return (index, Decision::Hold);
    }
    let fault = state.rules.iter_mut().find_map(|rule| {
        rule.take(&request.method, &request.path)
            .then_some(rule.fault)
    });
    let decision = match fault {
        None => Decision::Forward,
        Some(Fault::Answer {
            status,
            retry_after,
        }) => Decision::Answer {
            status,
            retry_after,
        },
        Some(Fault::CutAfterForwarding) => Decision::Cut,
        Some(Fault::Pause) => Decision::Pause,
    };
    (index, decision)
}

/// A held request: never forwarded; given up when the client goes away, when what is held
/// changes, or when the proxy stops.
async fn hold<S: AsyncRead + Unpin>(client: &mut S, shared: &Shared) {
    let mut epoch = shared.epoch.subscribe();
    epoch.mark_unchanged();
    let mut scratch = [0u8; 1024];
    loop {
        tokio::select! {
            read = client.read(&mut scratch) => {
                if matches!(read, Ok(0) | Err(_)) {
                    return;
                }
            }
            _ = epoch.changed() => return,
        }
    }
}

/// Forward `request` and pass the answer on (or, if `cut`, read it whole and break the
/// connection instead). Whether the connection can serve another request.
async fn forward<S>(
    client: &mut S,
    upstream: &Upstream,
    sender: &mut Option<SendRequest<Full<Bytes>>>,
    shared: &Shared,
    index: usize,
    request: Incoming,
    cut: bool,
) -> bool
where
    S: AsyncWrite + Unpin,
{
    let head_only = request.method == "HEAD";
    let close = request.close;
    let response = match send(upstream, sender, request).await {
        Ok(response) => response,
        Err(e) => {
            // As a gateway says it: the client may try again if it wants to.
            let _ = client.write_all(&injected(502, None)).await;
            let _ = client.flush().await;
            shared.complete(index, Outcome::Failed(e.to_string()));
            return false;
        }
    };
    let status = response.status().as_u16();
    let (parts, mut body) = response.into_parts();
    if cut {
        // The server has acted; let it finish answering, then break the connection.
        let _ = body.collect().await;
        *sender = None;
        shared.complete(index, Outcome::Cut(status));
        return false;
    }
    let no_body = head_only || status < 200 || status == 204 || status == 304;
    let length_known = parts.headers.contains_key(http::header::CONTENT_LENGTH)
        && !parts.headers.contains_key(http::header::TRANSFER_ENCODING);
    let chunked = !no_body && !length_known;
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\n",
        parts.status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    let mut upstream_closes = false;
    for (name, value) in &parts.headers {
        if name == http::header::TRANSFER_ENCODING && chunked {
            continue;
        }
        if name == http::header::CONNECTION {
            upstream_closes |= value.as_bytes().eq_ignore_ascii_case(b"close");
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if chunked {
        head.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let passed = async {
        client.write_all(&head).await?;
        client.flush().await?;
        if no_body {
            return Ok(());
        }
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(io::Error::other)?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if data.is_empty() {
                continue;
            }
            if chunked {
                client
                    .write_all(format!("{:x}\r\n", data.len()).as_bytes())
                    .await?;
                client.write_all(&data).await?;
                client.write_all(b"\r\n").await?;
            } else {
                client.write_all(&data).await?;
            }
            client.flush().await?;
        }
        if chunked {
            client.write_all(b"0\r\n\r\n").await?;
        }
        client.flush().await
    }
    .await;
    match passed {
        Ok(()) => {
            shared.complete(index, Outcome::Forwarded(status));
            !(close || upstream_closes)
        }
        Err(e) => {
            *sender = None;
            shared.complete(index, Outcome::Failed(format!("{status}, then {e}")));
            false
        }
    }
}

async fn send(
    upstream: &Upstream,
    sender: &mut Option<SendRequest<Full<Bytes>>>,
    request: Incoming,
) -> io::Result<hyper::Response<hyper::body::Incoming>> {
    let mut builder = http::Request::builder()
        .method(request.method.as_str())
        .uri(request.path.as_str());
    for (name, value) in &request.headers {
        let hop = [
            "host",
            "connection",
            "keep-alive",
            "transfer-encoding",
            "content-length",
        ];
        if hop.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            continue;
        }
        builder = builder.header(name.as_str(), value.as_slice());
    }
    // hyper sets Content-Length from the whole body.
    let outgoing = builder
        .header(http::header::HOST, upstream.address.as_str())
        .body(Full::new(request.body))
        .map_err(io::Error::other)?;
    let ready = match sender.as_mut() {
        Some(s) => s.ready().await.is_ok(),
        None => false,
    };
    if !ready {
        *sender = Some(upstream.connect().await?);
    }
    let Some(s) = sender.as_mut() else {
        return Err(io::Error::other("no upstream connection"));
    };
    s.ready().await.map_err(io::Error::other)?;
    match tokio::time::timeout(UPSTREAM_TIMEOUT, s.send_request(outgoing)).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => {
            *sender = None;
            Err(io::Error::other(e))
        }
        Err(_) => {
            *sender = None;
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the API server did not answer",
            ))
        }
    }
}

/// The proxy's own answer with `status`: a Kubernetes `Status` as the API server writes it.
fn injected(status: u16, retry_after: Option<u64>) -> Vec<u8> {
    let (phrase, reason, message) = match status {
        429 => (
            "Too Many Requests",
            "TooManyRequests",
            "Too many requests, please try again later.",
        ),
        502 => (
            "Bad Gateway",
            "InternalError",
            "the proxy could not reach the API server",
        ),
        503 => (
            "Service Unavailable",
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
        ),
        504 => (
            "Gateway Timeout",
            "Timeout",
            "the server was unable to return a response in the time allotted, but may still be processing the request",
        ),
        _ => ("Error", "InternalError", "injected by the test proxy"),
    };
    let mut status_body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": status,
    });
    if let Some(seconds) = retry_after {
        status_body["details"] = serde_json::json!({ "retryAfterSeconds": seconds });
    }
    let body = status_body.to_string();
    let mut out = format!(
        "HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    if let Some(seconds) = retry_after {
        out.push_str(&format!("retry-after: {seconds}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&body);
    out.into_bytes()
}

/// Read until `buf` holds at least `n` bytes; false at the end of the stream.
async fn fill<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
    n: usize,
) -> io::Result<bool> {
    while buf.len() < n {
        if stream.read_buf(buf).await? == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Read up to and including the next CRLF.
async fn line<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut BytesMut) -> io::Result<Bytes> {
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = buf.split_to(end + 2).freeze();
            return Ok(line.slice(..end));
        }
        if buf.len() > MAX_HEAD || stream.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// The next request on the connection, `None` when the client closed it.
async fn read_request<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
) -> io::Result<Option<Incoming>> {
    let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
    let (method, path, headers) = loop {
        if !buf.is_empty() {
            let mut slots = [httparse::EMPTY_HEADER; 128];
            let mut parsed = httparse::Request::new(&mut slots);
            if let httparse::Status::Complete(length) =
                parsed.parse(buf).map_err(|e| invalid(e.to_string()))?
            {
                let method = parsed.method.unwrap_or_default().to_owned();
                let path = parsed.path.unwrap_or_default().to_owned();
                let headers: Vec<(String, Vec<u8>)> = parsed
                    .headers
                    .iter()
                    .map(|h| (h.name.to_owned(), h.value.to_vec()))
                    .collect();
                buf.advance(length);
                break (method, path, headers);
            }
            if buf.len() > MAX_HEAD {
                return Err(invalid("request head too large".into()));
            }
        }
        if stream.read_buf(buf).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
    };
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).trim().to_ascii_lowercase())
    };
    let close = header("connection").is_some_and(|v| v == "close");
    let body = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut body = BytesMut::new();
        loop {
            let size_line = line(stream, buf).await?;
            let size = String::from_utf8_lossy(&size_line);
            let size = size.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16).map_err(|e| invalid(e.to_string()))?;
            if size == 0 {
                // Trailers, up to an empty line.
                while !line(stream, buf).await?.is_empty() {}
                break;
            }
            if !fill(stream, buf, size + 2).await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            body.extend_from_slice(&buf.split_to(size));
            buf.advance(2);
        }
        body.freeze()
    } else {
        let length = match header("content-length") {
            Some(v) => v.parse::<usize>().map_err(|e| invalid(e.to_string()))?,
            None => 0,
        };
        if !fill(stream, buf, length).await? {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.split_to(length).freeze()
    };
    Ok(Some(Incoming {
        method,
        path,
        headers,
        body,
        close,
    }))
}
