//! What to do about a rollout that does not finish: roll back to the last good revision,
//! try again after a back-off, give up (Stalled) after the Component's retries — decided
//! as values from the status and the clock. Pure.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::cluster::RolloutState;

/// The status fields the remediation keeps between reconciles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    /// Failed rollouts of what is applied now, in a row.
    pub failures: u32,
    /// The last revision that rolled out.
    pub last_good_revision: Option<i64>,
    /// When the controller last applied.
    pub applied_at: Option<Timestamp>,
    /// When a rollout last failed.
    pub failed_at: Option<Timestamp>,
}

impl Memory {
    /// Rolled back after a failure, not applied since.
    fn rolled_back(&self) -> bool {
        self.failures > 0 && self.failed_at >= self.applied_at
    }
}

/// Whether to apply now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Before {
    /// Apply (a new generation or rules, a retry that is due, a reset, drift).
    Apply,
    /// Leave it: rolled back, the next attempt due after this long.
    Later(Duration),
    /// Leave it: out of attempts until the spec, the rules or the reset annotation change.
    GaveUp,
    /// Nothing to decide here: apply only if the cluster does not hold it as rendered.
    IfNotCurrent,
}

/// Before any write: `fresh` is a new generation or rules (or the reset annotation).
pub fn before(memory: &Memory, fresh: bool, retries: u32, now: Timestamp) -> Before {
    if fresh {
        return Before::Apply;
    }
    if memory.failures >= retries && memory.failures > 0 {
        return Before::GaveUp;
    }
    if memory.rolled_back() {
        let due = memory.failed_at.map_or(now, |at| {
            at.checked_add(backoff(memory.failures)).unwrap_or(at)
        });
        return if due <= now {
            Before::Apply
        } else {
            Before::Later(due.duration_since(now).unsigned_abs())
        };
    }
    Before::IfNotCurrent
}

/// How a rollout stands, once judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    /// What was applied rolled out.
    Succeeded(String),
    /// Still moving; it fails if not done within this long.
    Progressing(String, Duration),
    /// It cannot finish (its deadline, or the Component's timeout): roll back.
    Failed(String),
    /// The rollback's rollout (after a failure), moving or done.
    RolledBack(String),
}

/// Judge `rollout` given what the remediation remembers and the Component's `timeout`.
pub fn judge(memory: &Memory, rollout: &RolloutState, timeout: Duration, now: Timestamp) -> Judged {
    if memory.rolled_back() {
        return Judged::RolledBack(rollout.message().to_owned());
    }
    match rollout {
        RolloutState::Done(message) => Judged::Succeeded(message.clone()),
        RolloutState::Failed(message) => Judged::Failed(message.clone()),
        RolloutState::Progressing(message) => {
            let since = memory.applied_at.unwrap_or(now);
            let deadline = since.checked_add(timeout).unwrap_or(since);
            if deadline <= now {
                Judged::Failed(format!(
                    "not rolled out within {}: {message}",
                    humanize(timeout)
                ))
            } else {
                let left = deadline.duration_since(now).unsigned_abs();
                Judged::Progressing(message.clone(), left)
            }
        }
    }
}

/// The wait before attempt `failures` + 1: doubling from 1 s, at most 5 min.
pub fn backoff(failures: u32) -> Duration {
    let seconds = 1u64 << failures.saturating_sub(1).min(9);
    Duration::from_secs(seconds.min(300))
}

/// `5m`, `30s`, `1500ms`.
fn humanize(d: Duration) -> String {
    match (d.as_millis(), d.as_secs()) {
        (ms, _) if ms % 1000 != 0 => format!("{ms}ms"),
        (_, s) if s % 60 == 0 && s > 0 => format!("{}m", s / 60),
        (_, s) => format!("{s}s"),
    }
}

/// A duration as a Component writes it: `500ms`, `30s`, `5m`, `1h`, or combined (`1m30s`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let (number, tail) = rest.split_at(digits);
        let number: u64 = number.parse().ok()?;
        let unit = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit);
        total += match unit {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number * 60),
            "h" => Duration::from_secs(number * 3600),
            _ => return None,
        };
        rest = tail;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    #[test]
    fn a_rollout_past_its_timeout_fails_and_one_within_it_says_how_long_is_left() {
        let memory = Memory {
            applied_at: Some(at(0)),
            ..Memory::default()
        };
        let moving = RolloutState::Progressing("1 of 2 updated".into());
        assert_eq!(
            judge(&memory, &moving, Duration::from_secs(10), at(4)),
            Judged::Progressing("1 of 2 updated".into(), Duration::from_secs(6))
        );
        assert_eq!(
            judge(&memory, &moving, Duration::from_secs(10), at(10)),
            Judged::Failed("not rolled out within 10s: 1 of 2 updated".into())
        );
        let done = RolloutState::Done("rolled out".into());
        assert_eq!(
            judge(&memory, &done, Duration::from_secs(10), at(60)),
            Judged::Succeeded("rolled out".into())
        );
    }

    #[test]
    fn after_a_failure_the_rollback_is_waited_out_then_retried_then_given_up() {
        let rolled_back = Memory {
            failures: 1,
            last_good_revision: Some(1),
            applied_at: Some(at(0)),
            failed_at: Some(at(10)),
        };
        // The rollback's own rollout is not judged against the timeout.
        let moving = RolloutState::Progressing("old replicas pending".into());
        assert_eq!(
            judge(&rolled_back, &moving, Duration::from_secs(5), at(30)),
            Judged::RolledBack("old replicas pending".into())
        );
        assert_eq!(
            before(&rolled_back, false, 3, at(10)),
            Before::Later(Duration::from_secs(1))
        );
        assert_eq!(before(&rolled_back, false, 3, at(11)), Before::Apply);
        let out = Memory {
            failures: 3,
            ..rolled_back.clone()
        };
        assert_eq!(before(&out, false, 3, at(100)), Before::GaveUp);
        // A new generation, new rules or the reset annotation: again.
        assert_eq!(before(&out, true, 3, at(100)), Before::Apply);
        // Retried (applied after the failure): judged as any rollout.
        let retried = Memory {
            applied_at: Some(at(11)),
            ..rolled_back
        };
        assert_eq!(before(&retried, false, 3, at(12)), Before::IfNotCurrent);
        assert_eq!(
            judge(&retried, &moving, Duration::from_secs(5), at(16)),
            Judged::Failed("not rolled out within 5s: old replicas pending".into())
        );
    }

    #[test]
    fn durations_as_a_component_writes_them() {
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        for bad in ["", "5", "m", "5x", "-1s", "1.5s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(humanize(Duration::from_secs(300)), "5m");
        assert_eq!(humanize(Duration::from_secs(10)), "10s");
    }

    #[test]
    fn the_back_off_doubles_from_a_second_to_five_minutes() {
        let waits: Vec<u64> = (1..=11).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    }
}
