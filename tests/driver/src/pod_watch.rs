//! One pod watch on a namespace: when each pod was first seen (the driver's enqueue-to-pod clock stops there) and
//! the last state of each, kept after the pod is deleted (the agent cleans finished pods up; the demo's table still
//! shows what they were). The demo watches whole pods; the bench only needs names and times, so it watches metadata
//! ([`PodWatch::start_metadata`]): the observer should weigh as little as it can on the machine it measures, and a
//! full watch decodes every pod's spec several times over (created, bound, running).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use futures::Stream;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the watch saw of one pod (`K`: the whole pod, or its metadata).
#[derive(Debug, Clone)]
pub struct SeenPod<K = Pod> {
    /// When the watch first delivered it.
    pub first_seen: Instant,
    /// Its last state (before deletion, if deleted).
    pub last: K,
    /// Whether it has been deleted since.
    pub deleted: bool,
}

/// A running watch; stopped when dropped.
pub struct PodWatch<K = Pod> {
    seen: Arc<Mutex<HashMap<String, SeenPod<K>>>>,
    /// How many distinct pods were seen so far (waiters use `wait_for`).
    count: watch::Receiver<usize>,
    /// Set once the first list is complete: pods created after that are seen as they appear.
    synced: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl<K> Drop for PodWatch<K> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PodWatch<Pod> {
    /// Watch every pod of `pods`' namespace, whole.
    pub fn start(pods: Api<Pod>) -> Self {
        Self::from_events(watcher::watcher(pods, watcher::Config::default()))
    }
}

impl PodWatch<PartialObjectMeta<Pod>> {
    /// Watch the metadata of every pod of `pods`' namespace (an `Api` of `PartialObjectMeta` asks the API server
    /// for metadata only).
    pub fn start_metadata(pods: Api<PartialObjectMeta<Pod>>) -> Self {
        Self::from_events(watcher::watcher(pods, watcher::Config::default()))
    }
}

impl<K: Resource + Clone + Send + 'static> PodWatch<K> {
    fn from_events(
        stream: impl Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
    ) -> Self {
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let (count_tx, count) = watch::channel(0usize);
        let (synced_tx, synced) = watch::channel(false);
        let writer = seen.clone();
        let task = tokio::spawn(async move {
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                let (pod, deleted) = match event {
                    Ok(Event::Apply(pod) | Event::InitApply(pod)) => (pod, false),
                    Ok(Event::Delete(pod)) => (pod, true),
                    Ok(Event::InitDone) => {
                        let _ = synced_tx.send(true);
                        continue;
                    }
                    Ok(Event::Init) => continue,
                    Err(err) => {
                        tracing::warn!(error = %err, "pod watch error (retrying)");
                        continue;
                    }
                };
                let Some(name) = pod.meta().name.clone() else {
                    continue;
                };
                let now = Instant::now();
                let mut seen = writer.lock().unwrap_or_else(PoisonError::into_inner);
                let entry = seen.entry(name).or_insert_with(|| SeenPod {
                    first_seen: now,
                    last: pod.clone(),
                    deleted,
                });
                entry.last = pod;
                entry.deleted = deleted;
                let n = seen.len();
                drop(seen);
                count_tx.send_if_modified(|c| {
                    let changed = *c != n;
                    *c = n;
                    changed
                });
            }
        });
        Self {
            seen,
            count,
            synced,
            task,
        }
    }

    /// Wait until the watch has listed the namespace once.
    pub async fn wait_synced(&self) {
        let mut synced = self.synced.clone();
        let _ = synced.wait_for(|s| *s).await;
    }

    /// Wait until at least `n` distinct pods have been seen.
    pub async fn wait_for_count(&self, n: usize) {
        let mut count = self.count.clone();
        let _ = count.wait_for(|c| *c >= n).await;
    }

    /// Distinct pods seen so far.
    pub fn count(&self) -> usize {
        *self.count.borrow()
    }

    /// What was seen of pod `name`.
    pub fn get(&self, name: &str) -> Option<SeenPod<K>> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Everything seen, by pod name.
    pub fn all(&self) -> HashMap<String, SeenPod<K>> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
