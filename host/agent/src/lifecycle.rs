//! What a pod's state means for its ClearML task: the lifecycle's decision core, a pure function of the pod, the
//! task and what the agent already said.
//!
//! The loop around it ([`crate::watch`]) reads the pod watch's cache and the tasks' statuses (one batched
//! `tasks.get_all`), calls [`decide`] per pod and carries out the [`Action`]s. Everything the ML user sees comes from
//! here: why a task is pending, the real reason it failed (written *before* the pod is cleaned up, unlike the Python
//! glue), an abort in the UI stopping the pod, and the no-update watchdog: a pod that runs on while ClearML has
//! heard nothing from its task for `taskWatchdog.noUpdateMinutes` (a wedged process, an in-pod agent cut off from
//! the server) is said so on the task, once per stall, and with `failTask` the task is failed and the pod deleted.

use std::time::Duration;

use clearml_api::TaskStatus;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::jiff::Timestamp;

use crate::config::AgentConfig;

/// Waiting reasons that mean the container will never start by itself: the task fails and the pod goes. Others
/// (`CreateContainerConfigError` for a Secret that is not there yet, ...) can clear up, so they are only reported.
pub const FATAL_WAITING: &[&str] = &["ImagePullBackOff", "ErrImagePull", "InvalidImageName"];

/// Pod failure reasons of a pod removed by the cluster rather than ended by its task: the task goes back to its
/// queue instead of failing.
pub const EVICTION_REASONS: &[&str] = &[
    "Evicted",
    "Preempted",
    "Preempting",
    "Shutdown",
    "NodeShutdown",
    "Terminated",
];

/// The `status_reason` of a task the watchdog failed.
pub const NO_UPDATE_REASON: &str = "NoUpdate";

/// The part of a task the lifecycle needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskView {
    /// Status.
    pub status: Option<TaskStatus>,
    /// Status message (`stopping` while an abort is under way).
    pub status_message: Option<String>,
    /// When ClearML last heard from the task (`last_update`: pings, event batches, worker status reports naming
    /// it; not the agent's own status messages): the watchdog's clock.
    pub last_update: Option<Timestamp>,
}

impl TaskView {
    /// Queued or in progress: the agent still answers for it.
    pub fn is_live(&self) -> bool {
        matches!(
            self.status,
            Some(TaskStatus::Queued | TaskStatus::InProgress)
        )
    }

    /// Aborted in ClearML: stopped, or in progress and asked to stop.
    pub fn is_aborted(&self) -> bool {
        match self.status {
            Some(TaskStatus::Stopped) => true,
            Some(TaskStatus::InProgress) => self.status_message.as_deref() == Some("stopping"),
            _ => false,
        }
    }
}

/// What the agent remembers about a pod between rounds (so it says each thing once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    /// The last pending message written to the task.
    pub last_message: Option<String>,
    /// The pod's task was already failed or requeued by the agent.
    pub settled: bool,
    /// The watchdog found the task silent and said so (or failed it): once per stall, until it is heard from again.
    pub stalled: bool,
}

/// Settings of the lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Delete finished pods this long after they finished (`completedPodDeletionDelayMinutes`).
    pub deletion_delay: Duration,
    /// Put a task whose pod was evicted or preempted back at the front of its queue (otherwise fail it).
    pub requeue_evicted: bool,
    /// After a container exits by itself, how long the in-pod agent gets to report the task's end before the agent
    /// concludes it never will.
    pub report_grace: Duration,
    /// The watchdog (`taskWatchdog.noUpdateMinutes`, `None`: off): how long a running pod's in-progress task may go
    /// without an update in ClearML. Compared against the agent's clock, so clock skew with the server counts.
    pub no_update_limit: Option<Duration>,
    /// `taskWatchdog.failTask`: fail a silent task (and delete its pod) rather than only say so.
    pub fail_stalled: bool,
}

impl Settings {
    /// The settings `run` uses: the values' delays and watchdog, evicted tasks requeued, 10 s for a last report.
    pub fn from_config(config: &AgentConfig) -> Self {
        Self {
            deletion_delay: config.completed_pod_deletion_delay,
            requeue_evicted: true,
            report_grace: Duration::from_secs(10),
            no_update_limit: config.task_watchdog.no_update,
            fail_stalled: config.task_watchdog.fail_task,
        }
    }
}

/// One thing to do about a pod and its task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write a status message to the (pending) task.
    Message(String),
    /// Fail the task with this reason (`status_reason`) and message.
    Fail {
        /// Short reason (`OOMKilled`, `ImagePullBackOff`, `Error`, ...).
        reason: String,
        /// What the ML user reads.
        message: String,
    },
    /// Put the task back at the front of its queue.
    Requeue {
        /// Why.
        message: String,
    },
    /// Delete the pod.
    DeletePod,
    /// Mark an aborted task `stopped` (its pod is gone, so no in-pod agent will).
    MarkStopped,
    /// The watchdog: ClearML has heard nothing from the running task for too long. Write `message` to the task;
    /// with `fail`, fail it instead (reason [`NO_UPDATE_REASON`], the same message; a `DeletePod` follows).
    Stalled {
        /// What the ML user reads.
        message: String,
        /// `taskWatchdog.failTask`.
        fail: bool,
    },
    /// A task the watchdog reported is heard from again (or is no longer running): forget the stall.
    Recovered,
}

