//! The lifecycle loop: follows every pod of the agent and keeps its task told the truth.
//!
//! Every round it reads the pod watch's cache (no per-pod polling of Kubernetes), reads the status of those pods'
//! tasks in one batched `tasks.get_all`, lets [`crate::lifecycle::decide`] say what each pod means, and carries that
//! out in order: the task hears the reason (status message, failure, requeue) *before* the pod is deleted, and when
//! telling ClearML fails the pod stays until the next round. A pod the agent saw that is gone while its task is
//! still queued or running fails the task with a reason that says so. The no-update watchdog reads the tasks'
//! `last_update` in the same call, and the `tasks_stalled{queue}` gauge counts the tasks it currently finds silent.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use clearml_api::{StatusChange, TasksGetAll};
use k8s_openapi::api::core::v1::Pod;
use kube::api::DeleteParams;

use crate::kube::task_label;
use crate::lifecycle::{self, Action, Memory, NO_UPDATE_REASON, Settings, TaskView};
use crate::metrics::QueueLabels;
use crate::render::{LABEL_QUEUE_ID, LABEL_QUEUE_NAME};
use crate::run::Shared;
use crate::submit::{FAIL_REASON, fail_task};

/// How often the loop looks at the pods. An abort in ClearML reaches its pod within about this long.
pub const ROUND: Duration = Duration::from_secs(2);

/// At most this many ids per `tasks.get_all`.
const PAGE: usize = 500;

/// State the loop keeps between rounds.
#[derive(Debug, Default)]
pub struct Follower {
    memory: HashMap<String, Memory>,
    /// Task id → pod name, for pods seen in the previous round (to notice one vanishing).
    seen: HashMap<String, String>,
    /// Queues the stalled-tasks gauge was last set above 0 for (to bring them back to 0).
    stalled_queues: HashSet<String>,
}

/// The statuses of `ids`' tasks, in as few calls as the page size allows.
async fn task_views(
    shared: &Shared,
    ids: &[String],
) -> Result<HashMap<String, TaskView>, clearml_api::Error> {
    let mut views = HashMap::new();
    for chunk in ids.chunks(PAGE) {
        let tasks = shared
            .clearml
            .tasks_get_all(&TasksGetAll {
                id: chunk.to_vec(),
                only_fields: vec![
                    "id".into(),
                    "status".into(),
                    "status_message".into(),
                    "last_update".into(),
                ],
                page_size: Some(u32::try_from(PAGE).unwrap_or(u32::MAX)),
                search_hidden: true,
                ..TasksGetAll::default()
            })
            .await?;
        for task in tasks {
            views.insert(
                task.id.clone(),
                TaskView {
                    status: task.status,
                    status_message: task.status_message,
                    last_update: task
                        .last_update
                        .as_deref()
                        .and_then(lifecycle::clearml_time),
                },
            );
        }
    }
    Ok(views)
}

impl Follower {
    /// One round over every pod.
    pub async fn round(&mut self, shared: &Shared, settings: Settings) {
        let pods = shared.tracker.pods();
        record_phases(shared, &pods);
        let current: HashMap<String, Arc<Pod>> = pods
            .iter()
            .filter_map(|p| task_label(p).map(|id| (id.to_string(), p.clone())))
            .collect();
        let vanished: Vec<(String, String)> = self
            .seen
            .iter()
            .filter(|(id, _)| !current.contains_key(*id) && !shared.tracker.is_submitting(id))
            .map(|(id, pod)| (id.clone(), pod.clone()))
            .collect();
        if current.is_empty() && vanished.is_empty() {
            self.seen.clear();
            self.record_stalled(shared, &current);
            return;
        }
        let ids: Vec<String> = current
            .keys()
            .cloned()
            .chain(vanished.iter().map(|(id, _)| id.clone()))
            .collect();
        let views = match task_views(shared, &ids).await {
            Ok(views) => views,
            Err(err) => {
                shared.metrics.clearml_error(err.endpoint());
                tracing::warn!(error = %err, "cannot read the tasks of the agent's pods; next round");
                return;
            }
        };
        let now = k8s_openapi::jiff::Timestamp::now();
        for (task_id, pod) in &current {
            if shared.tracker.is_submitting(task_id) {
                continue;
            }
            let memory = self.memory.entry(task_id.clone()).or_default();
            let actions = lifecycle::decide(pod, views.get(task_id), memory, settings, now);
            if !actions.is_empty() {
                tracing::debug!(task_id, task = ?views.get(task_id), ?actions, "lifecycle");
            }
            for action in actions {
                if !carry_out(shared, pod, task_id, &action, memory).await {
                    break;
                }
            }
        }
        for (task_id, pod_name) in &vanished {
            let live = views.get(task_id).is_some_and(TaskView::is_live);
            let settled = self.memory.get(task_id).is_some_and(|m| m.settled);
            if live && !settled {
                let Action::Fail { reason, message } = lifecycle::vanished(pod_name) else {
                    continue;
                };
                fail_task(shared, "unknown", task_id, &reason, &reason, &message, true).await;
            }
            self.memory.remove(task_id);
        }
        self.seen = current
            .iter()
            .map(|(id, pod)| (id.clone(), pod.metadata.name.clone().unwrap_or_default()))
            .collect();
        let live: HashSet<&String> = current.keys().collect();
        self.memory.retain(|id, _| live.contains(id));
        self.record_stalled(shared, &current);
    }

