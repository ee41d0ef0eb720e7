//! Running the steps: each command is echoed, and a failure names the command that failed.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The workspace root (xtask/ sits in it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// One command run from the workspace root.
#[derive(Debug)]
pub struct Step {
    command: Command,
    quiet: bool,
}

/// `cargo ARGS…`, with the variables `cargo run` set for xtask itself removed: passed on,
/// they look like changed build inputs and make build scripts (ring's) run again.
pub fn cargo<I, S>(args: I) -> Step
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut step = Step::new(cargo);
    step.command.args(args);
    step
}

/// A script of the repository, e.g. `tests/demo.sh`.
pub fn script(path: &str) -> Step {
    Step::new(repo_root().join(path))
}

/// Any program on `PATH`.
pub fn program(name: &str) -> Step {
    Step::new(name)
}

impl Step {
    fn new(program: impl AsRef<OsStr>) -> Self {
        let mut command = Command::new(program);
        command.current_dir(repo_root());
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            let leaked = [
                "CARGO_MANIFEST_",
                "CARGO_PKG_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
            ]
            .iter()
            .any(|prefix| key.starts_with(prefix))
                || matches!(
                    &*key,
                    "CARGO_PRIMARY_PACKAGE" | "CARGO_TARGET_TMPDIR" | "OUT_DIR"
                );
            if leaked {
                command.env_remove(&*key);
            }
        }
        Self {
            command,
            quiet: false,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    /// Do not echo the command line (for clean-up steps).
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    pub fn line(&self) -> String {
        let program = Path::new(self.command.get_program());
        // `$CARGO` is a full path into the toolchain: show it as `cargo`.
        let program = if program.file_name() == Some(OsStr::new("cargo")) {
            Path::new("cargo")
        } else {
            program
        };
        let program = program
            .strip_prefix(repo_root())
            .unwrap_or(program)
            .to_string_lossy();
        let program = program
            .rsplit('/')
            .next()
            .filter(|p| *p == "cargo")
            .map_or(program.clone(), |_| "cargo".into());
        std::iter::once(program.into_owned())
            .chain(
                self.command
                    .get_args()
                    .map(|a| a.to_string_lossy().into_owned()),
            )
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The command, to run in a way of the caller's.
    pub fn into_command(self) -> Command {
        self.command
    }

    /// Run with the terminal's stdout and stderr; fail unless it exits 0.
    pub fn run(mut self) -> Result<(), String> {
        let line = self.line();
        if !self.quiet {
            eprintln!("$ {line}");
        }
        let status = self
            .command
            .status()
            .map_err(|e| format!("cannot run `{line}`: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("`{line}` failed ({status})"))
        }
    }

    /// Run with stdout captured (stderr still shown); fail unless it exits 0.
    pub fn output(mut self) -> Result<String, String> {
        let line = self.line();
        if !self.quiet {
            eprintln!("$ {line}");
        }
        let out = self
            .command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run `{line}`: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!("`{line}` failed ({})", out.status))
        }
    }

    /// Run silently; true when it exits 0 (for probes such as "is X installed").
    pub fn succeeds(mut self) -> bool {
        self.command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

/// Build the release `berth` and return its path, as cargo reports it (wherever the target
/// directory is: `CARGO_TARGET_DIR`, a config file, or the default).
pub fn release_binary() -> Result<PathBuf, String> {
    let out = cargo([
        "build",
        "--release",
        "--package",
        "berth",
        "--bin",
        "berth",
        "--message-format=json-render-diagnostics",
    ])
    .output()?;
    out.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "berth")
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| "cargo build reported no `berth` executable".into())
}
