//! The resource versions of berth's objects, kept by watches of their metadata: a
//! controller tells "nothing of this component changed since I looked" without a request.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc::UnboundedSender;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::{self, Event};

use super::{COMPONENT_LABEL, MANAGED_BY, MANAGED_BY_LABEL};

/// A watch that failed is started again after this, doubling up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const MAX_PAUSE: Duration = Duration::from_secs(60);

/// One object a check read: its API resource, name and resource version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Read {
    pub resource: ApiResource,
    pub name: String,
    pub version: String,
}

/// A component's objects as the watches show them: resource version by resource and name.
pub(crate) type Snapshot = BTreeMap<(String, String), String>;

/// What the watches of one kind have seen.
#[derive(Default)]
struct Kind {
    /// Listed in full since the watch last failed.
    synced: bool,
    /// Component label and resource version, by namespace and name.
    objects: BTreeMap<(String, String), (String, String)>,
}

/// The watches of berth's objects in one scope (a namespace, or all), each kind started on
/// first need; each change they see is sent on as `(namespace, component)`. Cloned, the
/// same watches; they stop when the last clone is dropped.
#[derive(Clone)]
pub(crate) struct Watched(Arc<Inner>);

struct Inner {
    client: Client,
    /// `None`: every namespace.
    scope: Option<String>,
    changed: UnboundedSender<(String, String)>,
    kinds: Arc<Mutex<BTreeMap<String, Kind>>>,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().unwrap_or_else(PoisonError::into_inner) {
            task.abort();
        }
    }
}

impl Watched {
    /// Watches in `scope` (`None`: every namespace), started with the two kinds every
    /// component has (its Deployment, its inventory ConfigMap), telling `changed` of each
    /// change. Must be called within a Tokio runtime.
    pub fn new(
        client: Client,
        scope: Option<String>,
        changed: UnboundedSender<(String, String)>,
    ) -> Self {
        let watched = Self(Arc::new(Inner {
            client,
            scope,
            changed,
            kinds: Arc::default(),
            tasks: Mutex::default(),
        }));
        watched.watch(&ApiResource::erase::<Deployment>(&()));
        watched.watch(&ApiResource::erase::<ConfigMap>(&()));
        watched
    }

    /// The objects labelled as `component`'s in `namespace`, of every kind watched; `None`
    /// while a kind's watch has not listed them in full.
    pub fn snapshot(&self, namespace: &str, component: &str) -> Option<Snapshot> {
        let kinds = self.0.kinds.lock().unwrap_or_else(PoisonError::into_inner);
        let mut snapshot = Snapshot::new();
        for (key, kind) in kinds.iter() {
            if !kind.synced {
                return None;
            }
            let ours = kind
                .objects
                .iter()
                .filter(|((ns, _), (c, _))| ns == namespace && c == component);
            for ((_, name), (_, version)) in ours {
                snapshot.insert((key.clone(), name.clone()), version.clone());
            }
        }
        Some(snapshot)
    }

    /// [`Watched::snapshot`] when the watches show every object of `read` at the version
    /// read (else `None`: they are behind, or it changed since); watches the kinds of
    /// `read` from now on.
    pub fn agrees(&self, namespace: &str, component: &str, read: &[Read]) -> Option<Snapshot> {
        for object in read {
            self.watch(&object.resource);
        }
        let snapshot = self.snapshot(namespace, component)?;
        read.iter()
            .all(|r| {
                let key = (kind_key(&r.resource), r.name.clone());
                snapshot.get(&key) == Some(&r.version)
            })
            .then_some(snapshot)
    }

