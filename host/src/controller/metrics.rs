//! What the controller has done, as Prometheus metrics, and whether it is ready: counters
//! and gauges kept by the reconciles, rendered as Prometheus' text format on demand.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The histograms' upper bounds, in seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// A histogram of durations: counts per bucket (cumulative when written), sum and count.
#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, took: Duration) {
        let seconds = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.counts[i] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(self.counts) {
            cumulative += count;
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}\n{name}_count {}", self.sum, self.count);
    }
}

#[derive(Default)]
struct Counts {
    /// Reconciles by result (`success`, `error`).
    reconciles: BTreeMap<&'static str, u64>,
    reconcile_seconds: Histogram,
    render_seconds: Histogram,
    /// Each Component's `Ready` status and reason, by `namespace/name`.
    components: BTreeMap<String, (String, String)>,
}

#[derive(Default)]
struct Inner {
    counts: Mutex<Counts>,
    /// Reconciles waiting for a turn (the bound on reconciles at work at once).
    waiting: AtomicI64,
    leader: AtomicBool,
    /// The Lease read at least once (or no Lease is used).
    lease_seen: AtomicBool,
    /// The Components' caches synced in every namespace watched (while leading).
    synced: AtomicBool,
    /// The gate of the controller's connection, which counts its requests.
    gate: std::sync::OnceLock<crate::cluster::Gate>,
}

/// The controller's metrics and readiness; cloned, the same ones.
#[derive(Clone, Default)]
pub struct Metrics(Arc<Inner>);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.0.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ready to serve: it has read its Lease (or uses none) and, leading, its caches of
    /// Components are synced. A replica that does not lead is ready: it stands by.
    pub fn is_ready(&self) -> bool {
        let inner = &self.0;
        inner.lease_seen.load(Ordering::SeqCst)
            && (!inner.leader.load(Ordering::SeqCst) || inner.synced.load(Ordering::SeqCst))
    }

    /// Every metric, in Prometheus' text exposition format (0.0.4).
    pub fn text(&self) -> String {
        let mut out = String::new();
        let counts = self.counts();
        let name = "berth_controller_reconciles_total";
        let _ = writeln!(
            out,
            "# HELP {name} Reconciles of Components, by result.\n# TYPE {name} counter"
        );
        for result in ["success", "error"] {
            let n = counts.reconciles.get(result).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}{{result=\"{result}\"}} {n}");
        }
        counts.reconcile_seconds.write(
            &mut out,
            "berth_controller_reconcile_duration_seconds",
            "How long a reconcile took.",
        );
        counts.render_seconds.write(
            &mut out,
            "berth_controller_render_duration_seconds",
            "How long the rules took to build a Component's objects.",
        );
        let mut by: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for (ready, reason) in counts.components.values() {
            *by.entry((ready, reason)).or_default() += 1;
        }
        let name = "berth_controller_components";
        let _ = writeln!(
            out,
            "# HELP {name} Components watched, by their Ready condition.\n# TYPE {name} gauge"
        );
        for ((ready, reason), n) in by {
            let _ = writeln!(out, "{name}{{ready=\"{ready}\",reason=\"{reason}\"}} {n}");
        }
        let gauges = [
            (
                "berth_controller_queue_depth",
                "Reconciles waiting for a turn.",
                self.0.waiting.load(Ordering::SeqCst),
            ),
            (
                "berth_controller_leader",
                "1 while this replica holds the Lease and reconciles.",
                i64::from(self.0.leader.load(Ordering::SeqCst)),
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        if let Some(gate) = self.0.gate.get() {
            let sent = gate.sent();
            let name = "berth_controller_requests_total";
            let _ = writeln!(
                out,
                "# HELP {name} Requests sent to the API server: reads (a watch counts when it \
                 starts), writes, and the Lease's.\n# TYPE {name} counter"
            );
            for (kind, n) in [
                ("read", sent.reads),
                ("write", sent.writes),
                ("lease", sent.lease),
            ] {
                let _ = writeln!(out, "{name}{{kind=\"{kind}\"}} {n}");
            }
        }
        out
    }

    /// Count the requests that pass `gate`.
    pub(super) fn count(&self, gate: crate::cluster::Gate) {
        let _ = self.0.gate.set(gate);
    }

    pub(super) fn reconciled(&self, ok: bool, took: Duration) {
        let mut counts = self.counts();
        *counts
            .reconciles
            .entry(if ok { "success" } else { "error" })
            .or_default() += 1;
        counts.reconcile_seconds.observe(took);
    }

    pub(super) fn rendered(&self, took: Duration) {
        self.counts().render_seconds.observe(took);
    }

    /// Component `key`'s Ready condition now; `None`: it is gone.
    pub(super) fn component(&self, key: String, ready: Option<(String, String)>) {
        let mut counts = self.counts();
        match ready {
            Some(ready) => counts.components.insert(key, ready),
            None => counts.components.remove(&key),
        };
    }

    /// A reconcile waiting for a turn, counted in the queue depth until dropped (a
    /// reconcile dropped while it waits, at the end of a term, too).
    pub(super) fn waiting(&self) -> Waiting {
        self.0.waiting.fetch_add(1, Ordering::SeqCst);
        Waiting(self.clone())
    }

    pub(super) fn leading(&self, leading: bool) {
        self.0.leader.store(leading, Ordering::SeqCst);
        if !leading {
            self.0.synced.store(false, Ordering::SeqCst);
            self.counts().components.clear();
        }
    }

    pub(super) fn lease_seen(&self) {
        self.0.lease_seen.store(true, Ordering::SeqCst);
    }

    pub(super) fn synced(&self) {
        self.0.synced.store(true, Ordering::SeqCst);
    }
}

/// One reconcile in the queue depth while it lives.
pub(super) struct Waiting(Metrics);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_gauges_read_as_prometheus_text() {
        let metrics = Metrics::default();
        assert!(!metrics.is_ready());
        metrics.lease_seen();
        assert!(metrics.is_ready(), "a stand-by is ready");
        metrics.leading(true);
        assert!(!metrics.is_ready(), "a leader before its caches synced");
        metrics.synced();
        metrics.reconciled(true, Duration::from_millis(30));
        metrics.reconciled(false, Duration::from_secs(20));
        metrics.rendered(Duration::from_millis(2));
        let waiting = metrics.waiting();
        assert!(metrics.text().contains("berth_controller_queue_depth 1"));
        drop(waiting);
        let ready = |r: &str, why: &str| Some((r.to_owned(), why.to_owned()));
        metrics.component("a/web".into(), ready("True", "Succeeded"));
        metrics.component("b/web".into(), ready("True", "Succeeded"));
        metrics.component("b/db".into(), ready("False", "InvalidSpec"));
        metrics.component("b/db".into(), None);
        let text = metrics.text();
        for line in [
            "berth_controller_reconciles_total{result=\"success\"} 1",
            "berth_controller_reconciles_total{result=\"error\"} 1",
            "berth_controller_reconcile_duration_seconds_bucket{le=\"0.05\"} 1",
            "berth_controller_reconcile_duration_seconds_bucket{le=\"10\"} 1",
            "berth_controller_reconcile_duration_seconds_bucket{le=\"+Inf\"} 2",
            "berth_controller_reconcile_duration_seconds_count 2",
            "berth_controller_render_duration_seconds_count 1",
            "berth_controller_components{ready=\"True\",reason=\"Succeeded\"} 2",
            "berth_controller_leader 1",
            "berth_controller_queue_depth 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
        assert!(!text.contains("InvalidSpec"), "{text}");
    }
}
