//! What a rules component may use per call, and reading those limits from the command
//! line (`--rules-deadline 500ms`, `--rules-memory 128Mi`).

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

/// Shortest deadline: one tick of the deadline clock.
pub const MIN_DEADLINE: Duration = Duration::from_millis(10);
/// Longest deadline; rules are a pure function of small inputs.
pub const MAX_DEADLINE: Duration = Duration::from_secs(600);
/// Smallest memory cap: below it not even an empty Rust component instantiates.
pub const MIN_MEMORY: usize = 1 << 20;
/// Largest memory cap: what 32-bit linear memory can address.
pub const MAX_MEMORY: usize = 4 << 30;

/// A limit given as text that berth cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// Not a number with a known unit.
    #[error("{0:?} is not {1}")]
    Syntax(String, &'static str),
    /// Outside the range berth accepts.
    #[error("{0:?} is out of range: {1}")]
    Range(String, &'static str),
}

/// Parse a deadline: `N` seconds, or `N` followed by `ms`, `s` or `m` (`500ms`, `2s`),
/// 10 ms to 10 minutes.
///
/// Fits clap's `value_parser`.
pub fn parse_deadline(text: &str) -> Result<Duration, LimitError> {
    const SYNTAX: &str = "a duration like 500ms, 2s or 1m";
    let t = text.trim();
    let (digits, unit) = [
        ("ms", Duration::from_millis(1)),
        ("s", Duration::from_secs(1)),
        ("m", Duration::from_secs(60)),
    ]
    .iter()
    .find_map(|(suffix, unit)| t.strip_suffix(suffix).map(|d| (d, *unit)))
    .unwrap_or((t, Duration::from_secs(1)));
    let n: u32 = number(digits).ok_or_else(|| LimitError::Syntax(text.to_owned(), SYNTAX))?;
    let deadline = unit
        .checked_mul(n)
        .filter(|d| (MIN_DEADLINE..=MAX_DEADLINE).contains(d))
        .ok_or_else(|| LimitError::Range(text.to_owned(), "from 10ms to 10m"))?;
    Ok(deadline)
}

/// Parse a memory size: bytes, or `N` followed by `Ki`, `Mi` or `Gi` (`64Mi`), 1 Mi to
/// 4 Gi.
///
/// Fits clap's `value_parser`.
pub fn parse_memory(text: &str) -> Result<usize, LimitError> {
    const SYNTAX: &str = "a size like 64Mi, 1Gi or 1048576";
    let t = text.trim();
    let (digits, shift) = [("Ki", 10), ("Mi", 20), ("Gi", 30)]
        .iter()
        .find_map(|(suffix, shift)| t.strip_suffix(suffix).map(|d| (d, *shift)))
        .unwrap_or((t, 0));
    let n: u64 = number(digits).ok_or_else(|| LimitError::Syntax(text.to_owned(), SYNTAX))?;
    n.checked_mul(1 << shift)
        .and_then(|bytes| usize::try_from(bytes).ok())
        .filter(|bytes| (MIN_MEMORY..=MAX_MEMORY).contains(bytes))
        .ok_or_else(|| LimitError::Range(text.to_owned(), "from 1Mi to 4Gi"))
}

/// Plain decimal digits only: no sign, no spaces, no underscores.
fn number<T: std::str::FromStr>(digits: &str) -> Option<T> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines() {
        assert_eq!(parse_deadline("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_deadline("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_deadline("10ms"), Ok(MIN_DEADLINE));
        assert_eq!(parse_deadline("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_deadline("10m"), Ok(MAX_DEADLINE));
        for bad in ["", "1h", "-1s", "1.5s", "s", "ms", " 1 s"] {
            assert!(
                matches!(parse_deadline(bad), Err(LimitError::Syntax(..))),
                "{bad}"
            );
        }
        for out in ["0s", "9ms", "601s", "11m", "99999999999s"] {
            assert!(
                matches!(
                    parse_deadline(out),
                    Err(LimitError::Range(..)) | Err(LimitError::Syntax(..))
                ),
                "{out}"
            );
        }
        assert_eq!(
            parse_deadline("0s").unwrap_err().to_string(),
            "\"0s\" is out of range: from 10ms to 10m"
        );
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("64Mi"), Ok(64 << 20));
        assert_eq!(parse_memory("1Gi"), Ok(1 << 30));
        assert_eq!(parse_memory("2048Ki"), Ok(2 << 20));
        assert_eq!(parse_memory("1048576"), Ok(1 << 20));
        assert_eq!(parse_memory("4Gi"), Ok(MAX_MEMORY));
        for bad in ["", "Mi", "64M", "64MiB", "-1Mi", "1.5Gi", "0x10"] {
            assert!(
                matches!(parse_memory(bad), Err(LimitError::Syntax(..))),
                "{bad}"
            );
        }
        for out in ["0", "1023Ki", "5Gi", "99999999999999999999Gi"] {
            assert!(parse_memory(out).is_err(), "{out}");
        }
        assert_eq!(
            parse_memory("5Gi").unwrap_err().to_string(),
            "\"5Gi\" is out of range: from 1Mi to 4Gi"
        );
    }
}
