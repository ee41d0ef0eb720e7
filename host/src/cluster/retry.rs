//! Requests the API server could not answer, tried again with backoff: throttling and
//! unavailability (429, 503) for any request; a gateway timeout (504, 502) or a connection
//! that failed for requests whose repetition changes nothing (reads, deletes, patches,
//! replaces guarded by a resource version) — never a create, which may have happened:
//! berth resolves that by looking. `Retry-After` is honoured, within bounds.

use std::time::Duration;

use http::{Method, Request, Response, StatusCode, header};
use kube::client::Body;
use tower::BoxError;
use tower::retry::Policy;

/// Retries of one request.
const RETRIES: u32 = 7;
/// First wait; doubled each time up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(250);
/// Longest wait between attempts, also when `Retry-After` asks for more.
const MAX_WAIT: Duration = Duration::from_secs(4);

/// The retry policy of berth's client (about 16 s of waiting at most per request: an API
/// server restarting is ridden out; one that stays away fails the command clearly).
#[derive(Debug, Clone)]
pub struct Transient {
    attempt: u32,
}

impl Transient {
    /// A policy for a new request.
    pub fn new() -> Self {
        Self { attempt: 0 }
    }

    /// How long to wait before attempt `self.attempt + 1`, at least `asked`.
    fn wait(&self, asked: Option<Duration>) -> Duration {
        let backoff = FIRST_WAIT.saturating_mul(1 << self.attempt.min(8));
        asked
            .unwrap_or(backoff)
            .max(backoff.min(MAX_WAIT))
            .min(MAX_WAIT)
    }
}

impl Default for Transient {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether sending a `method` request twice has the effect of sending it once: reads; a
/// delete (the second finds nothing, or a uid precondition that fails); a patch (berth's
/// are server-side applies and merges of absolute values); a replace (guarded by a
/// resource version: a second one conflicts). Not a create.
fn repeatable(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::DELETE | Method::PATCH | Method::PUT
    )
}

/// Whether an answer with `status` to a `method` request says "try again later".
pub fn transient(method: &Method, status: StatusCode) -> bool {
    match status {
        // The API server refused before acting: throttled, or not ready yet.
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => true,
        // It may have acted and timed out answering: only what is repeatable is repeated.
        StatusCode::GATEWAY_TIMEOUT | StatusCode::BAD_GATEWAY => repeatable(method),
        _ => false,
    }
}

/// `Retry-After: <seconds>`.
fn retry_after<B>(response: &Response<B>) -> Option<Duration> {
    let value = response.headers().get(header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

impl<B> Policy<Request<Body>, Response<B>, BoxError> for Transient {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        request: &mut Request<Body>,
        result: &mut Result<Response<B>, BoxError>,
    ) -> Option<Self::Future> {
        if self.attempt >= RETRIES {
            return None;
        }
        let wait = match result {
            Ok(response) if transient(request.method(), response.status()) => {
                self.wait(retry_after(response))
            }
            // Refused at the gate: this replica does not lead; no wait changes that.
            Err(error) if error.is::<super::gate::Closed>() => return None,
            // No answer at all (refused, reset, timed out): sent again if repeatable.
            Err(_) if repeatable(request.method()) => self.wait(None),
            _ => return None,
        };
        self.attempt += 1;
        Some(tokio::time::sleep(wait))
    }

    fn clone_request(&mut self, request: &Request<Body>) -> Option<Request<Body>> {
        // A streaming body cannot be sent twice; berth's bodies are whole.
        let body = request.body().try_clone()?;
        let mut copy = Request::builder()
            .method(request.method().clone())
            .uri(request.uri().clone())
            .version(request.version())
            .body(body)
            .ok()?;
        *copy.headers_mut() = request.headers().clone();
        *copy.extensions_mut() = request.extensions().clone();
        Some(copy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_answers_that_say_try_again_are_retried_and_creates_only_when_not_acted_on() {
        for method in [Method::GET, Method::POST, Method::PATCH, Method::DELETE] {
            assert!(transient(&method, StatusCode::TOO_MANY_REQUESTS));
            assert!(transient(&method, StatusCode::SERVICE_UNAVAILABLE));
            assert_eq!(
                transient(&method, StatusCode::GATEWAY_TIMEOUT),
                method != Method::POST
            );
            assert!(!transient(&method, StatusCode::CONFLICT));
            assert!(!transient(&method, StatusCode::INTERNAL_SERVER_ERROR));
        }
    }

    #[test]
    fn waits_double_honour_retry_after_and_stay_bounded() {
        let mut policy = Transient::new();
        assert_eq!(policy.wait(None), Duration::from_millis(250));
        assert_eq!(
            policy.wait(Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(policy.wait(Some(Duration::from_secs(600))), MAX_WAIT);
        policy.attempt = 3;
        assert_eq!(policy.wait(None), Duration::from_secs(2));
        // Retry-After may not make berth hammer faster than its own backoff.
        assert_eq!(
            policy.wait(Some(Duration::from_secs(1))),
            Duration::from_secs(2)
        );
        policy.attempt = RETRIES;
        assert_eq!(policy.wait(None), MAX_WAIT);
    }
}
