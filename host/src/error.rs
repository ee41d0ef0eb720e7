//! The errors of berth's commands, one variant per failing step.

use std::path::PathBuf;

use crate::objects::InvalidObject;
use crate::render::FormatError;
use crate::runtime::{Refusal, RulesError};
use crate::spec::{InputError, Origin};

/// Why a berth command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the spec or site config failed.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Loading or running the rules component failed.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// The rules refused the spec.
    #[error("{spec}: {refusal}")]
    Refused { spec: Origin, refusal: Refusal },
    /// Two specs build an object of the same kind and name: one would replace the other.
    #[error("{second}: builds {object}, which {first} builds too")]
    Collision {
        object: String,
        first: Origin,
        second: Origin,
    },
    /// A command that works on one component was given several.
    #[error("{}: holds {count} component specs; {command} takes one", path.display())]
    NotOne {
        path: PathBuf,
        count: usize,
        command: &'static str,
    },
    /// The rules returned objects the host refuses.
    #[error(transparent)]
    InvalidObject(#[from] InvalidObject),
    /// Formatting the output failed.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// A cluster operation failed.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    /// The async runtime could not start.
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    /// Writing the output failed.
    #[error("cannot write the output")]
    Write(#[source] std::io::Error),
}
