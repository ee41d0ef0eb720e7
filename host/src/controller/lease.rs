//! Leader election through a `coordination.k8s.io/v1` Lease: one replica leads, the others
//! wait until it releases the Lease or lets it lapse; a leader that cannot renew in time
//! closes its write gate before anyone else may take over.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::watch;

use super::metrics::Metrics;
use crate::cluster::Gate;

/// How long a Lease lasts unless the controller is told otherwise.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);

/// Which Lease the replicas of one controller share, and who this one is. Defaults, as
/// policy: 15 s; a leader renews every 2 s (a seventh of it) and stops writing when 10 s
/// (two thirds) have passed since its last renewal was sent, so its writes end 5 s before
/// another replica may take the Lease over.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    namespace: String,
    name: String,
    identity: String,
    duration: Duration,
}

impl LeaseConfig {
    /// The Lease `namespace/name`; this replica named after its host and process.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        let host = std::env::var("POD_NAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .unwrap_or_default();
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: format!("{}-{}", host.trim(), std::process::id()),
            duration: DEFAULT_LEASE_DURATION,
        }
    }

    /// How this replica is named in the Lease's `holderIdentity`.
    pub fn identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = identity.into();
        self
    }

    /// How long the Lease lasts without a renewal (3 s to 1 h).
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = duration.clamp(Duration::from_secs(3), Duration::from_secs(3600));
        self
    }

    /// How long after a renewal was sent the leader may still write.
    fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }

    /// How often the leader renews, and a follower looks when nothing told it.
    fn retry(&self) -> Duration {
        self.duration / 7
    }
}

/// What a replica does next, from the Lease as it last saw it (`lease`), seen unchanged
/// since `since`. A holder's Lease lapses `leaseDurationSeconds` after this replica saw it
/// last change, by its own clock: the clocks of two machines need not agree.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// No Lease yet: create it, holding it.
    Create,
    /// Nobody holds it, or its holder let it lapse: take it over.
    Take,
    /// Another holds it: nothing until it lapses (or changes).
    Wait(Duration),
}

fn next(lease: Option<&Lease>, me: &str, since: Instant, now: Instant) -> Next {
    let Some(lease) = lease else {
        return Next::Create;
    };
    let spec = lease.spec.clone().unwrap_or_default();
    match spec.holder_identity.as_deref() {
        None | Some("") => Next::Take,
        Some(holder) if holder == me => Next::Take,
        Some(_) => {
            let seconds = spec.lease_duration_seconds.unwrap_or(15).max(1);
            let lapses = since + Duration::from_secs(u64::try_from(seconds).unwrap_or(15));
            match lapses.checked_duration_since(now) {
                Some(left) if !left.is_zero() => Next::Wait(left),
                _ => Next::Take,
            }
        }
    }
}

/// One replica's part in the election: it keeps leading, or tries to, and says which on
/// `leading`; its gate is open only while it leads.
pub(super) struct Elector {
    api: Api<Lease>,
    config: LeaseConfig,
    gate: Gate,
    /// The Lease as last seen (read, watched or written), and since when unchanged.
    seen: Option<Lease>,
    since: Instant,
    /// When the last renewal (or the taking) that succeeded was sent.
    renewed: Option<Instant>,
    leading: watch::Sender<bool>,
    /// Why the Lease could not be read or written (a conflict aside), once per new why.
    failed: tokio::sync::mpsc::UnboundedSender<String>,
    last_failure: Option<String>,
    metrics: Metrics,
}

