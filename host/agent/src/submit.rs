//! One task's way from a popped queue entry to a pod: read the task, render the base pod, run the queue's policy
//! chain (off the reactor), guard, hand the task to the pending queue, create the pod.
//!
//! Order matters for "no task is ever lost": the task is put into the pending queue *before* its pod is created, so
//! from then on ClearML itself records that it is the agent's to launch (a restart finds it there), and the stock
//! in-pod `clearml-agent execute --require-queue` finds it where it expects it. A task the agent cannot launch
//! (policy rejection, policy fault, guard violation, a pod the API server refuses) is failed with a message naming
//! the queue and the policy, which the ML user sees as the task's status message.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use clearml_api::{Enqueue, NextTask, StatusChange, Task, TasksGetAll};
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::kube::{Created, KubeError, create_pod};
use crate::metrics::Metrics;
use crate::pipeline::record_policy_times;
pub use crate::pipeline::{
    RenderContext, RenderFailure, Rendered, render_round, render_task, task_context,
};
use crate::render;
use crate::run::{Failpoint, Shared};
use crate::startup::ResolvedQueue;

/// `status_reason` the agent writes when it fails a task.
pub const FAIL_REASON: &str = "clearml-k8s-agent";

/// Fields of a task the agent reads (`only_fields`), so a task with a large script or configuration costs no more.
const TASK_FIELDS: &[&str] = &[
    "id",
    "name",
    "project",
    "user",
    "tags",
    "system_tags",
    "container",
    "hyperparams",
    "status",
    "execution.queue",
];

/// Read the task's fields the pipeline needs.
pub async fn fetch_task(shared: &Shared, task_id: &str) -> Result<Task, clearml_api::Error> {
    let mut tasks = fetch_tasks(shared, &[task_id.to_string()]).await?;
    Ok(tasks.remove(task_id).unwrap_or_else(|| Task {
        id: task_id.to_string(),
        ..Task::default()
    }))
}

/// Read the tasks of one dispatch round in one call (the round's pops hand them to their submissions).
pub async fn fetch_tasks(
    shared: &Shared,
    ids: &[String],
) -> Result<std::collections::HashMap<String, Task>, clearml_api::Error> {
    let tasks = shared
        .clearml
        .tasks_get_all(&TasksGetAll {
            id: ids.to_vec(),
            only_fields: TASK_FIELDS.iter().map(|f| f.to_string()).collect(),
            page_size: Some(u32::try_from(ids.len()).unwrap_or(u32::MAX)),
            ..TasksGetAll::default()
        })
        .await?;
    Ok(tasks.into_iter().map(|t| (t.id.clone(), t)).collect())
}

/// What the dispatch round already did for a popped task.
#[derive(Debug)]
pub enum Prefetched {
    /// Nothing: the submission reads the task and renders its pod itself.
    Nothing,
    /// The round read the task with its others and rendered its pod with theirs ([`render_round`]).
    Rendered(Box<Result<Rendered, RenderFailure>>),
}

/// Submit one popped task. Never returns an error: every outcome is reported to ClearML, the log and the metrics.
/// `prefetched` is what the dispatch round did for it already. The task is read and rendered first; a permit of
/// `slots` (`--max-in-flight`) is taken only for the steps that talk to ClearML and Kubernetes for it (hand-over,
/// pod create), so a popped task waiting for a slot is rendered by the time it gets one and the slots' requests are
/// never held up by policy evaluation.
pub async fn submit(
    shared: Arc<Shared>,
    queue: ResolvedQueue,
    next: NextTask,
    prefetched: Prefetched,
    slots: Arc<Semaphore>,
) {
    let task_id = next.entry.task.clone();
    let span = tracing::info_span!(
        "submit",
        queue = %queue.config.name,
        task_id = %task_id,
        pod = %render::pod_name(&task_id)
    );
    async {
        shared.tracker.set_submitting(&task_id, true);
        let outcome = submit_inner(&shared, &queue, &next, prefetched, &slots).await;
        shared.tracker.set_submitting(&task_id, false);
        if let Err(failure) = outcome {
            // No pod will come for this reservation.
            shared.tracker.release(&task_id);
            tracing::warn!(error = %failure, "task not launched");
        }
    }
    .instrument(span)
    .await;
}

/// Why `submit_inner` stopped short of a pod.
#[derive(Debug, thiserror::Error)]
enum SubmitError {
    #[error("{0}")]
    Failed(String),
    #[error("returned to its queue: {0}")]
    Requeued(String),
}

