//! The Kubernetes Events of the agent's pods (scheduling, pulling, OOM, eviction, ...) appended to their tasks'
//! console logs, so the ClearML UI shows why a pod waits or died next to the task's own output.
//!
//! One watch on the namespace's Events (involving Pods), filtered to the agent's pods by name; lines are batched and
//! sent with one `events.add_batch` per round, never one call per event.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use clearml_api::LogEvent;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Event;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};

use crate::run::Shared;

/// How often collected lines are sent.
const FLUSH_EVERY: Duration = Duration::from_secs(2);

/// At most this many lines wait for a flush; older ones are dropped first (a log, not a ledger).
const MAX_BUFFERED: usize = 5_000;

/// The console line for an Event: `[k8s] <type> <reason>: <message>`.
pub fn line(event: &Event) -> String {
    format!(
        "[k8s] {} {}: {}",
        event.type_.as_deref().unwrap_or("Normal"),
        event.reason.as_deref().unwrap_or(""),
        event.message.as_deref().unwrap_or("")
    )
}

fn level(event: &Event) -> &'static str {
    if event.type_.as_deref() == Some("Warning") {
        "warning"
    } else {
        "info"
    }
}

/// `at`, truncated to its second: the precision of an Event's `lastTimestamp`.
fn whole_second(at: k8s_openapi::jiff::Timestamp) -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::from_second(at.as_second()).unwrap_or(at)
}

/// Follow the namespace's pod Events until the task is aborted (the run loop owns it).
pub async fn stream(shared: Arc<Shared>) {
    let api: Api<Event> = Api::namespaced(
        shared.pods.clone().into_client(),
        &shared.identity.namespace,
    );
    let config = watcher::Config::default().fields("involvedObject.kind=Pod");
    // Only events that happen from now on: a restarted agent does not repeat what it already sent. Event times
    // have whole seconds (`lastTimestamp`), so compare at that precision: otherwise the events of the agent's first
    // second (a pod scheduled right after start) would be dropped as older than the start.
    let started = whole_second(k8s_openapi::jiff::Timestamp::now());
    let events = watcher(api, config).default_backoff().applied_objects();
    futures::pin_mut!(events);
    let mut buffer: Vec<LogEvent> = Vec::new();
    let mut seen: HashMap<String, i32> = HashMap::new();
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    loop {
        tokio::select! {
            next = events.next() => {
                let Some(next) = next else { return };
                let Ok(event) = next else { continue };
                let when = event
                    .last_timestamp
                    .as_ref()
                    .or(event.first_timestamp.as_ref())
                    .map(|t| t.0)
                    .or_else(|| event.event_time.as_ref().map(|t| t.0));
                if when.is_some_and(|w| w < started) {
                    continue;
                }
                let Some(pod) = event.involved_object.name.as_deref() else { continue };
                let Some(task_id) = shared.tracker.task_of_pod(pod) else { continue };
                // An Event is updated in place when it repeats (its count grows): send each count once.
                let key = event.metadata.uid.clone().unwrap_or_default();
                let count = event.count.unwrap_or(1);
                if seen.get(&key).is_some_and(|&c| c >= count) {
                    continue;
                }
                seen.insert(key, count);
                let mut log = LogEvent::new(&task_id, level(&event), line(&event));
                log.timestamp = when.map(|w| w.as_millisecond());
                log.worker = Some(shared.identity.worker_id().to_string());
                if buffer.len() >= MAX_BUFFERED {
                    buffer.remove(0);
                }
                buffer.push(log);
            }
            _ = flush.tick() => {
                if buffer.is_empty() {
                    continue;
                }
                match shared.clearml.events_add_log_batch(&buffer).await {
                    Ok(_) => buffer.clear(),
                    Err(err) => {
                        shared.metrics.clearml_error(err.endpoint());
                        tracing::warn!(error = %err, lines = buffer.len(), "cannot append pod events to task logs; retrying");
                    }
                }
                if seen.len() > 50_000 {
                    seen.clear();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_of_the_agents_first_second_is_not_older_than_the_start() {
        let start: k8s_openapi::jiff::Timestamp = "2026-12-03T15:40:50.700Z".parse().unwrap();
        // The Scheduled event of a pod created 200 ms after the start, as the apiserver stamps it.
        let event: k8s_openapi::jiff::Timestamp = "2026-12-03T15:40:50Z".parse().unwrap();
        assert!(event < start);
        assert!(event >= whole_second(start));
    }

    #[test]
    fn an_event_becomes_one_readable_line() {
        let event: Event = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod", "name": "clearml-id-t"},
            "type": "Warning", "reason": "FailedScheduling",
            "message": "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
        }))
        .unwrap();
        assert_eq!(
            line(&event),
            "[k8s] Warning FailedScheduling: 0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
        );
        assert_eq!(level(&event), "warning");
    }
}
