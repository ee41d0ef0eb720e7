//! The error every rule returns: which field is wrong and why.

/// A spec or site-config field that the rules refuse, named by its path (`ports[1]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// Path of the field, as the user wrote it (`readiness.interval`, `labels.team`).
    pub field: String,
    /// What is wrong, quoting the value.
    pub message: String,
}

impl FieldError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Result of a rule.
pub type Result<T, E = FieldError> = std::result::Result<T, E>;