    /// The `tasks_stalled{queue}` gauge (queues counted last round and not this one go back to 0).
    fn record_stalled(&mut self, shared: &Shared, current: &HashMap<String, Arc<Pod>>) {
        let mut counts: HashMap<String, i64> = self
            .stalled_queues
            .drain()
            .map(|queue| (queue, 0))
            .collect();
        counts.extend(stalled_by_queue(&self.memory, current));
        for (queue, count) in counts {
            shared
                .metrics
                .tasks_stalled
                .get_or_create(&QueueLabels {
                    queue: queue.clone(),
                })
                .set(count);
            if count > 0 {
                self.stalled_queues.insert(queue);
            }
        }
    }
}

/// Tasks the watchdog reported that are neither heard from again nor settled (failed by it), per queue.
fn stalled_by_queue(
    memory: &HashMap<String, Memory>,
    current: &HashMap<String, Arc<Pod>>,
) -> HashMap<String, i64> {
    let mut counts = HashMap::new();
    for (task_id, memory) in memory {
        if memory.stalled
            && !memory.settled
            && let Some(pod) = current.get(task_id)
        {
            *counts.entry(queue_name(pod)).or_default() += 1;
        }
    }
    counts
}

/// The `pods{phase}` gauge, from the pod watch's cache.
fn record_phases(shared: &Shared, pods: &[Arc<Pod>]) {
    let mut counts: HashMap<String, i64> = ["Pending", "Running", "Succeeded", "Failed", "Unknown"]
        .into_iter()
        .map(|p| (p.to_string(), 0))
        .collect();
    for pod in pods {
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Pending".into());
        *counts.entry(phase).or_default() += 1;
    }
    for (phase, count) in counts {
        shared
            .metrics
            .pods
            .get_or_create(&crate::metrics::PhaseLabels { phase })
            .set(count);
    }
}

fn queue_name(pod: &Pod) -> String {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_QUEUE_NAME))
        .cloned()
        .unwrap_or_default()
}

/// Carry out one action; `false` stops the pod's remaining actions this round (so a pod is never deleted before
/// its task has heard why).
async fn carry_out(
    shared: &Shared,
    pod: &Pod,
    task_id: &str,
    action: &Action,
    memory: &mut Memory,
) -> bool {
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let queue = queue_name(pod);
    match action {
        Action::Message(message) => match shared
            .clearml
            .tasks_set_status_message(task_id, message)
            .await
        {
            Ok(_) => {
                tracing::info!(task_id, pod = %pod_name, queue = %queue, message = %message, "task pending");
                memory.last_message = Some(message.clone());
                true
            }
            Err(err) => {
                shared.metrics.clearml_error(err.endpoint());
                tracing::warn!(task_id, error = %err, "cannot write the pending reason; next round");
                false
            }
        },
        Action::Fail { reason, message } => {
            fail(shared, pod, &queue, task_id, reason, message, memory).await
        }
        Action::Stalled {
            message,
            fail: fail_it,
        } => {
            let done = if *fail_it {
                fail(
                    shared,
                    pod,
                    &queue,
                    task_id,
                    NO_UPDATE_REASON,
                    message,
                    memory,
                )
                .await
            } else {
                match shared
                    .clearml
                    .tasks_set_status_message(task_id, message)
                    .await
                {
                    Ok(_) => true,
                    Err(err) => {
                        shared.metrics.clearml_error(err.endpoint());
                        tracing::warn!(task_id, error = %err, "cannot write the watchdog's message; next round");
                        false
                    }
                }
            };
            if done {
                memory.stalled = true;
                tracing::warn!(task_id, pod = %pod_name, queue = %queue, message = %message, failed = *fail_it,
                    "no update from the task (watchdog)");
            }
            done
        }
        Action::Recovered => {
            memory.stalled = false;
            tracing::info!(task_id, pod = %pod_name, queue = %queue, "the task is no longer silent (watchdog)");
            true
        }
        Action::Requeue { message } => {
            let done = requeue(shared, pod, task_id, message).await;
            memory.settled = done;
            done
        }
        Action::MarkStopped => {
            let change = StatusChange::new(task_id)
                .force()
                .reason("aborted")
                .message(format!("aborted in ClearML: pod {pod_name} deleted"));
            match shared.clearml.tasks_stopped(&change).await {
                Ok(_) => {
                    memory.settled = true;
                    tracing::info!(task_id, pod = %pod_name, queue = %queue, "aborted task stopped");
                    true
                }
                Err(err) => {
                    shared.metrics.clearml_error(err.endpoint());
                    tracing::warn!(task_id, error = %err, "cannot mark the aborted task stopped; next round");
                    false
                }
            }
        }
        Action::DeletePod => match shared
            .pods
            .delete(&pod_name, &DeleteParams::default())
            .await
        {
            Ok(_) => {
                tracing::info!(task_id, pod = %pod_name, queue = %queue, "pod deleted");
                true
            }
            Err(kube::Error::Api(status)) if status.code == 404 => true,
            Err(err) => {
                shared.metrics.kube_error("delete");
                tracing::warn!(task_id, pod = %pod_name, error = %err, "cannot delete the pod; next round");
                false
            }
        },
    }
}

