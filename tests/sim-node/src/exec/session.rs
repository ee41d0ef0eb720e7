//! One exec session: run the command for real, stream its output, report its exit status.

use std::process::{ExitStatus, Stdio};

use futures::{SinkExt as _, StreamExt as _, stream::SplitSink};
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _},
    process::{ChildStdin, Command},
};
use tokio_tungstenite::{WebSocketStream, tungstenite::Message};

use super::{
    ExecContext, ExecError, ExecRequest,
    protocol::{self, Protocol},
};

type Sink<S> = SplitSink<WebSocketStream<S>, Message>;

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
    let Some(program) = req.command.first() else {
        return finish(
            &mut sink,
            protocol,
            Err("no command given".to_owned()),
            &req,
        )
        .await;
    };
    let dir = ctx.pod_dir(&req.namespace, &req.pod);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|source| ExecError::WorkDir {
            path: dir.clone(),
            source,
        })?;

    let piped = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
    let mut cmd = Command::new(program);
    cmd.args(&req.command[1..])
        .current_dir(&dir)
        .env("HOSTNAME", &req.pod)
        // Which container the command runs in, as a test can then tell (a kubelet runs
        // it in that container's own process namespace; there is one here).
        .env("BERTH_SIM_CONTAINER", &req.container)
        .envs(ctx.container_env(&req).await)
        .stdin(piped(req.stdin))
        .stdout(piped(req.stdout))
        .stderr(piped(req.stderr))
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            let message = format!("failed to start command {:?}: {e}", req.command);
            return finish(&mut sink, protocol, Err(message), &req).await;
        }
    };

    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let mut stdin: Option<ChildStdin> = child.stdin.take();
    let mut out_buf = vec![0u8; 16 * 1024];
    let mut err_buf = vec![0u8; 16 * 1024];
    let mut client_open = true;
    while stdout.is_some() || stderr.is_some() {
        tokio::select! {
            n = read_some(&mut stdout, &mut out_buf) => {
                forward(&mut sink, &mut stdout, protocol::STDOUT, &out_buf, n).await?;
            }
            n = read_some(&mut stderr, &mut err_buf) => {
                forward(&mut sink, &mut stderr, protocol::STDERR, &err_buf, n).await?;
            }
            msg = incoming.next(), if client_open => match msg {
                Some(Ok(Message::Binary(data))) => match data.as_ref() {
                    [protocol::STDIN, rest @ ..] => {
                        if let Some(w) = stdin.as_mut()
                            && w.write_all(rest).await.is_err()
                        {
                            stdin = None;
                        }
                    }
                    [protocol::CLOSE, protocol::STDIN] => stdin = None,
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    // The client went away: nobody reads the output any more.
                    client_open = false;
                    stdin = None;
                    let _ = child.start_kill();
                }
                Some(Ok(_)) => {}
            },
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
    finish(&mut sink, protocol, outcome, &req).await
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

/// Sends the final status on the error channel and closes the WebSocket.
async fn finish<S>(
    sink: &mut Sink<S>,
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
        Ok(()) | Err(tokio_tungstenite::tungstenite::Error::ConnectionClosed) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
