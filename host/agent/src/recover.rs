//! Recovery: after a crash (or a kill between any two steps of a submission), find every task the agent answers
//! for that has no pod, and finish what was started. It runs at start-up, and again whenever an outage of ClearML
//! or the Kubernetes API ends (a submission it interrupted may have given up half-way); tasks a live submission
//! still holds are left to it. Existing pods need nothing: the pod watch adopts
//! them, and the lifecycle follows them from there.
//!
//! Where a task can be after a crash, by the step that was under way:
//! - **after the pop, before the hand-over**: `queued`, `execution.queue` one of the agent's queues, but in no
//!   queue's entries. Found by comparing the two; put back at the front of its queue.
//! - **between the forced stop and the enqueue** of a hand-over or of a return to the queue: `stopped`, with the
//!   status reason the stop carried ([`pending_message`] or [`returning_message`], naming queue and agent; the
//!   server keeps a stop's reason but not its message). Put back at the front of its queue.
//! - **after the hand-over, before the pod**: in the pending queue, with the status message the agent wrote at
//!   the hand-over (`waiting for pod <name> (queue <q>, agent <instance>)`), and no pod. Re-submitted with the same
//!   deterministic name.
//! - **after the pod**: the pod exists; nothing to do.

use std::collections::HashSet;
use std::sync::Arc;

use clearml_api::{QueuesGetAll, TaskStatus, TasksGetAll};

use crate::run::Shared;
use crate::submit;

/// The status message written at the hand-over: tells the ML user what the task waits for, and tells recovery
/// which queue and agent it belongs to.
pub fn pending_message(pod: &str, queue: &str, instance: &str) -> String {
    format!("waiting for pod {pod} (queue {queue}, agent {instance})")
}

/// The status message of the forced stop before a task goes back to its queue.
pub fn returning_message(queue: &str, instance: &str) -> String {
    format!("returning to queue {queue} (agent {instance})")
}

/// The queue name in a [`returning_message`] of this agent.
pub fn parse_returning_message<'a>(message: &'a str, instance: &str) -> Option<&'a str> {
    let (queue, agent) = message
        .strip_prefix("returning to queue ")?
        .strip_suffix(')')?
        .rsplit_once(" (agent ")?;
    (agent == instance).then_some(queue)
}

/// The queue name of a task this agent handed over, read back from [`pending_message`].
pub fn parse_pending_message<'a>(message: &'a str, instance: &str) -> Option<&'a str> {
    let inner = message
        .strip_prefix("waiting for pod ")?
        .split_once(" (queue ")?
        .1;
    let (queue, agent) = inner.strip_suffix(')')?.rsplit_once(", agent ")?;
    (agent == instance).then_some(queue)
}

/// Find and finish interrupted submissions. Errors are logged: recovery runs again at the next start.
pub async fn recover(shared: &Arc<Shared>) {
    if let Err(err) = recover_pending(shared).await {
        tracing::warn!(error = %err, "recovery of the pending queue failed");
    }
    if let Err(err) = recover_popped(shared).await {
        tracing::warn!(error = %err, "recovery of popped tasks failed");
    }
    if let Err(err) = recover_stopped(shared).await {
        tracing::warn!(error = %err, "recovery of tasks stopped mid-move failed");
    }
}

/// Tasks per page when scanning stopped tasks (only three small fields each).
const PAGE: u32 = 500;

async fn recover_stopped(shared: &Shared) -> Result<(), clearml_api::Error> {
    let mut queue_ids: Vec<String> = shared.queues.iter().map(|q| q.id.clone()).collect();
    queue_ids.push(shared.pending_queue_id.clone());
    let mut page = 0;
    loop {
        let stopped = shared
            .clearml
            .tasks_get_all(&TasksGetAll {
                status: vec![TaskStatus::Stopped],
                execution_queue: queue_ids.clone(),
                only_fields: vec!["id".into(), "status_reason".into()],
                search_hidden: true,
                page: Some(page),
                page_size: Some(PAGE),
                ..TasksGetAll::default()
            })
            .await?;
        let last_page = stopped.len() < PAGE as usize;
        for task in stopped {
            let reason = task.status_reason.as_deref().unwrap_or_default();
            let instance = &shared.identity.instance;
            let Some(queue_name) = parse_pending_message(reason, instance)
                .or_else(|| parse_returning_message(reason, instance))
            else {
                continue;
            };
            if shared.tracker.pod_of(&task.id).is_some() || shared.tracker.is_claimed(&task.id) {
                continue;
            }
            let Some(queue) = shared.queues.iter().find(|q| q.config.name == queue_name) else {
                continue;
            };
            tracing::warn!(task_id = %task.id, queue = %queue.config.name, "recovering a task stopped mid-move: back to the front of its queue");
            submit::requeue_front(shared, &queue.id, &task.id, None).await?;
        }
        if last_page {
            return Ok(());
        }
        page += 1;
    }
}

