//! One pod watch on a namespace: when each pod was first seen (the driver's enqueue-to-pod clock stops there) and
//! the last state of each, kept after the pod is deleted (the agent cleans finished pods up; the demo's table still
//! shows what they were).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the watch saw of one pod.
#[derive(Debug, Clone)]
pub struct SeenPod {
    /// When the watch first delivered it.
    pub first_seen: Instant,
    /// Its last state (before deletion, if deleted).
    pub last: Pod,
    /// Whether it has been deleted since.
    pub deleted: bool,
}

#[derive(Default)]
struct Seen {
    pods: HashMap<String, SeenPod>,
}

/// A running watch; stopped when dropped.
pub struct PodWatch {
    seen: Arc<Mutex<Seen>>,
    /// How many distinct pods were seen so far (waiters use `wait_for`).
    count: watch::Receiver<usize>,
    /// Set once the first list is complete: pods created after that are seen as they appear.
    synced: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PodWatch {
    /// Watch every pod of `pods`' namespace.
    pub fn start(pods: Api<Pod>) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (count_tx, count) = watch::channel(0usize);
        let (synced_tx, synced) = watch::channel(false);
        let writer = seen.clone();
        let task = tokio::spawn(async move {
            let stream = watcher::watcher(pods, watcher::Config::default());
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
                let Some(name) = pod.metadata.name.clone() else {
                    continue;
                };
                let now = Instant::now();
                let mut seen = writer.lock().unwrap_or_else(PoisonError::into_inner);
                let entry = seen.pods.entry(name).or_insert_with(|| SeenPod {
                    first_seen: now,
                    last: pod.clone(),
                    deleted,
                });
                entry.last = pod;
                entry.deleted = deleted;
                let n = seen.pods.len();
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
    pub fn get(&self, name: &str) -> Option<SeenPod> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pods
            .get(name)
            .cloned()
    }

    /// Everything seen, by pod name.
    pub fn all(&self) -> HashMap<String, SeenPod> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pods
            .clone()
    }
}