async fn submit_inner(
    shared: &Shared,
    queue: &ResolvedQueue,
    next: &NextTask,
    prefetched: Prefetched,
    slots: &Arc<Semaphore>,
) -> Result<(), SubmitError> {
    let task_id = &next.entry.task;
    let rendered = match prefetched {
        Prefetched::Rendered(rendered) => {
            shared.failpoint(Failpoint::AfterPop).await;
            *rendered
        }
        Prefetched::Nothing => {
            let task = match fetch_task(shared, task_id).await {
                Ok(task) => task,
                Err(err) => {
                    return requeue_after(shared, queue, task_id, "cannot read the task", &err)
                        .await;
                }
            };
            shared.failpoint(Failpoint::AfterPop).await;
            let user = next.task_info.as_ref().and_then(|i| i.user.clone());
            render_task(
                shared.render_context(),
                queue,
                task_context(&task, queue, user),
            )
            .await
        }
    };
    let rendered = match rendered {
        Ok(rendered) => {
            record_policy_times(&shared.metrics, &rendered.outcome);
            rendered
        }
        Err(failure) => {
            let message = failure.to_string();
            fail_task(
                shared,
                &queue.config.name,
                task_id,
                failure.metric_label(),
                FAIL_REASON,
                &message,
                false,
            )
            .await;
            return Err(SubmitError::Failed(message));
        }
    };

    // The semaphore is never closed; without a permit the submission still runs.
    let _slot = slots.clone().acquire_owned().await.ok();
    // Hand over to the pending queue first (see the module docs).
    if let Err(err) = crate::handover::hand_over(shared, queue, task_id).await {
        let what = "cannot hand it to the pending queue";
        return requeue_after(shared, queue, task_id, what, &err).await;
    }

    shared.failpoint(Failpoint::AfterHandoff).await;
    create(shared, queue, task_id, &rendered).await
}

/// Mark ClearML down after a failed call retrying may fix.
pub(crate) fn clearml_down(shared: &Shared, error: &clearml_api::Error) {
    shared.metrics.clearml_error(error.endpoint());
    shared
        .metrics
        .health
        .record_down(crate::health::Dependency::ClearMl, &error.to_string());
}

/// Create the pod of a handed-over task, and fail the task when the API server refuses it.
async fn create(
    shared: &Shared,
    queue: &ResolvedQueue,
    task_id: &str,
    rendered: &Rendered,
) -> Result<(), SubmitError> {
    let secrets = shared.secret_values();
    let created = (|| create_pod(&shared.pods, &rendered.pod, &secrets))
        .retry(backoff())
        .when(|e| matches!(e, KubeError::Transient { .. }))
        .notify(|e, delay| {
            shared.metrics.kube_error(e.metric_label());
            shared
                .metrics
                .health
                .record_down(crate::health::Dependency::Kubernetes, &e.to_string());
            tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "pod create failed, retrying");
        })
        .await;
    match created {
        Ok(how) => {
            shared
                .metrics
                .health
                .record_up(crate::health::Dependency::Kubernetes);
            shared.failpoint(Failpoint::AfterCreate).await;
            Metrics::per_queue(&shared.metrics.tasks_submitted, &queue.config.name);
            // One line per task at debug (the `tasks_submitted` metric counts them); an adopted pod is worth info.
            if how == Created::Adopted {
                tracing::info!(
                    policies = rendered.outcome.steps.len(),
                    "pod already existed: adopted"
                );
            } else {
                tracing::debug!(policies = rendered.outcome.steps.len(), "pod submitted");
            }
            Ok(())
        }
        Err(err @ (KubeError::Refused { .. } | KubeError::Conflict { .. })) => {
            shared.metrics.kube_error(err.metric_label());
            let message = format!("queue {}: {err}", queue.config.name);
            fail_task(
                shared,
                &queue.config.name,
                task_id,
                "pod_refused",
                FAIL_REASON,
                &message,
                true,
            )
            .await;
            Err(SubmitError::Failed(message))
        }
        Err(err) => {
            // Still failing after the retries: the task stays in the pending queue, where start-up recovery finds
            // tasks without a pod; put it back to the front of its queue now so it is not stuck until then.
            shared.metrics.kube_error(err.metric_label());
            requeue(shared, queue, task_id, &err.to_string()).await
        }
    }
}

/// Submit a task recovery found in the pending queue without a pod: render and create only (it was handed over
/// already).
pub async fn resubmit(shared: Arc<Shared>, queue: ResolvedQueue, task_id: String) {
    let outcome = async {
        let task = fetch_task(&shared, &task_id)
            .await
            .map_err(|e| SubmitError::Failed(format!("cannot read the task: {e}")))?;
        let rendered = match render_task(
            shared.render_context(),
            &queue,
            task_context(&task, &queue, None),
        )
        .await
        {
            Ok(rendered) => rendered,
            Err(failure) => {
                let message = failure.to_string();
                fail_task(
                    &shared,
                    &queue.config.name,
                    &task_id,
                    failure.metric_label(),
                    FAIL_REASON,
                    &message,
                    true,
                )
                .await;
                return Err(SubmitError::Failed(message));
            }
        };
        create(&shared, &queue, &task_id, &rendered).await
    }
    .await;
    if let Err(err) = outcome {
        shared.tracker.release(&task_id);
        tracing::warn!(task_id = %task_id, error = %err, "recovered task not launched");
    }
}

