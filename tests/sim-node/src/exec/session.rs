//! One exec session: run the command for real, stream its output, report its exit status;
//! end it, as the container's end does, when the pod's containers stop.

use std::{
    process::{ExitStatus, Stdio},
    time::Duration,
};

use futures::{
    SinkExt as _, StreamExt as _,
    stream::{SplitSink, SplitStream},
};
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _},
    process::ChildStdin,
    sync::watch,
    time::Instant,
};
use tokio_tungstenite::{WebSocketStream, tungstenite::Message};

use super::{
    ExecContext, ExecError, ExecRequest,
    protocol::{self, Protocol},
};
use crate::{process, runtime::Life};

type Sink<S> = SplitSink<WebSocketStream<S>, Message>;

/// How long output still drains once the command and its group are killed.
const DRAIN_AFTER_KILL: Duration = Duration::from_secs(2);

/// How long what the client still sends is read once the session's status is sent.
const DRAIN_AT_CLOSE: Duration = Duration::from_secs(2);

/// Runs `req` in the pod's scratch directory and speaks `protocol` on `ws` until it exits.
pub async fn run<S>(
    ws: WebSocketStream<S>,
    protocol: Protocol,
    req: ExecRequest,
    ctx: &ExecContext,
) -> Result<(), ExecError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sink, mut incoming) = ws.split();
    if req.command.is_empty() {
        return finish(
            sink,
            incoming,
            protocol,
            Err("no command given".to_owned()),
            &req,
        )
        .await;
    }
    let dir = ctx.pod_dir(&req);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|source| ExecError::WorkDir {
            path: dir.clone(),
            source,
        })?;

    let target = ctx.target(&req).await;
    let piped = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
    let Some(mut cmd) = process::command(&dir, &req.pod, &req.container, &target.env, &req.command)
    else {
        return finish(
            sink,
            incoming,
            protocol,
            Err("no command given".to_owned()),
            &req,
        )
        .await;
    };
    cmd.stdin(piped(req.stdin))
        .stdout(piped(req.stdout))
        .stderr(piped(req.stderr));
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            let message = format!("failed to start command {:?}: {e}", req.command);
            return finish(sink, incoming, protocol, Err(message), &req).await;
        }
    };

    let mut life = target.pod.map(|p| p.watch_life());
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let mut stdin: Option<ChildStdin> = child.stdin.take();
    let mut out_buf = vec![0u8; 16 * 1024];
    let mut err_buf = vec![0u8; 16 * 1024];
    let mut client_open = true;
    // Set once the container's end killed the command: output drains until then.
    let mut killed_by_stop: Option<Instant> = None;
    while stdout.is_some() || stderr.is_some() {
        tokio::select! {
            n = read_some(&mut stdout, &mut out_buf) => {
                forward(&mut sink, &mut stdout, protocol::STDOUT, &out_buf, n).await?;
            }
            n = read_some(&mut stderr, &mut err_buf) => {
                forward(&mut sink, &mut stderr, protocol::STDERR, &err_buf, n).await?;
            }
            msg = incoming.next(), if client_open => match msg {
                Some(Ok(Message::Binary(data))) => {
                    if let [protocol::STDIN, rest @ ..] = data.as_ref()
                        && let Some(w) = stdin.as_mut()
                        && w.write_all(rest).await.is_err()
                    {
                        stdin = None;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    // The client went away: nobody reads the output any more.
                    client_open = false;
                    stdin = None;
                    process::kill_all(&mut child).await;
                }
                Some(Ok(_)) => {}
            },
            () = stopped(&mut life), if killed_by_stop.is_none() => {
                // The pod's containers are gone: so is everything running in them.
                stdin = None;
                process::kill_all(&mut child).await;
                killed_by_stop = Some(Instant::now() + DRAIN_AFTER_KILL);
            }
            () = sleep_until(killed_by_stop) => break,
        }
    }
    drop(stdin);
    let status = child.wait().await;
    if !client_open {
        return Ok(());
    }
    let outcome = match status {
        Ok(status) => Ok(exit_code(status)),
        Err(e) => Err(format!("waiting for command {:?}: {e}", req.command)),
    };
    finish(sink, incoming, protocol, outcome, &req).await
}

