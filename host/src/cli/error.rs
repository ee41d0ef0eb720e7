//! The command line's error: what failed, from any layer of the library, plus the CLI's
//! own steps; and the exit status each maps to.

use berth::ClusterError;
use berth::{FormatError, RenderError};
use berth::{InputError, RulesError};

use super::exit_codes::ExitStatus;

/// Why a berth command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Reading the spec or site config failed.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Loading the rules component failed.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// Pulling or pushing a rules component failed.
    #[error(transparent)]
    Oci(#[from] berth::OciError),
    /// Rendering failed.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// Writing the objects out failed.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// A cluster operation failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The controller failed.
    #[error(transparent)]
    Controller(#[from] berth::ControllerError),
    /// A controller's rules named by a tag, which could change behind everyone's back.
    #[error("--rules {0}: a controller's rules are pinned by digest (oci://…@sha256:…), not a tag")]
    UnpinnedRules(String),
    /// Rules from a file for pods that only have their image.
    #[error(
        "--rules {}: a file is not in the controller's image: push it (berth rules push) and name it oci://…@sha256:…",
        .0.display()
    )]
    NotInImage(std::path::PathBuf),
    /// The controller's HTTP address could not be listened on.
    #[error("--http {0}: cannot listen")]
    Listen(std::net::SocketAddr, #[source] std::io::Error),
    /// `--namespace` given more than once to a command that works in one.
    #[error("--namespace given {} times ({}): only `berth controller` watches several", .0.len(), .0.join(", "))]
    Namespaces(Vec<String>),
    /// A rollout did not finish (timed out, failed, or its Deployment was deleted).
    #[error(transparent)]
    NotRolledOut(ClusterError),
    /// `diff` failed: its own exit code, above 1.
    #[error(transparent)]
    Diff(Box<CliError>),
    /// The async runtime could not start.
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    /// Writing the output failed.
    #[error("cannot write the output")]
    Write(#[source] std::io::Error),
}

impl CliError {
    /// The exit status this failure ends the process with.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            CliError::NotRolledOut(_) => ExitStatus::NotAvailable,
            CliError::Diff(_) => ExitStatus::DiffFailed,
            _ => ExitStatus::Error,
        }
    }
}
