//! What each Component and its objects were when a reconcile last found them as declared,
//! set against what the watches show now: the periodic look at a quiet Component sends no
//! request.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef as Key;

use super::resource::Component;
use crate::cluster::{Snapshot, Watched};

/// What a reconcile that changed nothing and found nothing due left behind.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Left {
    /// The Component's resource version after it (its status written, or as read).
    pub version: String,
    /// Its objects as the watches showed them, agreeing with what it read; `None`: they
    /// do not matter (its spec or the rules refused).
    pub objects: Option<Snapshot>,
    /// When to look again.
    pub interval: Duration,
}

/// What the last reconcile of each Component left, for the current term.
#[derive(Debug, Default)]
pub(super) struct Quiet(Mutex<HashMap<Key<Component>, Left>>);

impl Quiet {
    fn left(&self) -> std::sync::MutexGuard<'_, HashMap<Key<Component>, Left>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forget every Component: a new term, its watches new.
    pub fn forget_all(&self) {
        self.left().clear();
    }

    /// Remember what a reconcile of `key` left (`None`: nothing that lets the next one
    /// skip its reads).
    pub fn remember(&self, key: Key<Component>, left: Option<Left>) {
        match left {
            Some(left) => self.left().insert(key, left),
            None => self.left().remove(&key),
        };
    }

    /// When to look again at `component`, if neither it nor any of its objects changed
    /// since its last reconcile left it as declared: the same resource version, the same
    /// objects at the same versions in `watched`. `None`: look now.
    pub fn unchanged(&self, component: &Component, watched: &Watched) -> Option<Duration> {
        let all = self.left();
        let left = all.get(&Key::from_obj(component))?;
        if component.resource_version().as_ref() != Some(&left.version) {
            return None;
        }
        match &left.objects {
            None => Some(left.interval),
            Some(objects) => {
                let namespace = component.namespace().unwrap_or_default();
                let now = watched.snapshot(&namespace, &component.name_any())?;
                (&now == objects).then_some(left.interval)
            }
        }
    }
}