async fn recover_pending(shared: &Arc<Shared>) -> Result<(), clearml_api::Error> {
    let pending = shared
        .clearml
        .queues_get_by_id(&shared.pending_queue_id)
        .await?;
    let ids: Vec<String> = pending.entries.iter().map(|e| e.task.clone()).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let tasks = shared
        .clearml
        .tasks_get_all(&TasksGetAll {
            id: ids,
            only_fields: vec!["id".into(), "status".into(), "status_message".into()],
            search_hidden: true,
            ..TasksGetAll::default()
        })
        .await?;
    for task in tasks {
        let Some(queue_name) = task
            .status_message
            .as_deref()
            .and_then(|m| parse_pending_message(m, &shared.identity.instance))
        else {
            continue;
        };
        if task.status != Some(TaskStatus::Queued)
            || shared.tracker.pod_of(&task.id).is_some()
            || shared.tracker.is_claimed(&task.id)
        {
            continue;
        }
        let Some(queue) = shared
            .queues
            .iter()
            .find(|q| q.config.name == queue_name)
            .cloned()
        else {
            continue;
        };
        tracing::warn!(task_id = %task.id, queue = %queue.config.name, "recovering a handed-over task without a pod");
        shared.tracker.reserve(&task.id, &queue.id);
        submit::resubmit(shared.clone(), queue, task.id.clone()).await;
    }
    Ok(())
}

async fn recover_popped(shared: &Shared) -> Result<(), clearml_api::Error> {
    let ids: Vec<String> = shared.queues.iter().map(|q| q.id.clone()).collect();
    let queued = shared
        .clearml
        .tasks_get_all(&TasksGetAll {
            status: vec![TaskStatus::Queued],
            execution_queue: ids.clone(),
            only_fields: vec!["id".into(), "execution.queue".into()],
            search_hidden: true,
            ..TasksGetAll::default()
        })
        .await?;
    if queued.is_empty() {
        return Ok(());
    }
    let queues = shared
        .clearml
        .queues_get_all(&QueuesGetAll {
            id: ids,
            only_fields: vec!["id".into(), "entries".into()],
            search_hidden: true,
            ..QueuesGetAll::default()
        })
        .await?;
    let waiting: HashSet<&str> = queues
        .iter()
        .flat_map(|q| q.entries.iter().map(|e| e.task.as_str()))
        .collect();
    for task in queued {
        if waiting.contains(task.id.as_str())
            || shared.tracker.pod_of(&task.id).is_some()
            || shared.tracker.is_claimed(&task.id)
        {
            continue;
        }
        let Some(queue) = shared
            .queues
            .iter()
            .find(|q| Some(q.id.as_str()) == task.execution_queue())
        else {
            continue;
        };
        tracing::warn!(task_id = %task.id, queue = %queue.config.name, "recovering a popped task: back to the front of its queue");
        submit::requeue_front(shared, &queue.id, &task.id, None).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pending_message_names_queue_and_agent_and_reads_back() {
        let message = pending_message("clearml-id-abc", "1xGPU", "agent-a");
        assert_eq!(
            message,
            "waiting for pod clearml-id-abc (queue 1xGPU, agent agent-a)"
        );
        assert_eq!(parse_pending_message(&message, "agent-a"), Some("1xGPU"));
        assert_eq!(parse_pending_message(&message, "agent-b"), None);
        assert_eq!(
            parse_pending_message("k8s pending scheduler", "agent-a"),
            None
        );
        let back = returning_message("1xGPU", "agent-a");
        assert_eq!(back, "returning to queue 1xGPU (agent agent-a)");
        assert_eq!(parse_returning_message(&back, "agent-a"), Some("1xGPU"));
        assert_eq!(parse_returning_message(&back, "agent-b"), None);
        let odd = pending_message("p", "my (odd), agent name", "a");
        assert_eq!(
            parse_pending_message(&odd, "a"),
            Some("my (odd), agent name")
        );
    }
}