/// A ClearML date (`2026-12-03T10:00:00.123000+00:00`); one without an offset is UTC, as the server stores dates.
pub fn clearml_time(text: &str) -> Option<Timestamp> {
    text.parse::<Timestamp>().ok().or_else(|| {
        let civil = text.parse::<k8s_openapi::jiff::civil::DateTime>().ok()?;
        k8s_openapi::jiff::tz::Offset::UTC.to_timestamp(civil).ok()
    })
}

/// How long ClearML has not heard from the task of this running pod, when that is past the watchdog's limit.
fn silence(
    pod: &Pod,
    task: Option<&TaskView>,
    memory: &Memory,
    settings: Settings,
    now: Timestamp,
) -> Option<Duration> {
    let limit = settings.no_update_limit?;
    let task = task?;
    let running = phase(pod) == "Running" && pod.metadata.deletion_timestamp.is_none();
    if !running || memory.settled || task.status != Some(TaskStatus::InProgress) {
        return None;
    }
    // A last update ahead of the agent's clock (skew) is no silence.
    let silent = Duration::try_from(now.duration_since(task.last_update?)).ok()?;
    (silent >= limit).then_some(silent)
}

/// A silence for the ML user: seconds under two minutes, whole minutes above.
fn span(silent: Duration) -> String {
    let secs = silent.as_secs();
    if secs < 120 {
        format!("{secs} s")
    } else {
        format!("{} min", secs / 60)
    }
}

/// The watchdog's limit in the minutes it was configured in (`30 min`, `0.1 min`).
fn minutes(limit: Duration) -> String {
    let text = format!("{:.2}", limit.as_secs_f64() / 60.0);
    format!("{} min", text.trim_end_matches('0').trim_end_matches('.'))
}

/// What the watchdog writes to a silent task.
pub fn stall_message(pod_name: &str, silent: Duration, limit: Duration) -> String {
    format!(
        "no update from the task for {} while pod {pod_name} runs (agent watchdog, limit {})",
        span(silent),
        minutes(limit)
    )
}

/// How long ago the pod finished, if it did.
fn finished_for(pod: &Pod, now: Timestamp) -> Option<Duration> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let finished = statuses
        .iter()
        .filter_map(|s| s.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0)
        .max()?;
    let elapsed = now.duration_since(finished);
    Some(Duration::from_secs(
        u64::try_from(elapsed.as_secs()).unwrap_or(0),
    ))
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// The task container's status (or the first container's).
fn task_status(pod: &Pod) -> Option<&ContainerStatus> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    statuses
        .iter()
        .find(|s| s.name == pod_template::TASK_CONTAINER_NAME)
        .or_else(|| statuses.first())
}

fn image(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| {
            s.containers
                .iter()
                .find(|c| c.name == pod_template::TASK_CONTAINER_NAME)
        })
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

/// The task container exited by itself (not OOM-killed or evicted) moments ago: the in-pod agent may still be
/// reporting the task's end.
fn awaiting_report(pod: &Pod, settings: Settings, now: Timestamp) -> bool {
    let reason =
        task_status(pod).and_then(|s| s.state.as_ref()?.terminated.as_ref()?.reason.clone());
    let killed = reason.as_deref() == Some("OOMKilled")
        || pod
            .status
            .as_ref()
            .and_then(|s| s.reason.as_deref())
            .is_some_and(|r| EVICTION_REASONS.contains(&r));
    !killed && finished_for(pod, now).is_some_and(|f| f < settings.report_grace)
}

/// Why a pending pod is pending, in words for the ML user, if Kubernetes said.
pub fn pending_reason(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    if let Some(condition) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
    {
        let reason = condition
            .reason
            .clone()
            .unwrap_or_else(|| "Unschedulable".into());
        return Some(match &condition.message {
            Some(message) => format!("{reason}: {message}"),
            None => reason,
        });
    }
    let waiting = task_status(pod)?.state.as_ref()?.waiting.as_ref()?;
    let reason = waiting.reason.clone()?;
    Some(match &waiting.message {
        Some(message) if !message.is_empty() => format!("{reason}: {message}"),
        _ => reason,
    })
}