impl Elector {
    /// An elector for `config`'s Lease over `client`; the receiver says whether it leads.
    pub(super) fn new(
        client: Client,
        config: LeaseConfig,
        gate: Gate,
        metrics: Metrics,
    ) -> (
        Self,
        watch::Receiver<bool>,
        tokio::sync::mpsc::UnboundedReceiver<String>,
    ) {
        gate.close();
        gate.pass_lease(&config.namespace, &config.name);
        let (leading, receiver) = watch::channel(false);
        let (failed, failures) = tokio::sync::mpsc::unbounded_channel();
        let elector = Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            gate,
            seen: None,
            since: Instant::now(),
            renewed: None,
            leading,
            failed,
            last_failure: None,
            metrics,
        };
        (elector, receiver, failures)
    }

    /// Say why the Lease could not be had, unless that was said last; a conflict is
    /// another replica's write, not a failure.
    fn failed(&mut self, error: &kube::Error) {
        if matches!(error, kube::Error::Api(status) if status.code == 409) {
            return;
        }
        let lease = format!("{}/{}", self.config.namespace, self.config.name);
        let why = format!("Lease {lease}: {}", crate::one_line::one_line(error));
        if self.last_failure.as_ref() != Some(&why) {
            let _ = self.failed.send(why.clone());
            self.last_failure = Some(why);
        }
    }

    /// Take part until `stop` is done; then, leading, close the gate and release the
    /// Lease so another replica takes over at once.
    pub(super) async fn run(mut self, stop: impl std::future::Future<Output = ()>) {
        let name = self.config.name.clone();
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut changes = watcher(self.api.clone(), config)
            .default_backoff()
            .applied_objects()
            .boxed();
        tokio::pin!(stop);
        loop {
            // Each request of a step is bounded (a seventh of the Lease): a signal is
            // heard within that, never after a request that hangs.
            let wait = tokio::select! {
                () = &mut stop => break,
                wait = self.step() => wait,
            };
            tokio::select! {
                () = &mut stop => break,
                change = changes.next() => {
                    if let Some(Ok(lease)) = change {
                        self.saw(Some(lease));
                    }
                }
                () = tokio::time::sleep(wait) => {}
            }
        }
        self.release().await;
    }

    /// Record `lease` as seen now; a new version restarts the lapse count.
    fn saw(&mut self, lease: Option<Lease>) {
        let version = |l: &Option<Lease>| l.as_ref().and_then(|l| l.resource_version());
        if version(&lease) != version(&self.seen) {
            self.since = Instant::now();
        }
        self.seen = lease;
    }

    /// Renew, take or wait as due; how long until the next step is due.
    async fn step(&mut self) -> Duration {
        let retry = self.config.retry();
        if self.leads() && !held_by(self.seen.as_ref(), &self.config.identity) {
            // Another replica holds it now (its write reached this replica's watch).
            self.step_down();
        }
        if self.leads() {
            let due = self.renewed.map_or(Duration::ZERO, |r| {
                (r + retry).saturating_duration_since(Instant::now())
            });
            if !due.is_zero() {
                return due;
            }
            self.write(true).await;
            return retry;
        }
        if *self.leading.borrow() {
            // The term ran out before a renewal went through.
            self.step_down();
        }
        match self.next() {
            Next::Wait(left) => left.min(retry * 2),
            Next::Create | Next::Take => {
                // What was seen may be old (a replica paused, say): read before writing.
                if !self.read().await {
                    return retry;
                }
                match self.next() {
                    Next::Wait(left) => left.min(retry * 2),
                    Next::Create | Next::Take => {
                        self.write(false).await;
                        retry
                    }
                }
            }
        }
    }

    /// What to do next, from the Lease as last seen.
    fn next(&self) -> Next {
        next(
            self.seen.as_ref(),
            &self.config.identity,
            self.since,
            Instant::now(),
        )
    }

    /// Read the Lease afresh; whether that worked.
    async fn read(&mut self) -> bool {
        let read = tokio::time::timeout(self.config.retry(), self.api.get_opt(&self.config.name));
        match read.await {
            Ok(Ok(lease)) => {
                self.metrics.lease_seen();
                self.saw(lease);
                true
            }
            Ok(Err(error)) => {
                self.failed(&error);
                false
            }
            Err(_) => false,
        }
    }

    /// Stop writing at once, and say so.
    fn step_down(&mut self) {
        self.gate.close();
        self.leading.send_replace(false);
    }

    /// Whether this replica leads: it holds the Lease, renewed in time.
    fn leads(&self) -> bool {
        *self.leading.borrow() && self.gate.is_open()
    }

    /// Write the Lease as held by this replica (`renewal`: already held), conditional on
    /// the version seen; on success the gate opens until the renew deadline.
    async fn write(&mut self, renewal: bool) {
        let sent = Instant::now();
        let now = MicroTime(Timestamp::now());
        let mut lease = self.seen.clone().unwrap_or_else(|| Lease {
            metadata: kube::api::ObjectMeta {
                name: Some(self.config.name.clone()),
                namespace: Some(self.config.namespace.clone()),
                ..Default::default()
            },
            spec: None,
        });
        let before = lease.spec.take().unwrap_or_default();
        let taken =
            !renewal && before.holder_identity.as_deref() != Some(self.config.identity.as_str());
        let seconds = i32::try_from(self.config.duration.as_secs()).unwrap_or(15);
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(seconds),
            acquire_time: if taken {
                Some(now.clone())
            } else {
                before.acquire_time.clone()
            },
            renew_time: Some(now),
            lease_transitions: Some(
                before.lease_transitions.unwrap_or(0) + i32::from(taken && self.seen.is_some()),
            ),
            ..LeaseSpec::default()
        });
        let written = if self.seen.is_none() {
            tokio::time::timeout(
                self.config.retry(),
                self.api.create(&PostParams::default(), &lease),
            )
            .await
        } else {
            tokio::time::timeout(
                self.config.retry(),
                self.api
                    .replace(&self.config.name, &PostParams::default(), &lease),
            )
            .await
        };
        // No answer in time: as a failure (the term runs out unless a renewal gets through).
        let Ok(written) = written else {
            return;
        };
        match written {
            Ok(lease) => {
                self.metrics.lease_seen();
                self.saw(Some(lease));
                self.last_failure = None;
                self.renewed = Some(sent);
                self.gate.open_until(sent + self.config.renew_deadline());
                self.leading.send_replace(true);
            }
            // Another replica wrote it first: read who holds it now, and step down unless
            // it is still this one (an answer lost on the way, say).
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let me = self.config.identity.clone();
                if self.read().await && renewal && !held_by(self.seen.as_ref(), &me) {
                    self.step_down();
                }
            }
            // The API server away: a leader's term runs out on its own, and a follower
            // reads before it writes.
            Err(error) => self.failed(&error),
        }
    }

    /// Leading, stop writing and hand the Lease back: no holder, so a follower takes it
    /// when it sees the change, not when it lapses.
    async fn release(&mut self) {
        let leading = self.leads();
        self.gate.close();
        // The writes that passed the gate before it closed are answered before the
        // reconciles stop and the Lease goes (1 s at most): none reaches the API server
        // after the next leader starts.
        let waited = Instant::now();
        while leading && self.gate.in_flight() > 0 && waited.elapsed() < Duration::from_secs(1) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.step_down();
        let Some(mut lease) = self.seen.clone().filter(|_| leading) else {
            return;
        };
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(Timestamp::now()));
        }
        let params = PostParams::default();
        let release = self.api.replace(&self.config.name, &params, &lease);
        let _ = tokio::time::timeout(self.config.retry(), release).await;
    }
}

