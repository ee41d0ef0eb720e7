//! `berth controller --http ADDRESS`: `/metrics` for Prometheus, `/healthz` and `/readyz`
//! for the kubelet's probes, over plain HTTP/1.1, one request per connection.

use std::time::Duration;

use berth::Metrics;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long a client may take to send its request, or to read the answer.
const READ_LIMIT: Duration = Duration::from_secs(5);

/// Answer on `listener` until the process ends.
pub async fn serve(listener: TcpListener, metrics: Metrics) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, say: not a reason to spin.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        tokio::spawn(answer(stream, metrics.clone()));
    }
}

/// Read one request's head and answer it.
async fn answer(mut stream: TcpStream, metrics: Metrics) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(READ_LIMIT, async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    if read.is_err() {
        return;
    }
    let line = String::from_utf8_lossy(&head);
    let mut words = line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, kind, body) = respond(method, path, &metrics);
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // A client that does not read is left after the same time.
    let _ = tokio::time::timeout(READ_LIMIT, async {
        let _ = stream.write_all(reply.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// The status line's code and reason, the content type and the body for a request.
fn respond(method: &str, path: &str, metrics: &Metrics) -> (&'static str, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    if method != "GET" {
        return ("405 Method Not Allowed", TEXT, "GET only\n".to_owned());
    }
    match path.split('?').next().unwrap_or_default() {
        "/metrics" => ("200 OK", "text/plain; version=0.0.4", metrics.text()),
        "/healthz" => ("200 OK", TEXT, "ok\n".to_owned()),
        "/readyz" if metrics.is_ready() => ("200 OK", TEXT, "ready\n".to_owned()),
        "/readyz" => (
            "503 Service Unavailable",
            TEXT,
            "not ready: the Lease not read yet, or leading with its caches not synced\n".to_owned(),
        ),
        _ => (
            "404 Not Found",
            TEXT,
            "/metrics, /healthz, /readyz\n".to_owned(),
        ),
    }
}
