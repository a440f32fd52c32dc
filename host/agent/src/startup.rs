//! Start-up on the ClearML side: resolve every monitored queue name to its id (creating missing queues when
//! `createQueues` is set), make sure the hidden pending queue exists, register the worker with all its queues.

use clearml_api::{Client, QueueCreate, QueuesGetAll, WorkerRegister};

use crate::config::{AgentConfig, QueueConfig};

/// Name of the hidden queue a task waits in between its pod's creation and the in-pod agent taking it, as the
/// Python glue names it (so the stock in-pod `--require-queue` flow and the web UI behave the same).
pub const PENDING_QUEUE: &str = "k8s_scheduler";

/// System tag that hides the pending queue from the UI's queue list.
pub const PENDING_QUEUE_TAG: &str = "k8s-glue";

/// A monitored queue with its ClearML id.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedQueue {
    /// Its values.
    pub config: QueueConfig,
    /// Its ClearML id.
    pub id: String,
}

/// Start-up failed on the ClearML side.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A monitored queue does not exist and `createQueues` is false: a configuration error (exit 64).
    #[error(
        "agentk8sglue.queues.{queue}: no ClearML queue named {queue:?} (set agentk8sglue.createQueues: true to \
         create it, or create it in ClearML)"
    )]
    MissingQueue {
        /// The queue name.
        queue: String,
    },
    /// A ClearML call failed.
    #[error("ClearML: {0}")]
    Api(#[from] clearml_api::Error),
}

/// Ids look like this (the glue's rule): used as given, not looked up by name.
fn looks_like_id(name: &str) -> bool {
    name.len() >= 30 && name.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

fn regex_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The id of the queue named `name` (exact, case-insensitive, hidden queues included), if it exists.
pub async fn find_queue(client: &Client, name: &str) -> Result<Option<String>, clearml_api::Error> {
    let queues = client
        .queues_get_all(&QueuesGetAll {
            // Case-insensitive and anchored: ClearML resolves queue names case-insensitively.
            name: Some(format!("(?i)^{}$", regex_escape(name))),
            only_fields: vec!["id".into(), "name".into()],
            search_hidden: true,
            ..QueuesGetAll::default()
        })
        .await?;
    Ok(queues
        .into_iter()
        .find(|q| q.name.eq_ignore_ascii_case(name))
        .map(|q| q.id))
}

/// Resolve every monitored queue, creating the missing ones when the config allows it.
pub async fn resolve_queues(
    client: &Client,
    config: &AgentConfig,
) -> Result<Vec<ResolvedQueue>, StartupError> {
    let mut resolved = Vec::with_capacity(config.queues.len());
    for queue in &config.queues {
        let id = if looks_like_id(&queue.name) {
            queue.name.clone()
        } else if let Some(id) = find_queue(client, &queue.name).await? {
            id
        } else if config.create_queues {
            let id = client
                .queues_create(&QueueCreate {
                    name: queue.name.clone(),
                    ..QueueCreate::default()
                })
                .await?;
            tracing::info!(queue = %queue.name, queue_id = %id, "created ClearML queue");
            id
        } else {
            return Err(StartupError::MissingQueue {
                queue: queue.name.clone(),
            });
        };
        resolved.push(ResolvedQueue {
            config: queue.clone(),
            id,
        });
    }
    Ok(resolved)
}

/// The pending queue's id, creating it (hidden) when missing.
pub async fn ensure_pending_queue(client: &Client) -> Result<String, clearml_api::Error> {
    if let Some(id) = find_queue(client, PENDING_QUEUE).await? {
        return Ok(id);
    }
    client
        .queues_create(&QueueCreate {
            name: PENDING_QUEUE.to_string(),
            system_tags: vec![PENDING_QUEUE_TAG.to_string()],
            ..QueueCreate::default()
        })
        .await
}

/// Register the agent as a ClearML worker on all its queues.
pub async fn register_worker(
    client: &Client,
    worker: &str,
    queues: &[ResolvedQueue],
) -> Result<(), clearml_api::Error> {
    client
        .workers_register(&WorkerRegister {
            worker: worker.to_string(),
            timeout: Some(600),
            queues: queues.iter().map(|q| q.id.clone()).collect(),
            tags: vec!["k8s".to_string()],
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_recognised_like_the_glue_does() {
        assert!(looks_like_id("5e1f0c2b3a4d5e6f7a8b9c0d1e2f3a4b"));
        assert!(!looks_like_id("1xGPU"));
        assert!(!looks_like_id("default"));
    }

    #[test]
    fn names_are_matched_literally() {
        assert_eq!(regex_escape("1xGPU"), "1xGPU");
        assert_eq!(regex_escape("a.b+c"), "a\\.b\\+c");
    }
}
