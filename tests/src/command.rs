//! Every process a test runs has a time limit: past it the process (and its group) is
//! killed and the test fails, showing what it printed so far. A test never hangs.

use std::io::Read;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long a berth command may run in a test unless the test says otherwise: far above
/// any command's own `--timeout` in the tests, so only a hang reaches it.
pub const BERTH_LIMIT: Duration = Duration::from_secs(150);

/// How long a build or first-use install a test needs may take (a cold build of a test
/// component, componentize-py from PyPI): far above its time on a cold machine.
pub const BUILD_LIMIT: Duration = Duration::from_secs(20 * 60);

/// How long output is still read after the process ended or was killed (a grandchild may
/// hold the pipes open).
const DRAIN: Duration = Duration::from_secs(2);

/// A process started by [`spawn`], its output read as it comes.
#[derive(Debug)]
pub struct Running {
    child: Child,
    line: String,
    stdout: mpsc::Receiver<Vec<u8>>,
    stderr: mpsc::Receiver<Vec<u8>>,
    /// What [`Running::stderr_so_far`] has taken from `stderr` already.
    stderr_seen: std::cell::RefCell<Vec<u8>>,
    started: Instant,
}

/// Start `command` with stdout and stderr captured and stdin empty, in a process group of
/// its own (so a kill reaches whatever it started).
pub fn spawn(command: &mut Command) -> Running {
    let line = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {line}: {e}"));
    let stdout = reader(child.stdout.take());
    let stderr = reader(child.stderr.take());
    Running {
        child,
        line,
        stdout,
        stderr,
        stderr_seen: std::cell::RefCell::default(),
        started: Instant::now(),
    }
}

/// Run `command` to its end within `limit` (see [`Running::finish`]).
pub fn output(command: &mut Command, limit: Duration) -> Output {
    spawn(command).finish(limit)
}

impl Running {
    /// The process id (also its process group's).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// What the process has written to stderr so far, without waiting.
    pub fn stderr_so_far(&self) -> String {
        let mut seen = self.stderr_seen.borrow_mut();
        while let Ok(chunk) = self.stderr.try_recv() {
            seen.extend_from_slice(&chunk);
        }
        String::from_utf8_lossy(&seen).into_owned()
    }

    /// Everything written to stderr, once the process ended.
    fn all_stderr(&mut self) -> Vec<u8> {
        let mut all = self.stderr_seen.take();
        all.extend(drained(&self.stderr));
        all
    }

    /// Whether the process has not exited yet.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait for the process; if it is still running `limit` after it started, kill its
    /// process group and panic with everything it printed.
    pub fn finish(mut self, limit: Duration) -> Output {
        let deadline = self.started + limit;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => break None,
                Ok(None) => thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("waiting for {}: {e}", self.line),
            }
        };
        let Some(status) = status else {
            kill_group(&mut self.child);
            let (stdout, stderr) = (drained(&self.stdout), self.all_stderr());
            panic!(
                "{} was still running {limit:?} after it started: killed. It printed:\n\
                 --- stdout\n{}\n--- stderr\n{}",
                self.line,
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
        };
        Output {
            status,
            stdout: drained(&self.stdout),
            stderr: self.all_stderr(),
        }
    }

    /// Send the process SIGTERM and wait for it to end, at most `limit` (then it is killed
    /// and the test fails, showing what it printed).
    pub fn terminate(self, limit: Duration) -> Output {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        let mut this = self;
        this.started = started;
        this.finish(limit)
    }

    /// Send the process `signal` (`STOP`, `CONT`, `KILL`, …).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {}", self.child.id());
    }

    /// Kill the process group now and return what it printed (for a test that ends a
    /// command itself).
    pub fn kill(mut self) -> Output {
        kill_group(&mut self.child);
        Output {
            status: self.child.wait().expect("reap a killed process"),
            stdout: drained(&self.stdout),
            stderr: self.all_stderr(),
        }
    }
}

impl Drop for Running {
    /// A test that panics before finishing a command leaves no process behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            kill_group(&mut self.child);
            let _ = self.child.wait();
        }
    }
}

fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
}

/// Reads a pipe to its end on a thread of its own.
fn reader(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        thread::spawn(move || {
            let mut buf = [0u8; 8192];
            // Sent as it comes: a process killed at its limit still shows what it printed.
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

/// What a reader has collected, waiting at most [`DRAIN`] for the pipe to close.
fn drained(rx: &mpsc::Receiver<Vec<u8>>) -> Vec<u8> {
    let deadline = Instant::now() + DRAIN;
    let mut all = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => all.extend_from_slice(&chunk),
            Err(_) => return all,
        }
    }
}

/// A bound on in-process work that cannot be interrupted (a build in the sandbox): if the
/// guard is still alive `limit` after it was made, the whole test process exits with a
/// message naming `what`, so a missing bound fails the suite instead of hanging it.
#[derive(Debug)]
pub struct Watchdog {
    _done: mpsc::Sender<()>,
}

impl Watchdog {
    pub fn new(what: &str, limit: Duration) -> Self {
        let (done, wait) = mpsc::channel::<()>();
        let what = what.to_owned();
        thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(limit) {
                eprintln!("{what}: still running after {limit:?}; the test process gives up");
                std::process::exit(101);
            }
        });
        Self { _done: done }
    }
}

/// [`output`] as a method of the command.
pub trait OutputWithin {
    /// Run to its end within `limit`, or be killed and fail the test with its output.
    fn output_within(&mut self, limit: Duration) -> Output;
}

impl OutputWithin for Command {
    fn output_within(&mut self, limit: Duration) -> Output {
        output(self, limit)
    }
}
