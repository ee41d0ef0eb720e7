//! What cluster commands print: text for people, JSON for programs.

use std::io::Write;

use serde::Serialize;

use super::args::Output;
use berth::cluster::{
    DeployReport, ExecLine, ExecOutcome, Revision, Status, Stream, UndeployReport,
};

/// The deployment description.
pub fn deploy(report: &DeployReport, output: Output) -> String {
    if output == Output::Json {
        return json(report);
    }
    let mut text = String::new();
    for (object, action) in &report.actions {
        text += &format!("{object} {action}\n");
    }
    text += &format!(
        "namespace: {}\ndeployment: {}\nservices: {}\n",
        report.namespace,
        report.deployment,
        if report.services.is_empty() {
            "(none)".to_owned()
        } else {
            report.services.join(", ")
        }
    );
    text
}

/// What undeploy deleted.
pub fn undeploy(report: &UndeployReport) -> String {
    report
        .deleted
        .iter()
        .map(|d| format!("{d} deleted\n"))
        .collect()
}

/// Replicas, images, revision.
pub fn status(s: &Status, output: Output) -> String {
    if output == Output::Json {
        return json(s);
    }
    format!(
        "deployment: {}/{}\nreplicas: {} desired, {} updated, {} ready, {} available\nimages: {}\nrevision: {}\navailable: {}\nrollout: {}\n",
        s.namespace,
        s.deployment,
        s.desired,
        s.updated,
        s.ready,
        s.available,
        s.images.join(", "),
        s.revision.as_deref().unwrap_or("-"),
        if s.is_available { "yes" } else { "no" },
        s.rollout.message()
    )
}

/// Revisions, oldest first.
pub fn history(revisions: &[Revision], output: Output) -> String {
    if output == Output::Json {
        return json(&revisions);
    }
    let mut text = String::from("REVISION  IMAGES\n");
    for r in revisions {
        text += &format!(
            "{:<8}{} {}\n",
            r.revision,
            if r.current { "*" } else { " " },
            r.images.join(", ")
        );
    }
    text
}

/// One progress line while waiting.
pub fn progress_line(s: &Status) -> String {
    format!(
        "{}: {} ({}/{} updated, {}/{} available)",
        s.deployment,
        s.rollout.message(),
        s.updated,
        s.desired,
        s.available,
        s.desired
    )
}

/// Show a progress line: rewritten in place on a terminal, one per line otherwise.
pub fn show_progress(line: &str, live: bool) {
    let mut err = std::io::stderr().lock();
    let _ = if live {
        write!(err, "\r\x1b[2K{line}")
    } else {
        writeln!(err, "{line}")
    };
    let _ = err.flush();
}

/// A line of a pod's output, prefixed with the pod.
pub fn exec_line(line: ExecLine<'_>) {
    match line.stream {
        Stream::Stdout => {
            let _ = writeln!(std::io::stdout().lock(), "[{}] {}", line.pod, line.line);
        }
        Stream::Stderr => {
            let _ = writeln!(std::io::stderr().lock(), "[{}] {}", line.pod, line.line);
        }
    }
}

/// Each pod's exit code (text), or every outcome with its output (JSON).
pub fn exec_summary(outcomes: &[ExecOutcome], output: Output) -> String {
    if output == Output::Json {
        return json(&outcomes);
    }
    let failed = outcomes.iter().filter(|o| !o.succeeded()).count();
    let mut text = format!("--- {} pods, {} failed\n", outcomes.len(), failed);
    for o in outcomes {
        text += &match (&o.exit_code, &o.error) {
            (Some(code), _) => format!("{}: exit code {code}\n", o.pod),
            (None, Some(error)) => format!("{}: {error}\n", o.pod),
            (None, None) => format!("{}: no exit code\n", o.pod),
        };
    }
    text
}

fn json(value: &impl Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}