/// Why a failed pod failed: `(reason, message)`.
pub fn failure(pod: &Pod) -> (String, String) {
    let status = pod.status.as_ref();
    if let Some(terminated) = task_status(pod).and_then(|s| s.state.as_ref()?.terminated.as_ref()) {
        let reason = terminated.reason.clone().unwrap_or_else(|| "Error".into());
        let mut message = if reason == "OOMKilled" {
            "the task container was killed for using more memory than its limit (OOMKilled)"
                .to_string()
        } else {
            format!(
                "the task container exited with code {} ({reason})",
                terminated.exit_code
            )
        };
        if let Some(detail) = terminated.message.as_deref().filter(|m| !m.is_empty()) {
            message.push_str(": ");
            message.push_str(detail);
        }
        return (reason, message);
    }
    let reason = status
        .and_then(|s| s.reason.clone())
        .unwrap_or_else(|| "Failed".into());
    let message = status.and_then(|s| s.message.clone()).map_or_else(
        || format!("the pod failed ({reason})"),
        |m| format!("the pod failed ({reason}): {m}"),
    );
    (reason, message)
}

/// Decide what to do about `pod`, whose task is `task` (`None`: the task no longer exists in ClearML).
pub fn decide(
    pod: &Pod,
    task: Option<&TaskView>,
    memory: &Memory,
    settings: Settings,
    now: Timestamp,
) -> Vec<Action> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let deleting = pod.metadata.deletion_timestamp.is_some();
    let live = task.is_some_and(TaskView::is_live) && !memory.settled;
    let mut actions = Vec::new();
    let silent = silence(pod, task, memory, settings, now);
    if memory.stalled && !memory.settled && silent.is_none() {
        actions.push(Action::Recovered);
    }

    if let Some(task) = task.filter(|t| t.is_aborted())
        && !matches!(phase(pod), "Succeeded" | "Failed")
    {
        if !deleting {
            actions.push(Action::DeletePod);
        }
        if task.status == Some(TaskStatus::InProgress) && !memory.settled {
            actions.push(Action::MarkStopped);
        }
        return actions;
    }
    match phase(pod) {
        "Pending" if !deleting => {
            if let Some(waiting) = task_status(pod).and_then(|s| s.state.as_ref()?.waiting.as_ref())
                && let Some(reason) = waiting
                    .reason
                    .as_deref()
                    .filter(|r| FATAL_WAITING.contains(r))
            {
                if live {
                    let detail = waiting.message.clone().filter(|m| !m.is_empty());
                    actions.push(Action::Fail {
                        reason: reason.to_string(),
                        message: format!(
                            "pod {name}: the container cannot start: {reason} for image {:?}{}",
                            image(pod),
                            detail.map(|d| format!(": {d}")).unwrap_or_default()
                        ),
                    });
                }
                actions.push(Action::DeletePod);
                return actions;
            }
            if live && let Some(reason) = pending_reason(pod) {
                let message = format!("pod {name} pending: {reason}");
                if memory.last_message.as_deref() != Some(message.as_str()) {
                    actions.push(Action::Message(message));
                }
            }
        }
        "Running" if !deleting => {
            if let (Some(silent), Some(limit)) = (silent, settings.no_update_limit) {
                if !memory.stalled {
                    actions.push(Action::Stalled {
                        message: stall_message(&name, silent, limit),
                        fail: settings.fail_stalled,
                    });
                    if settings.fail_stalled {
                        actions.push(Action::DeletePod);
                    }
                }
            } else if memory.stalled && memory.settled && settings.fail_stalled {
                // Failed by the watchdog, but deleting the pod failed: again.
                actions.push(Action::DeletePod);
            }
        }
        "Failed" | "Succeeded" if live && awaiting_report(pod, settings, now) => {}
        "Failed" => {
            let evicted = pod
                .status
                .as_ref()
                .and_then(|s| s.reason.as_deref())
                .is_some_and(|r| EVICTION_REASONS.contains(&r));
            if live {
                let (reason, message) = failure(pod);
                let message = format!("pod {name}: {message}");
                // Evicted or preempted before the task started: not the task's fault, give it back its place.
                let never_started = task.is_some_and(|t| t.status == Some(TaskStatus::Queued));
                if evicted && never_started && settings.requeue_evicted {
                    actions.push(Action::Requeue { message });
                } else {
                    actions.push(Action::Fail { reason, message });
                }
            }
            if !deleting && finished_for(pod, now).is_none_or(|f| f >= settings.deletion_delay) {
                actions.push(Action::DeletePod);
            }
        }
        "Succeeded" => {
            if live {
                // Exit 0 while ClearML still thinks the task is queued or running: the in-pod agent never reported
                // (it never ran, or was cut off). Say so rather than leave it running forever.
                actions.push(Action::Fail {
                    reason: "Completed".into(),
                    message: format!(
                        "pod {name} exited 0 but the task never reported its end to ClearML (the in-pod agent did \
                         not run, or lost its connection)"
                    ),
                });
            }
            if !deleting && finished_for(pod, now).is_none_or(|f| f >= settings.deletion_delay) {
                actions.push(Action::DeletePod);
            }
        }
        _ => {}
    }
    actions
}

/// The task's pod is gone (deleted by hand, node lost) while the agent still answers for the task.
pub fn vanished(pod_name: &str) -> Action {
    Action::Fail {
        reason: "PodDeleted".into(),
        message: format!(
            "pod {pod_name} was deleted before the task finished (deleted by hand, or its node was lost)"
        ),
    }
}

#[cfg(test)]
mod tests;
