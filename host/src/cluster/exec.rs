//! exec: run a command in the main container of every running pod of a component, in
//! parallel, streaming each output line as it comes and collecting each exit code.

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams, ListParams};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::{Cluster, ClusterError, name_of};
use crate::selector::Selector;

/// Which output a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of a pod's output, as it arrives.
#[derive(Debug, Clone, Copy)]
pub struct ExecLine<'a> {
    /// The pod it came from.
    pub pod: &'a str,
    /// stdout or stderr.
    pub stream: Stream,
    /// The line, without its newline.
    pub line: &'a str,
}

/// How the command went in one pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ExecOutcome {
    /// Pod name.
    pub pod: String,
    /// The command's exit code; `None` when it did not run to the end (see `error`).
    pub exit_code: Option<i32>,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
    /// Why there is no exit code (the pod disappeared, the command could not start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ExecOutcome {
    /// Whether the command ran and exited 0.
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0)
    }
}

impl Cluster {
    /// Run `command` in the main container of each running pod of `component`, at most
    /// `max_concurrency` at a time. Pods are found through the Deployment's own selector.
    /// `on_line` sees every line as it arrives; the outcomes come back sorted by pod.
    pub async fn exec(
        &self,
        component: &str,
        command: &[String],
        max_concurrency: usize,
        on_line: &(dyn Fn(ExecLine<'_>) + Sync),
    ) -> Result<Vec<ExecOutcome>, ClusterError> {
        let d = self.find_deployment(component).await?;
        let spec = d.spec.unwrap_or_default();
        let container = spec
            .template
            .spec
            .and_then(|p| p.containers.into_iter().next())
            .map(|c| c.name)
            .unwrap_or_default();
        // The Deployment's whole selector: an approximation could reach others' pods.
        let selector = Selector::new(&spec.selector)
            .map_err(|problem| ClusterError::Selector {
                component: component.to_owned(),
                problem,
            })?
            .to_query();
        let pods: Api<Pod> = self.requests.typed();
        let mut names: Vec<String> = pods
            .list(
                &ListParams::default()
                    .labels(&selector)
                    .fields("status.phase=Running"),
            )
            .await
            .map_err(ClusterError::api(format!(
                "cannot list pods in namespace {}",
                self.namespace()
            )))?
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| name_of(&p.metadata))
            .collect();
        if names.is_empty() {
            return Err(ClusterError::NoRunningPods {
                component: component.to_owned(),
            });
        }
        names.sort();
        let mut outcomes: Vec<ExecOutcome> = stream::iter(&names)
            .map(|pod| exec_pod(&pods, pod, &container, command, on_line))
            .buffer_unordered(max_concurrency.max(1))
            .collect()
            .await;
        outcomes.sort_by(|a, b| a.pod.cmp(&b.pod));
        Ok(outcomes)
    }
}

async fn exec_pod(
    pods: &Api<Pod>,
    pod: &str,
    container: &str,
    command: &[String],
    on_line: &(dyn Fn(ExecLine<'_>) + Sync),
) -> ExecOutcome {
    let mut outcome = ExecOutcome {
        pod: pod.to_owned(),
        exit_code: None,
        stdout: String::new(),
        stderr: String::new(),
        error: None,
    };
    let params = AttachParams::default()
        .container(container)
        .stdout(true)
        .stderr(true);
    let mut process = match pods.exec(pod, command.to_vec(), &params).await {
        Ok(process) => process,
        Err(kube::Error::Api(status)) if status.code == 404 => {
            outcome.error = Some("pod no longer exists".into());
            return outcome;
        }
        Err(e) => {
            outcome.error = Some(match e {
                kube::Error::Api(status) => status.message,
                other => other.to_string(),
            });
            return outcome;
        }
    };
    let status = process.take_status();
    let status = async move {
        match status {
            Some(status) => status.await,
            None => None,
        }
    };
    let (out, err) = (process.stdout(), process.stderr());
    let (mut stdout, mut stderr) = (String::new(), String::new());
    // The session ends with its status (the pipes then close), or without one when the
    // connection ends or breaks; only then is the process joined. Joining earlier would
    // end kube's stdin, which on v4 (every kubelet before 1.30 speaks no later) closes the
    // whole WebSocket: the kubelet would end the command and its status would be lost.
    // When the connection breaks, kube leaves the pipes open, so what is buffered is read
    // for a moment and then let go.
    let status = {
        let reading = async {
            tokio::join!(
                collect(out, pod, Stream::Stdout, on_line, &mut stdout),
                collect(err, pod, Stream::Stderr, on_line, &mut stderr),
            )
        };
        tokio::pin!(reading, status);
        tokio::select! {
            _ = &mut reading => status.await,
            got = &mut status => {
                if got.is_some() {
                    reading.await;
                } else {
                    let _ = tokio::time::timeout(DRAIN, reading).await;
                }
                got
            }
        }
    };
    let ended = process.join().await;
    outcome.stdout = stdout;
    outcome.stderr = stderr;
    if let Err(e) = ended {
        outcome.error = Some(format!(
            "the connection broke, the exit status is unknown: {e}"
        ));
    }
    match status {
        Some(s) if s.status.as_deref() == Some("Success") => outcome.exit_code = Some(0),
        Some(s) => match exit_code(&s) {
            Some(code) => outcome.exit_code = Some(code),
            None => outcome.error = Some(s.message.unwrap_or_else(|| "the command failed".into())),
        },
        None if outcome.error.is_none() => {
            outcome.error = Some("the command ended without an exit status".into())
        }
        None => {}
    }
    outcome
}

/// The exit code of a `NonZeroExitCode` failure, as the kubelet reports it.
fn exit_code(status: &Status) -> Option<i32> {
    if status.reason.as_deref() != Some("NonZeroExitCode") {
        return None;
    }
    status
        .details
        .as_ref()?
        .causes
        .iter()
        .flatten()
        .find(|c| c.reason.as_deref() == Some("ExitCode"))?
        .message
        .as_deref()?
        .parse()
        .ok()
}

/// Read `reader` line by line, reporting each line and keeping all of it.
async fn collect(
    reader: Option<impl AsyncRead + Unpin>,
    pod: &str,
    stream: Stream,
    on_line: &(dyn Fn(ExecLine<'_>) + Sync),
    all: &mut String,
) {
    let Some(reader) = reader else {
        return;
    };
    let mut lines = BufReader::new(reader).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        on_line(ExecLine {
            pod,
            stream,
            line: &line,
        });
        all.push_str(&line);
        all.push('\n');
    }
}

/// How long output already received is read after a session's connection broke.
const DRAIN: std::time::Duration = std::time::Duration::from_millis(200);