/// Returns once the pod's containers stopped; never without a pod to watch.
async fn stopped(life: &mut Option<watch::Receiver<Life>>) {
    match life.as_mut() {
        Some(rx) => {
            let gone = rx.wait_for(|l| *l == Life::Stopped).await.is_err();
            if gone {
                // The pod's runtime went away without stopping: nothing to wait for.
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

/// Sleeps until `deadline`; never without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Reads from an optional pipe; a missing pipe never becomes readable.
async fn read_some<R: AsyncRead + Unpin>(
    pipe: &mut Option<R>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match pipe.as_mut() {
        Some(r) => r.read(buf).await,
        None => std::future::pending().await,
    }
}

/// Sends what was read on `channel`, or closes the pipe at EOF or on a read error.
async fn forward<S, R>(
    sink: &mut Sink<S>,
    pipe: &mut Option<R>,
    channel: u8,
    buf: &[u8],
    read: std::io::Result<usize>,
) -> Result<(), ExecError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match read {
        Ok(0) | Err(_) => {
            *pipe = None;
            Ok(())
        }
        Ok(n) => {
            let data = buf.get(..n).unwrap_or(buf);
            sink.send(Message::binary(protocol::frame(channel, data)))
                .await?;
            Ok(())
        }
    }
}

/// Exit code as the kubelet reports it: the code, or 128 + signal number.
fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt as _;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Sends the final status on the error channel and closes the WebSocket as the kubelet's
/// connection does: its reader consumed everything the client sent for the whole session,
/// so its close is a clean one. Here, what the client still sends (a close frame, a ping) is read and dropped for a moment before the TLS session is shut
/// down: closing a socket with unread input makes the kernel answer with a reset instead
/// of a FIN, and the API server, proxying bytes, then cuts the client's connection before
/// the status it had not yet passed on (the `exec` flake of issue 20).
async fn finish<S>(
    mut sink: Sink<S>,
    mut incoming: SplitStream<WebSocketStream<S>>,
    protocol: Protocol,
    outcome: Result<i32, String>,
    req: &ExecRequest,
) -> Result<(), ExecError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let payload: Option<Vec<u8>> = match (&outcome, protocol.structured_status()) {
        (Ok(0), true) => Some(protocol::success().to_string().into_bytes()),
        (Ok(0), false) => None,
        (Ok(code), true) => Some(
            protocol::non_zero_exit(&req.command, *code)
                .to_string()
                .into_bytes(),
        ),
        (Ok(code), false) => Some(protocol::exit_message(&req.command, *code).into_bytes()),
        (Err(message), true) => Some(protocol::internal_error(message).to_string().into_bytes()),
        (Err(message), false) => Some(message.clone().into_bytes()),
    };
    if let Some(payload) = payload {
        sink.send(Message::binary(protocol::frame(protocol::ERROR, &payload)))
            .await?;
    }
    match sink.close().await {
        Ok(()) | Err(tokio_tungstenite::tungstenite::Error::ConnectionClosed) => {}
        Err(e) => return Err(e.into()),
    }
    // Until the client's close, its end of the stream, or a bounded wait.
    let _ = tokio::time::timeout(DRAIN_AT_CLOSE, async {
        while let Some(Ok(msg)) = incoming.next().await {
            if msg.is_close() {
                break;
            }
        }
    })
    .await;
    if let Ok(ws) = sink.reunite(incoming) {
        // TLS close_notify, then a FIN: the status went out before it.
        let _ = ws.into_inner().shutdown().await;
    }
    Ok(())
}