/// Retries for one step of a submission: a few seconds of jittered exponential backoff.
pub(crate) fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_max_times(6)
        .with_jitter()
}

/// Retries for a step that must not give up while ClearML is merely unreachable: jittered backoff up to 5 s apart,
/// for as long as it takes (a SIGTERM still ends the process; the README names that window).
pub(crate) fn until_it_answers() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .without_max_times()
        .with_jitter()
}

/// Put a task back at the front of queue `queue_id` (it keeps its place): stopped (forced: it may still be
/// `queued`), enqueued there, moved to the front. The one way the agent gives a task back, used after a transient
/// failure, by recovery and for evicted pods.
pub async fn requeue_front(
    shared: &Shared,
    queue_id: &str,
    task_id: &str,
    message: Option<String>,
) -> Result<(), clearml_api::Error> {
    let queue_name = shared
        .queues
        .iter()
        .find(|q| q.id == queue_id)
        .map_or(queue_id, |q| q.config.name.as_str());
    // As at the hand-over: a kill between the stop and the enqueue leaves a `stopped` task recovery can find.
    let stop = StatusChange::new(task_id)
        .force()
        .reason(crate::recover::returning_message(
            queue_name,
            &shared.identity.instance,
        ));
    let enqueue = Enqueue {
        task: task_id.to_string(),
        queue: Some(queue_id.to_string()),
        status_message: message,
        ..Enqueue::default()
    };
    let back = || async {
        shared.clearml.tasks_stop(&stop).await?;
        shared.clearml.tasks_enqueue(&enqueue).await?;
        shared
            .clearml
            .call::<_, serde_json::Value>(
                "queues.move_task_to_front",
                &serde_json::json!({"queue": queue_id, "task": task_id}),
            )
            .await
    };
    back.retry(until_it_answers())
        .when(|e: &clearml_api::Error| e.is_transient())
        .notify(|e, _| clearml_down(shared, e))
        .await
        .map(|_| ())
}

/// Return a task whose submission failed transiently to the front of its queue.
/// [`requeue`] after the ClearML call `what` failed with `err` (counted in the metrics).
async fn requeue_after(
    shared: &Shared,
    queue: &ResolvedQueue,
    task_id: &str,
    what: &str,
    err: &clearml_api::Error,
) -> Result<(), SubmitError> {
    shared.metrics.clearml_error(err.endpoint());
    requeue(shared, queue, task_id, &format!("{what}: {err}")).await
}

async fn requeue(
    shared: &Shared,
    queue: &ResolvedQueue,
    task_id: &str,
    why: &str,
) -> Result<(), SubmitError> {
    match requeue_front(shared, &queue.id, task_id, None).await {
        Ok(()) => {
            tracing::warn!(reason = why, "task returned to the front of its queue");
            Err(SubmitError::Requeued(why.to_string()))
        }
        Err(err) => {
            tracing::error!(reason = why, error = %err, "cannot return the task to its queue; start-up recovery will find it");
            Err(SubmitError::Requeued(format!(
                "{why}; returning it failed too: {err}"
            )))
        }
    }
}

/// Fail a task with `message` (what the ML user reads) and `status_reason`, taking it out of the pending queue if
/// it was handed over; `reason` labels the metric. The one way the agent fails a task (submissions and the
/// lifecycle); `false` when ClearML could not be told (the caller tries again later or logs it).
pub async fn fail_task(
    shared: &Shared,
    queue: &str,
    task_id: &str,
    reason: &str,
    status_reason: &str,
    message: &str,
    in_pending: bool,
) -> bool {
    if in_pending
        && let Err(err) = shared
            .clearml
            .queues_remove_task(&shared.pending_queue_id, task_id)
            .await
    {
        tracing::debug!(task_id, error = %err, "task was not in the pending queue");
    }
    let change = StatusChange::new(task_id)
        .force()
        .reason(status_reason)
        .message(message);
    match (|| shared.clearml.tasks_failed(&change))
        .retry(backoff())
        .when(|e| e.is_transient())
        .await
    {
        Ok(_) => {
            shared.metrics.failed(queue, reason);
            tracing::warn!(task_id, queue, reason, message, "task failed");
            true
        }
        Err(err) => {
            shared.metrics.clearml_error(err.endpoint());
            tracing::error!(task_id, error = %err, "cannot mark the task failed");
            false
        }
    }
}
