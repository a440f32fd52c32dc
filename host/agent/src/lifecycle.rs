//! What a pod's state means for its ClearML task: the lifecycle's decision core, a pure function of the pod, the
//! task and what the agent already said.
//!
//! The loop around it ([`crate::watch`]) reads the pod watch's cache and the tasks' statuses (one batched
//! `tasks.get_all`), calls [`decide`] per pod and carries out the [`Action`]s. Everything the ML user sees comes from
//! here: why a task is pending, the real reason it failed (written *before* the pod is cleaned up, unlike the Python
//! glue), an abort in the UI stopping the pod.

use std::time::Duration;

use clearml_api::TaskStatus;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

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

/// The part of a task the lifecycle needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskView {
    /// Status.
    pub status: Option<TaskStatus>,
    /// Status message (`stopping` while an abort is under way).
    pub status_message: Option<String>,
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
}

/// How long ago the pod finished, if it did.
fn finished_for(pod: &Pod, now: k8s_openapi::jiff::Timestamp) -> Option<Duration> {
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
fn awaiting_report(pod: &Pod, settings: Settings, now: k8s_openapi::jiff::Timestamp) -> bool {
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
    now: k8s_openapi::jiff::Timestamp,
) -> Vec<Action> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let deleting = pod.metadata.deletion_timestamp.is_some();
    let live = task.is_some_and(TaskView::is_live) && !memory.settled;
    let mut actions = Vec::new();

    if let Some(task) = task.filter(|t| t.is_aborted())
        && !matches!(phase(pod), "Succeeded" | "Failed")
    {
        let mut actions = if deleting {
            vec![]
        } else {
            vec![Action::DeletePod]
        };
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