/// Whether `lease` is held by `me`.
fn held_by(lease: Option<&Lease>, me: &str) -> bool {
    let spec = lease.and_then(|l| l.spec.as_ref());
    spec.and_then(|s| s.holder_identity.as_deref()) == Some(me)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lease(holder: Option<&str>, seconds: i32) -> Lease {
        serde_json::from_value(json!({
            "metadata": {"name": "berth-controller", "resourceVersion": "7"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": seconds},
        }))
        .unwrap()
    }

    #[test]
    fn none_is_created_a_free_or_own_one_taken_anothers_awaited_until_it_lapses() {
        let now = Instant::now();
        assert_eq!(next(None, "a", now, now), Next::Create);
        assert_eq!(next(Some(&lease(None, 15)), "a", now, now), Next::Take);
        assert_eq!(next(Some(&lease(Some(""), 15)), "a", now, now), Next::Take);
        assert_eq!(next(Some(&lease(Some("a"), 15)), "a", now, now), Next::Take);
        let b = lease(Some("b"), 15);
        assert_eq!(
            next(Some(&b), "a", now, now + Duration::from_secs(5)),
            Next::Wait(Duration::from_secs(10))
        );
        // Lapsed by this replica's clock, whatever the Lease's renewTime says.
        assert_eq!(
            next(Some(&b), "a", now, now + Duration::from_secs(15)),
            Next::Take
        );
    }

    #[test]
    fn a_leader_stops_writing_well_before_its_lease_can_lapse() {
        let config = LeaseConfig::new("berth-system", "berth-controller");
        assert_eq!(config.duration, Duration::from_secs(15));
        assert_eq!(config.renew_deadline(), Duration::from_secs(10));
        assert!((Duration::from_secs(2)..Duration::from_millis(2200)).contains(&config.retry()));
        let short = config.duration(Duration::from_secs(1));
        assert_eq!(short.duration, Duration::from_secs(3), "at least 3 s");
    }
}
