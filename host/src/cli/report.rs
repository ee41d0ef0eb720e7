//! What cluster commands print: text for people, JSON for programs.

use std::io::Write;

use serde::Serialize;

use super::args::Output;
use super::error::CliError;
use berth::{
    ComponentSummary, DeployReport, ExecLine, ExecOutcome, Revision, Status, Stream,
    UndeployReport, UndoReport,
};

/// The deployment description.
pub fn deploy(report: &DeployReport, output: Output) -> String {
    if output == Output::Json {
        return json(report);
    }
    let mut text = String::new();
    if report.dry_run {
        text += "server dry run: nothing was changed\n";
    }
    for (object, action) in &report.actions {
        text += &format!("{object} {action}\n");
    }
    for (object, taken) in &report.taken_over {
        text += &format!(
            "{object}: took {} from field manager {}\n",
            taken.fields.join(", "),
            taken.manager
        );
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

/// What was put back after a failed rollout, and what could not be, on stderr: the
/// error that follows says why the rollout failed.
pub fn undone(report: &UndoReport) {
    let names = |objects: &[berth::ObjectRef]| {
        objects
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !report.removed.is_empty() {
        eprintln!("undone: removed {}", names(&report.removed));
    }
    if !report.restored.is_empty() {
        eprintln!(
            "undone: restored {} as they were (a Deployment's earlier pod template is a new revision in its history)",
            names(&report.restored)
        );
    }
    if !report.recreated.is_empty() {
        eprintln!("undone: made again {}", names(&report.recreated));
    }
    for (object, why) in &report.failed {
        eprintln!("could not restore {object}: {why}");
    }
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

/// The components, as a table (text) or every field (JSON).
pub fn list(components: &[ComponentSummary], output: Output) -> String {
    if output == Output::Json {
        return json(&components);
    }
    let rows: Vec<[String; 8]> = components
        .iter()
        .map(|c| {
            [
                c.namespace.clone(),
                c.name.clone(),
                format!("{}/{}", c.ready, c.desired),
                c.images.join(","),
                c.revision.clone().unwrap_or_else(|| "-".into()),
                // The digest's first 12 hex digits, as container tools show image ids.
                c.rules_digest.as_deref().map_or("-".into(), |d| {
                    d.chars().take("sha256:".len() + 12).collect()
                }),
                c.managed_by.clone(),
                c.age_seconds.map_or("-".into(), age),
            ]
        })
        .collect();
    let header = [
        "NAMESPACE",
        "NAME",
        "READY",
        "IMAGES",
        "REVISION",
        "RULES",
        "MANAGED BY",
        "AGE",
    ]
    .map(String::from);
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            std::iter::once(&header)
                .chain(&rows)
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    std::iter::once(&header)
        .chain(&rows)
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            cells.join("  ").trim_end().to_owned() + "\n"
        })
        .collect()
}

/// An age as kubectl shows it: `42s`, `5m`, `3h`, `12d`.
fn age(seconds: i64) -> String {
    match seconds.max(0) {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
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

pub fn json(value: &impl Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}

/// Write `text` to stdout; a reader that stopped early (`| head`) is not an error.
pub fn write_stdout(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A reader that stopped early (`| head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(CliError::Write),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_as_kubectl_shows_them() {
        assert_eq!(age(-3), "0s");
        assert_eq!(age(42), "42s");
        assert_eq!(age(119), "119s");
        assert_eq!(age(300), "5m");
        assert_eq!(age(3 * 3600), "3h");
        assert_eq!(age(12 * 86_400 + 5), "12d");
    }

    #[test]
    fn the_list_is_a_table_with_short_digests() {
        let mut c = ComponentSummary::default();
        c.namespace = "shop".into();
        c.name = "web".into();
        c.deployment = "dep-web".into();
        c.ready = 1;
        c.desired = 2;
        c.images = vec!["nginx:1.27".into()];
        c.revision = Some("3".into());
        c.rules_digest = Some(format!("sha256:{}", "ab".repeat(32)));
        c.age_seconds = Some(90);
        c.managed_by = "Component/web".into();
        assert_eq!(
            list(&[c], Output::Text),
            "NAMESPACE  NAME  READY  IMAGES      REVISION  RULES                MANAGED BY     AGE\n\
             shop       web   1/2    nginx:1.27  3         sha256:abababababab  Component/web  90s\n"
        );
    }
}
