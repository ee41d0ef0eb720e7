//! HTTP to one registry repository: authentication on challenge (basic, or a token for
//! the repository's scope), redirects, retries of transient failures, size limits.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::auth::{Challenge, Credentials};
use super::{OciError, Reference};

/// Attempts of a request that failed transiently (connection, 429, 502, 503, 504).
const ATTEMPTS: u32 = 4;
/// Longest wait between attempts, also when the registry's Retry-After asks for more.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Redirects followed (blob stores answer a blob request with one).
const MAX_REDIRECTS: usize = 5;

/// The connection pool, shared by every request of a client.
pub(super) type Pool = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A pool speaking HTTPS with the system's root certificates, and HTTP where berth
/// allows it (loopback registries; the caller decides the scheme).
pub(super) fn pool() -> Result<Pool, OciError> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(OciError::Tls)?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// Requests to one repository, authenticated once and then reusing the header.
pub(super) struct Session<'a> {
    pool: &'a Pool,
    reference: &'a Reference,
    credentials: Option<Credentials>,
    /// `pull` or `pull,push`: what a token is asked for.
    actions: &'static str,
    authorization: Option<String>,
    timeout: Duration,
    /// Requests sent, retries and authentication included.
    pub requests: u32,
}

/// A request's answer: status, headers and the whole body (within its limit).
pub(super) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl<'a> Session<'a> {
    pub fn new(
        pool: &'a Pool,
        reference: &'a Reference,
        credentials: Option<Credentials>,
        actions: &'static str,
        timeout: Duration,
    ) -> Self {
        Self {
            pool,
            reference,
            credentials,
            actions,
            authorization: None,
            timeout,
            requests: 0,
        }
    }

    /// `scheme://registry/v2/<repository>/<path>`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.reference.is_loopback() {
            "http"
        } else {
            "https"
        };
        format!(
            "{scheme}://{}/v2/{}/{path}",
            self.reference.registry, self.reference.repository
        )
    }

    /// Send a request, authenticating when challenged and following redirects; the body
    /// is read up to `limit` bytes (`TooLarge` beyond, as `what`).
    pub async fn send(
        &mut self,
        method: Method,
        url: &str,
        headers: &[(header::HeaderName, &str)],
        body: Bytes,
        (limit, what): (u64, &'static str),
    ) -> Result<Answer, OciError> {
        let mut url = url.to_owned();
        let mut authenticated = false;
        let mut redirects = 0;
        loop {
            let same_host = url
                .parse::<Uri>()
                .ok()
                .and_then(|u| u.authority().map(|a| a.as_str() == self.reference.registry))
                .unwrap_or(false);
            // Credentials go to the registry only, never to a blob store it redirects to.
            let authorization = self.authorization.clone().filter(|_| same_host);
            let response = self
                .with_retries(&method, &url, headers, &body, authorization.as_deref())
                .await?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && same_host && !authenticated {
                authenticated = true;
                let challenge = response
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Challenge::parse);
                self.authorization = Some(self.authenticate(challenge).await?);
                continue;
            }
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                return Err(self.refused());
            }
            if status.is_redirection()
                && redirects < MAX_REDIRECTS
                && let Some(location) = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
            {
                url = self.resolve(location);
                redirects += 1;
                continue;
            }
            let headers = response.headers().clone();
            // A HEAD's Content-Length describes the body a GET would have.
            let body = if method == Method::HEAD {
                Bytes::new()
            } else {
                self.read(response, limit, what).await?
            };
            return Ok(Answer {
                status,
                headers,
                body,
            });
        }
    }

    /// An absolute URL for a `Location` the registry sent (often a path).
    pub fn resolve(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            return location.to_owned();
        }
        let base = self.url("");
        let origin_end = base.find("/v2/").unwrap_or(base.len());
        format!("{}{location}", &base[..origin_end])
    }

    /// The error of a status berth did not expect, with the start of the registry's words.
    pub fn status(&self, step: String, answer: &Answer) -> OciError {
        let text = String::from_utf8_lossy(&answer.body);
        let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let detail = if text.is_empty() {
            String::new()
        } else {
            format!(": {}", text.chars().take(300).collect::<String>())
        };
        OciError::Status {
            registry: self.reference.registry.clone(),
            step,
            status: answer.status.as_u16(),
            detail,
        }
    }

    async fn read(
        &self,
        response: Response<hyper::body::Incoming>,
        limit: u64,
        what: &'static str,
    ) -> Result<Bytes, OciError> {
        let too_large = || OciError::TooLarge {
            reference: self.reference.to_string(),
            what,
            limit,
        };
        let declared = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let limited = Limited::new(response.into_body(), limit as usize);
        let collected = tokio::time::timeout(self.timeout, limited.collect()).await;
        match collected {
            Err(_) => Err(self.timed_out()),
            Ok(Ok(body)) => Ok(body.to_bytes()),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Ok(Err(e)) => Err(self.unreachable(e.to_string())),
        }
    }

    /// One request, retried with backoff while the failure is transient.
    async fn with_retries(
        &mut self,
        method: &Method,
        url: &str,
        headers: &[(header::HeaderName, &str)],
        body: &Bytes,
        authorization: Option<&str>,
    ) -> Result<Response<hyper::body::Incoming>, OciError> {
        let mut backoff = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            let mut request = Request::builder().method(method.clone()).uri(url);
            for (name, value) in headers {
                request = request.header(name, *value);
            }
            if let Some(authorization) = authorization {
                request = request.header(header::AUTHORIZATION, authorization);
            }
            let request = request
                .body(Full::new(body.clone()))
                .map_err(|e| self.unreachable(e.to_string()))?;
            self.requests += 1;
            let last = attempt == ATTEMPTS;
            match tokio::time::timeout(self.timeout, self.pool.request(request)).await {
                Err(_) if last => return Err(self.timed_out()),
                Ok(Err(e)) if last => return Err(self.unreachable(connection_error(&e))),
                Ok(Ok(response)) if last || !transient(response.status()) => return Ok(response),
                Ok(Ok(response)) => {
                    if let Some(after) = retry_after(response.headers()) {
                        backoff = after;
                    }
                }
                Err(_) | Ok(Err(_)) => {}
            }
            tokio::time::sleep(backoff.min(MAX_BACKOFF)).await;
            backoff *= 2;
            attempt += 1;
        }
    }

    /// The `Authorization` header the challenge asks for.
    async fn authenticate(&mut self, challenge: Option<Challenge>) -> Result<String, OciError> {
        match challenge {
            Some(Challenge::Basic) | None => match &self.credentials {
                Some(credentials) => Ok(credentials.basic()),
                None => Err(self.refused()),
            },
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                let scope = scope.unwrap_or_else(|| {
                    format!("repository:{}:{}", self.reference.repository, self.actions)
                });
                let mut url = format!("{realm}?scope={}", encode(&scope));
                if let Some(service) = service {
                    url.push_str(&format!("&service={}", encode(&service)));
                }
                let basic = self.credentials.as_ref().map(Credentials::basic);
                let response = self
                    .with_retries(&Method::GET, &url, &[], &Bytes::new(), basic.as_deref())
                    .await?;
                if !response.status().is_success() {
                    return Err(self.refused());
                }
                let body = self.read(response, 1 << 20, "token").await?;
                #[derive(serde::Deserialize)]
                struct Token {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let token: Token = serde_json::from_slice(&body).map_err(|_| self.refused())?;
                let token = token
                    .token
                    .or(token.access_token)
                    .ok_or_else(|| self.refused())?;
                Ok(format!("Bearer {token}"))
            }
        }
    }

    fn refused(&self) -> OciError {
        OciError::Unauthorized {
            registry: self.reference.registry.clone(),
            repository: self.reference.repository.clone(),
            reason: if self.credentials.is_some() {
                "the credentials from Docker's config file were refused".into()
            } else {
                "it needs credentials, and Docker's config file has none for it (`docker login`)"
                    .into()
            },
        }
    }

    fn unreachable(&self, reason: String) -> OciError {
        OciError::Unreachable {
            registry: self.reference.registry.clone(),
            reason,
        }
    }

    fn timed_out(&self) -> OciError {
        OciError::Timeout {
            registry: self.reference.registry.clone(),
            seconds: self.timeout.as_secs(),
        }
    }
}

/// Whether a status says "try again later".
fn transient(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
    )
}

/// `Retry-After: <seconds>`.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    seconds.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The innermost cause of a connection error: "Connection refused (os error 111)".
fn connection_error(error: &hyper_util::client::legacy::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

/// Percent-encoding of a query value: unreserved characters kept.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
