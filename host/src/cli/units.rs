//! The one grammar of the CLI's durations (`500ms`, `90s`, `2m`, `1h`, plain seconds) and
//! sizes (`64Mi`, `1Gi`, bytes). The spec's probe intervals keep the seed's own grammar.

use std::time::Duration;

use berth::Limits;

const DURATION: &str = "a duration like 500ms, 90s, 2m, 1h or seconds";

/// Parse `500ms`, `90s`, `2m`, `1h` or plain seconds.
pub fn duration(text: &str) -> Result<Duration, String> {
    let units = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)];
    let (digits, millis) = units
        .iter()
        .find_map(|(suffix, ms)| text.strip_suffix(suffix).map(|d| (d, *ms)))
        .unwrap_or((text, 1_000));
    number(digits)
        .and_then(|n: u64| n.checked_mul(millis))
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is not {DURATION}"))
}

/// A duration in 10ms..=10m: how long the rules may take for one component.
pub fn rules_deadline(text: &str) -> Result<Duration, String> {
    let deadline = duration(text)?;
    if (Limits::MIN_DEADLINE..=Limits::MAX_DEADLINE).contains(&deadline) {
        Ok(deadline)
    } else {
        Err(format!("{text:?} is out of range: from 10ms to 10m"))
    }
}

/// A size in bytes, or with `Ki`, `Mi` or `Gi`, in 1Mi..=4Gi: the rules' memory.
pub fn rules_memory(text: &str) -> Result<usize, String> {
    let (digits, shift) = [("Ki", 10), ("Mi", 20), ("Gi", 30)]
        .iter()
        .find_map(|(suffix, shift)| text.strip_suffix(suffix).map(|d| (d, *shift)))
        .unwrap_or((text, 0));
    let n: u64 = number(digits)
        .ok_or_else(|| format!("{text:?} is not a size like 64Mi, 1Gi or 1048576"))?;
    n.checked_mul(1 << shift)
        .and_then(|bytes| usize::try_from(bytes).ok())
        .filter(|bytes| (Limits::MIN_MEMORY..=Limits::MAX_MEMORY).contains(bytes))
        .ok_or_else(|| format!("{text:?} is out of range: from 1Mi to 4Gi"))
}

/// A Kubernetes version, `MAJOR.MINOR` (`1.20`; a leading `v` and a patch are dropped).
pub fn kube_version(text: &str) -> Result<String, String> {
    let t = text.strip_prefix('v').unwrap_or(text);
    let mut parts = t.split('.');
    match (
        parts.next().and_then(number::<u32>),
        parts.next().and_then(number::<u32>),
    ) {
        (Some(major), Some(minor)) if parts.count() <= 1 => Ok(format!("{major}.{minor}")),
        _ => Err(format!("{text:?} is not a Kubernetes version like 1.20")),
    }
}

/// Plain decimal digits only: no sign, no spaces, no underscores, no fraction.
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
    fn durations() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(duration("45"), Ok(Duration::from_secs(45)));
        for bad in [
            "",
            "s",
            "ms",
            "1.5m",
            "-3",
            "2d",
            "1 m",
            " 1s",
            "99999999999999999999",
        ] {
            assert_eq!(
                duration(bad),
                Err(format!("{bad:?} is not {DURATION}")),
                "{bad}"
            );
        }
    }

    #[test]
    fn rules_deadlines_share_the_grammar() {
        assert_eq!(rules_deadline("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(rules_deadline("10ms"), Ok(Limits::MIN_DEADLINE));
        assert_eq!(rules_deadline("10m"), Ok(Limits::MAX_DEADLINE));
        assert_eq!(rules_deadline("3"), Ok(Duration::from_secs(3)));
        for out in ["0s", "9ms", "601s", "11m", "1h"] {
            assert_eq!(
                rules_deadline(out),
                Err(format!("{out:?} is out of range: from 10ms to 10m"))
            );
        }
        assert!(
            rules_deadline("1.5s")
                .unwrap_err()
                .contains("is not a duration")
        );
    }

    #[test]
    fn kube_versions() {
        assert_eq!(kube_version("1.20"), Ok("1.20".into()));
        assert_eq!(kube_version("v1.33.2"), Ok("1.33".into()));
        for bad in ["", "1", "1.x", "one.two", "1.20.3.4"] {
            assert!(kube_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(rules_memory("64Mi"), Ok(64 << 20));
        assert_eq!(rules_memory("1Gi"), Ok(1 << 30));
        assert_eq!(rules_memory("2048Ki"), Ok(2 << 20));
        assert_eq!(rules_memory("1048576"), Ok(1 << 20));
        assert_eq!(rules_memory("4Gi"), Ok(Limits::MAX_MEMORY));
        for bad in ["", "Mi", "64M", "64MiB", "-1Mi", "1.5Gi", "0x10"] {
            assert!(
                rules_memory(bad).unwrap_err().contains("is not a size"),
                "{bad}"
            );
        }
        for out in ["0", "1023Ki", "5Gi", "99999999999999999999Gi"] {
            assert!(rules_memory(out).is_err(), "{out}");
        }
        assert_eq!(
            rules_memory("5Gi").unwrap_err(),
            "\"5Gi\" is out of range: from 1Mi to 4Gi"
        );
    }
}
