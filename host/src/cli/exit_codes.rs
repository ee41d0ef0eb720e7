//! berth's exit codes, one per outcome a script may want to tell apart.

use std::process::ExitCode;

/// How a berth command ended. (Arguments that do not parse end before any command, with
/// clap's code, 2.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// The command did what was asked.
    Success,
    /// It failed: bad input, the rules refused, the API server refused, … (the message
    /// says which).
    Error,
    /// `status` found the component not available, or a wait (`wait`, `--wait`) ended
    /// with the rollout failed or timed out.
    NotAvailable,
    /// `exec` ran, but the command failed (or could not run) in at least one pod.
    ExecFailed,
    /// `diff` found something deploy would change (as `kubectl diff`).
    Changes,
    /// `diff` failed (as `kubectl diff`, an error is above 1).
    DiffFailed,
}

impl ExitStatus {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Error => 1,
            ExitStatus::NotAvailable => 3,
            ExitStatus::ExecFailed => 4,
            ExitStatus::Changes => 1,
            ExitStatus::DiffFailed => 2,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status.code())
    }
}
