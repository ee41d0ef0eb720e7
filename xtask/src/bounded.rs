//! The test phase's time bound: every step after the first-use installs shares one
//! deadline; past it the running step is killed and, for `cargo test`, the tests still
//! running are named. A hang fails the command instead of holding CI.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::run::Step;

/// When the test phase must be over.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    limit: Duration,
}

impl Deadline {
    pub fn after(limit: Duration) -> Self {
        Self {
            at: Instant::now() + limit,
            limit,
        }
    }

    fn left(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    fn overrun(&self, what: &str) -> String {
        let secs = self.limit.as_secs();
        let limit = if secs.is_multiple_of(60) {
            format!("{} min", secs / 60)
        } else {
            format!("{secs} s")
        };
        format!("the test phase ran past its {limit}: stopped during `{what}`")
    }
}

/// One line of a child's output, from stdout or stderr.
enum Line {
    Out(String),
    Err(String),
}

/// What `cargo test` has said so far: the test binary it runs and the tests it finished.
#[derive(Default)]
struct Progress {
    binary: Option<(String, PathBuf)>,
    finished: BTreeSet<String>,
}

impl Progress {
    fn see(&mut self, line: &str) {
        // `     Running tests/cluster.rs (/target/debug/deps/cluster-0123abcd)`
        if let Some(rest) = line.trim_start().strip_prefix("Running ")
            && let Some((source, path)) = rest.rsplit_once(" (")
        {
            let path = path.trim_end_matches(')');
            self.binary = Some((source.to_owned(), PathBuf::from(path)));
            self.finished.clear();
        } else if line.trim_start().starts_with("Doc-tests ") {
            self.binary = Some((line.trim().to_owned(), PathBuf::new()));
            self.finished.clear();
        } else if let Some(rest) = line.strip_prefix("test ")
            && let Some((name, _)) = rest.split_once(" ... ")
        {
            self.finished.insert(name.to_owned());
        }
    }

    /// The tests of the current binary that have not finished.
    fn still_running(&self) -> String {
        let Some((source, path)) = &self.binary else {
            return "no test binary had started (still building)".into();
        };
        let listed = Command::new(path)
            .args(["--list", "--format", "terse"])
            .stderr(Stdio::null())
            .output();
        let Ok(listed) = listed else {
            return format!("{source}: its tests could not be listed");
        };
        let running: Vec<&str> = std::str::from_utf8(&listed.stdout)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_suffix(": test"))
            .filter(|name| !self.finished.contains(*name))
            .collect();
        format!("{source}: {}", running.join(", "))
    }
}

impl Step {
    /// Run within what is left of `deadline`; past it, kill the step's process group.
    pub fn run_until(self, deadline: Deadline) -> Result<(), String> {
        self.run_watched(deadline, false)
    }

    /// [`Step::run_until`] for `cargo test`: its output is passed through as it comes and
    /// read, so that an overrun names the tests still running.
    pub fn run_tests_until(self, deadline: Deadline) -> Result<(), String> {
        self.run_watched(deadline, true)
    }

    fn run_watched(self, deadline: Deadline, tests: bool) -> Result<(), String> {
        let line = self.line();
        eprintln!("$ {line}");
        let mut command = self.into_command();
        command.process_group(0);
        if tests {
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot run `{line}`: {e}"))?;
        let (tx, lines) = mpsc::channel();
        if tests {
            forward(child.stdout.take(), tx.clone(), Line::Out);
            forward(child.stderr.take(), tx, Line::Err);
        } else {
            drop(tx);
        }
        let mut progress = Progress::default();
        let mut pass = |l: Line| match l {
            Line::Out(l) => {
                progress.see(&l);
                println!("{l}");
            }
            Line::Err(l) => {
                progress.see(&l);
                eprintln!("{l}");
            }
        };
        loop {
            match lines.recv_timeout(Duration::from_millis(100)) {
                Ok(l) => pass(l),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    thread::sleep(Duration::from_millis(100));
                }
            }
            let exited = child
                .try_wait()
                .map_err(|e| format!("waiting for `{line}`: {e}"))?;
            if let Some(status) = exited {
                // What is still in the pipes (a few seconds at most: a grandchild may
                // hold them open).
                let until = Instant::now() + Duration::from_secs(5);
                while let Ok(l) =
                    lines.recv_timeout(until.saturating_duration_since(Instant::now()))
                {
                    pass(l);
                }
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("`{line}` failed ({status})"))
                };
            }
            if deadline.left().is_zero() {
                let running = if tests {
                    format!("; still running: {}", progress.still_running())
                } else {
                    String::new()
                };
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .status();
                let _ = child.wait();
                return Err(format!("{}{running}", deadline.overrun(&line)));
            }
        }
    }
}

/// Reads a pipe line by line on a thread of its own.
fn forward(
    pipe: Option<impl Read + Send + 'static>,
    tx: mpsc::Sender<Line>,
    wrap: fn(String) -> Line,
) {
    let Some(pipe) = pipe else { return };
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(wrap(line)).is_err() {
                break;
            }
        }
    });
}