    /// Start watching `resource`'s objects labelled as berth's, unless already.
    fn watch(&self, resource: &ApiResource) {
        let key = kind_key(resource);
        {
            let mut kinds = self.0.kinds.lock().unwrap_or_else(PoisonError::into_inner);
            if kinds.contains_key(&key) {
                return;
            }
            kinds.insert(key.clone(), Kind::default());
        }
        // Metadata only: the versions and labels are all it keeps.
        let client = self.0.client.clone();
        let api = match &self.0.scope {
            Some(ns) => Api::<Meta>::namespaced_with(client, ns, resource),
            None => Api::<Meta>::all_with(client, resource),
        };
        let task = tokio::spawn(keep(api, key, self.0.kinds.clone(), self.0.changed.clone()));
        let mut tasks = self.0.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.push(task.abort_handle());
    }
}

/// An object's metadata, as a metadata-only watch sends it.
type Meta = PartialObjectMeta<DynamicObject>;

/// The key of `resource`'s kind: `apps/v1/deployments`.
fn kind_key(resource: &ApiResource) -> String {
    format!("{}/{}", resource.api_version, resource.plural)
}

/// Keep kind `key`'s entries as `api`'s watch of berth's objects shows them, telling
/// `changed` of every component one of whose objects changed. A failed watch marks the
/// kind unsynced and starts again with a full list, after a pause that doubles.
async fn keep(
    api: Api<Meta>,
    key: String,
    kinds: Arc<Mutex<BTreeMap<String, Kind>>>,
    changed: UnboundedSender<(String, String)>,
) {
    let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY}");
    let mut pause = FIRST_PAUSE;
    loop {
        let events = watcher::watcher(api.clone(), watcher::Config::default().labels(&selector));
        futures::pin_mut!(events);
        let mut listed = BTreeMap::new();
        while let Some(event) = events.next().await {
            let mut kinds = kinds.lock().unwrap_or_else(PoisonError::into_inner);
            let kind = kinds.entry(key.clone()).or_default();
            let tell = |entry: Option<&(String, String)>, ns: &str| {
                if let Some((component, _)) = entry.filter(|(c, _)| !c.is_empty()) {
                    let _ = changed.unbounded_send((ns.to_owned(), component.clone()));
                }
            };
            match event {
                Ok(Event::Init) => listed.clear(),
                Ok(Event::InitApply(object)) => {
                    if let Some((at, entry)) = entry_of(&object.metadata) {
                        listed.insert(at, entry);
                    }
                }
                Ok(Event::InitDone) => {
                    let before = std::mem::take(&mut kind.objects);
                    kind.objects = std::mem::take(&mut listed);
                    kind.synced = true;
                    pause = FIRST_PAUSE;
                    // What the list found different from what was kept: changed meanwhile.
                    let keys: BTreeSet<_> = before.keys().chain(kind.objects.keys()).collect();
                    for at in keys {
                        let (old, new) = (before.get(at), kind.objects.get(at));
                        if old != new {
                            tell(old, &at.0);
                            tell(new, &at.0);
                        }
                    }
                }
                Ok(Event::Apply(object)) => {
                    if let Some((at, entry)) = entry_of(&object.metadata) {
                        let old = kind.objects.insert(at.clone(), entry.clone());
                        if old.as_ref() != Some(&entry) {
                            tell(old.as_ref(), &at.0);
                            tell(Some(&entry), &at.0);
                        }
                    }
                }
                Ok(Event::Delete(object)) => {
                    if let Some((at, _)) = entry_of(&object.metadata) {
                        let old = kind.objects.remove(&at);
                        tell(old.as_ref(), &at.0);
                    }
                }
                Err(_) => {
                    // Whatever it missed, a fresh list finds.
                    kind.synced = false;
                    break;
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// An object's place (namespace, name) and entry (component label, resource version); an
/// object without the component label is kept under an empty one.
fn entry_of(meta: &ObjectMeta) -> Option<((String, String), (String, String))> {
    let at = (meta.namespace.clone()?, meta.name.clone()?);
    let component = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(COMPONENT_LABEL))
        .cloned()
        .unwrap_or_default();
    Some((at, (component, meta.resource_version.clone()?)))
}
