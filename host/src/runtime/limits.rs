//! What a rules component may use per call, and the range berth accepts.

use std::time::Duration;

/// What a rules component may use per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall time one `build` call may take; instantiating a fresh instance (first call,
    /// and after a failure) gets the same again.
    pub deadline: Duration,
    /// Linear memory the component may grow to, in bytes, all its memories together.
    pub memory: usize,
    /// Total JSON the component may return, in bytes.
    pub output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(1),
            memory: 64 << 20,
            output: 4 << 20,
        }
    }
}

/// A limit berth cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// The deadline is outside [`Limits::MIN_DEADLINE`]..=[`Limits::MAX_DEADLINE`].
    #[error("deadline {0:?} is out of range: from 10ms to 10m")]
    Deadline(Duration),
    /// The memory cap is outside [`Limits::MIN_MEMORY`]..=[`Limits::MAX_MEMORY`].
    #[error("memory {0} bytes is out of range: from 1Mi to 4Gi")]
    Memory(usize),
}

impl Limits {
    /// Shortest deadline: one tick of the deadline clock.
    pub const MIN_DEADLINE: Duration = Duration::from_millis(10);
    /// Longest deadline; rules are a pure function of small inputs.
    pub const MAX_DEADLINE: Duration = Duration::from_secs(600);
    /// Smallest memory cap: below it not even an empty Rust component instantiates.
    pub const MIN_MEMORY: usize = 1 << 20;
    /// Largest memory cap: what 32-bit linear memory can address.
    pub const MAX_MEMORY: usize = 4 << 30;

    /// Whether berth accepts these limits.
    pub fn check(&self) -> Result<(), LimitError> {
        if !(Self::MIN_DEADLINE..=Self::MAX_DEADLINE).contains(&self.deadline) {
            return Err(LimitError::Deadline(self.deadline));
        }
        if !(Self::MIN_MEMORY..=Self::MAX_MEMORY).contains(&self.memory) {
            return Err(LimitError::Memory(self.memory));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_in_range() {
        assert_eq!(Limits::default().check(), Ok(()));
        let at = |deadline, memory| Limits {
            deadline,
            memory,
            ..Limits::default()
        };
        assert_eq!(at(Limits::MIN_DEADLINE, Limits::MIN_MEMORY).check(), Ok(()));
        assert_eq!(at(Limits::MAX_DEADLINE, Limits::MAX_MEMORY).check(), Ok(()));
        let short = Duration::from_millis(9);
        assert_eq!(
            at(short, Limits::MIN_MEMORY).check(),
            Err(LimitError::Deadline(short))
        );
        assert_eq!(
            at(Limits::MIN_DEADLINE, Limits::MIN_MEMORY - 1).check(),
            Err(LimitError::Memory(Limits::MIN_MEMORY - 1))
        );
    }
}