/// Fail the pod's task (the one way: [`fail_task`]) and record a `TaskFailed` Event on the pod.
async fn fail(
    shared: &Shared,
    pod: &Pod,
    queue: &str,
    task_id: &str,
    reason: &str,
    message: &str,
    memory: &mut Memory,
) -> bool {
    let done = fail_task(shared, queue, task_id, reason, reason, message, true).await;
    if done {
        memory.settled = true;
        crate::kube::pod_event(shared, pod, "TaskFailed", message).await;
    }
    done
}

/// Put a task back at the front of the queue its pod came from.
async fn requeue(shared: &Shared, pod: &Pod, task_id: &str, message: &str) -> bool {
    let Some(queue_id) = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_QUEUE_ID))
        .cloned()
    else {
        return fail_task(
            shared,
            "unknown",
            task_id,
            FAIL_REASON,
            FAIL_REASON,
            message,
            true,
        )
        .await;
    };
    let _ = shared
        .clearml
        .queues_remove_task(&shared.pending_queue_id, task_id)
        .await;
    let result = crate::submit::requeue_front(
        shared,
        &queue_id,
        task_id,
        Some(format!("requeued: {message}")),
    )
    .await;
    match result {
        Ok(_) => {
            tracing::warn!(task_id, queue_id = %queue_id, message, "task returned to the front of its queue");
            true
        }
        Err(err) => {
            shared.metrics.clearml_error(err.endpoint());
            tracing::warn!(task_id, error = %err, "cannot requeue the task; next round");
            false
        }
    }
}

/// Run rounds until `stop` is set.
pub async fn follow(
    shared: Arc<Shared>,
    settings: Settings,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut follower = Follower::default();
    loop {
        follower.round(&shared, settings).await;
        tokio::select! {
            () = tokio::time::sleep(ROUND) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(queue: &str) -> Arc<Pod> {
        let mut pod = Pod::default();
        pod.metadata.labels = Some([(LABEL_QUEUE_NAME.to_string(), queue.to_string())].into());
        Arc::new(pod)
    }

    #[test]
    fn the_stalled_gauge_counts_reported_tasks_still_running_per_queue() {
        let current: HashMap<String, Arc<Pod>> =
            [("a", "red"), ("b", "red"), ("c", "blue"), ("d", "blue")]
                .into_iter()
                .map(|(id, queue)| (id.to_string(), pod(queue)))
                .collect();
        let stalled = Memory {
            stalled: true,
            ..Memory::default()
        };
        let memory: HashMap<String, Memory> = [
            ("a", stalled.clone()),
            ("b", stalled.clone()),
            // Failed by the watchdog: no longer a running task.
            (
                "c",
                Memory {
                    settled: true,
                    ..stalled.clone()
                },
            ),
            ("d", Memory::default()),
            // Its pod is gone.
            ("gone", stalled),
        ]
        .into_iter()
        .map(|(id, m)| (id.to_string(), m))
        .collect();
        assert_eq!(
            stalled_by_queue(&memory, &current),
            HashMap::from([("red".to_string(), 2)])
        );
    }
}
