//! Waiting until the objects an undeploy deleted are gone (that object, by uid), and
//! saying what is left, and what holds it, when they are not.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::runtime::{WatchStreamExt, watcher};

use super::request::GroupKind;
use super::resources::Resources;
use super::undeploy::UndeployReport;
use super::{Cluster, ClusterError, name_of};

impl Cluster {
    /// Wait until `deadline` for every object an undeploy deleted to be gone: that object,
    /// by uid, not a later one of its name (a Deployment's pods and ReplicaSets go first,
    /// with foreground deletion). `timeout` is what the error says was waited.
    pub(super) async fn wait_gone(
        &self,
        component: &str,
        report: &UndeployReport,
        deadline: tokio::time::Instant,
        timeout: Duration,
    ) -> Result<(), ClusterError> {
        let mut found = Resources::default();
        for object in &report.deleted {
            let group_kind = GroupKind::of(&object.api_version, &object.kind);
            let Some(resource) = self.resource_of_group_kind(&group_kind, &mut found).await? else {
                continue;
            };
            let uid = object.uid.as_deref().unwrap_or_default();
            let gone = until_gone(self.requests.dynamic(&resource), &object.name, uid);
            match tokio::time::timeout_at(deadline, gone).await {
                Ok(Ok(())) => {}
                Ok(Err(source)) => {
                    return Err(ClusterError::Watch {
                        object: Box::new(object.clone()),
                        error: source,
                    });
                }
                Err(_) => return Err(self.timed_out(component, report, timeout).await),
            }
        }
        // Then every pod of the component: those of an earlier Deployment of it that was
        // deleted in the background (a failed deploy's undo) may still be ending. Listed,
        // not watched: the documented Role lets berth list pods, not watch them.
        for selector in &report.pods {
            match tokio::time::timeout_at(deadline, self.until_no_pods(selector)).await {
                Ok(result) => result?,
                Err(_) => return Err(self.timed_out(component, report, timeout).await),
            }
        }
        Ok(())
    }

    /// Until no pod `selector` selects is left, looking every half second.
    async fn until_no_pods(&self, selector: &str) -> Result<(), ClusterError> {
        let pods = self.requests.dynamic(&ApiResource::erase::<Pod>(&()));
        let lp = ListParams::default().labels(selector);
        loop {
            let left = pods.list(&lp).await.map_err(ClusterError::api(format!(
                "cannot list pods in namespace {}",
                self.namespace()
            )))?;
            if left.items.is_empty() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn timed_out(
        &self,
        component: &str,
        report: &UndeployReport,
        timeout: Duration,
    ) -> ClusterError {
        ClusterError::Timeout {
            component: component.to_owned(),
            waited: timeout,
            last: self.left_of(report).await,
        }
    }
}

impl Cluster {
    /// What of an undeploy is still there, and what holds it: each deleted object not gone
    /// yet with its finalizers, and a Deployment's ReplicaSets and pods (its own selector),
    /// which foreground deletion waits for. Best effort: it only words an error.
    async fn left_of(&self, report: &UndeployReport) -> String {
        let mut left = Vec::new();
        let mut found = Resources::default();
        for object in &report.deleted {
            let group_kind = GroupKind::of(&object.api_version, &object.kind);
            let Ok(Some(resource)) = self.resource_of_group_kind(&group_kind, &mut found).await
            else {
                continue;
            };
            let Ok(Some(live)) = self.requests.dynamic(&resource).get_opt(&object.name).await
            else {
                continue;
            };
            if live.metadata.uid != object.uid {
                continue;
            }
            left.push(format!("{object}{}", held(&live)));
        }
        for selector in &report.pods {
            left.extend(self.selected_left(selector).await);
        }
        if left.is_empty() {
            "everything was gone by the time berth looked again".to_owned()
        } else {
            format!("still there: {}", left.join(", "))
        }
    }

    /// The ReplicaSets and pods a deleted Deployment's selector still selects.
    async fn selected_left(&self, selector: &str) -> Vec<String> {
        let lp = ListParams::default().labels(selector);
        let mut left = Vec::new();
        for resource in [
            ApiResource::erase::<ReplicaSet>(&()),
            ApiResource::erase::<Pod>(&()),
        ] {
            let items = self
                .requests
                .dynamic(&resource)
                .list(&lp)
                .await
                .map(|l| l.items);
            for live in items.unwrap_or_default() {
                left.push(format!(
                    "{}/{}{}",
                    resource.kind,
                    name_of(&live.metadata),
                    held(&live)
                ));
            }
        }
        left
    }
}

/// What keeps an object that is being deleted: ` (being deleted; finalizers: …)`.
fn held(live: &DynamicObject) -> String {
    let finalizers = live.metadata.finalizers.clone().unwrap_or_default();
    match (&live.metadata.deletion_timestamp, finalizers.is_empty()) {
        (None, _) => " (not being deleted)".to_owned(),
        (Some(_), true) => " (being deleted)".to_owned(),
        (Some(_), false) => format!(" (being deleted; finalizers: {})", finalizers.join(", ")),
    }
}

/// Until the object `name` with `uid` no longer exists (deleted, or replaced by another of
/// its name). The watch starts again, after a backoff and with a fresh list, when the API
/// server goes away or has forgotten the resource version (410 after a restart): only a
/// refusal (not allowed, not there) ends it with an error.
async fn until_gone(api: Api<DynamicObject>, name: &str, uid: &str) -> Result<(), watcher::Error> {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watcher(api, config).default_backoff().boxed();
    let ours = |o: &DynamicObject| o.metadata.uid.as_deref() == Some(uid);
    // Whether the list in progress (after a start or a restart) has shown it.
    let mut listed = false;
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init) => listed = false,
            Ok(watcher::Event::InitApply(o)) => listed |= ours(&o),
            Ok(watcher::Event::InitDone) if !listed => return Ok(()),
            Ok(watcher::Event::InitDone) => {}
            Ok(watcher::Event::Delete(o)) if ours(&o) => return Ok(()),
            Ok(watcher::Event::Apply(o)) if !ours(&o) => return Ok(()),
            Ok(_) => {}
            Err(error) if super::rollout::refused(&error) => return Err(error),
            Err(_) => {}
        }
    }
    Ok(())
}
