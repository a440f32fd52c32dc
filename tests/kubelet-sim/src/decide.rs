//! The simulator's brain, with no I/O: given a pod, the simulated nodes, the time and what the kubelet observed,
//! what happens next.
//!
//! [`decide`] returns a [`Decision`]: one [`Action`] and the Kubernetes Events that step produces; the I/O loop in
//! [`crate::sim`] carries it out and feeds the resulting pod back in. Every step is driven by the pod's state (and,
//! for a running pod, its run time), so a test sees the same sequence every time. Each step mirrors what a
//! component of a real cluster would do:
//! - unbound pod → the scheduler: [`Action::Bind`] to the first node that fits its requests and node selector
//!   (event `Scheduled`), or [`Action::Unschedulable`] with the scheduler's message (`0/2 nodes are available: 2
//!   Insufficient nvidia.com/gpu.`, event `FailedScheduling`);
//! - bound `Pending` pod → the kubelet starting it: `Running` (events `Pulling`, `Pulled`, `Created`, `Started`);
//!   or waiting on its image (`ErrImagePull` → `ImagePullBackOff`, `InvalidImageName`); or waiting with
//!   `CreateContainerConfigError` when its env refers to a Secret or key that does not exist; or evicted / preempted
//!   before it started;
//! - `Running` pod → after its run time, `Succeeded` or `Failed` (exit code, `Error` / `OOMKilled`, `Evicted`,
//!   `Preempted`); a pod running the in-pod agent ([`Process`]) ends when that process exits;
//! - pod with a `deletionTimestamp` → force delete (grace period 0), like kwok's `delete` stage (event `Killing`).
//!
//! Tests steer the outcome with annotations ([`OUTCOME_ANNOTATION`], [`EXIT_CODE_ANNOTATION`],
//! [`RUN_SECONDS_ANNOTATION`], [`SILENT_AFTER_ANNOTATION`]); changing the outcome of a running `hang` pod ends it on
//! the next event.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::{
    api::core::v1::{Container, Pod},
    jiff::Timestamp,
};
use serde_json::Value;

pub use crate::config::{DecideError, GPU, InPodAgent, NodeSpec, SimConfig};
pub use crate::events::PodEvent;
pub use crate::pod_view::started_at;
pub use crate::pull::invalid_image_reference;
pub use crate::schedule::{DEFAULT_SCHEDULER, Usage, pod_requests, unschedulable_status};
use crate::{
    events,
    pod_view::{annotation, containers, label, waiting_of},
    pull::image_pull,
    schedule::schedule,
    status::{
        Termination, Waiting, eviction_message, running_status, terminal_status, waiting_status,
    },
};

/// How the pod ends: `succeed` (default), `fail`, `oom`, `hang`, `image-pull-backoff`, `err-image-pull`,
/// `invalid-image-name`, `evicted`, `evicted-pending`, `preempted`, `preempted-pending` (see [`Outcome`]).
pub const OUTCOME_ANNOTATION: &str = "sim.clearml-k8s-agent/outcome";
/// Exit code for `fail` (default 1).
pub const EXIT_CODE_ANNOTATION: &str = "sim.clearml-k8s-agent/exit-code";
/// Seconds from Running to the outcome (default: [`SimConfig::default_run`]).
pub const RUN_SECONDS_ANNOTATION: &str = "sim.clearml-k8s-agent/run-seconds";
/// Seconds after the task started from which its in-pod agent goes silent: no more `workers.status_report`, so
/// ClearML hears nothing from the task (its `last_update` stops), while the pod keeps running and the agent still
/// notices an abort (reading a task is no update). `0`: silent right after its first report. Default: never.
pub const SILENT_AFTER_ANNOTATION: &str = "sim.clearml-k8s-agent/silent-after-seconds";
/// The label that marks a pod as running a ClearML task (its value is the task id).
pub const TASK_ID_LABEL: &str = "clearml-task-id";

/// How a simulated pod ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0, `Completed`, phase `Succeeded`.
    Succeed,
    /// Exit code (default 1), `Error`, phase `Failed`.
    Fail(i32),
    /// Exit 137, `OOMKilled`, phase `Failed`.
    Oom,
    /// Stays `Running` until the annotation changes or the pod is deleted.
    Hang,
    /// Never starts: the image does not pull.
    ImagePull(PullFailure),
    /// The kubelet evicts the pod (phase `Failed`, reason `Evicted`), before it starts or at the end of its run.
    Evicted(Stage),
    /// The scheduler preempts the pod (phase `Failed`, reason `Preempted`), before it starts or at the end of its run.
    Preempted(Stage),
}

/// How an image fails to pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullFailure {
    /// `ErrImagePull`, then `ImagePullBackOff` on the next step (what a missing image or tag does).
    BackOff,
    /// `ErrImagePull` and stays there.
    ErrImagePull,
    /// `InvalidImageName`: the reference does not parse (also detected from the image itself).
    InvalidImageName,
}

/// When a disruption happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Bound to a node, containers not started yet.
    Pending,
    /// Running, at the end of its run time.
    Running,
}

/// The in-pod agent process of a pod's task container, as the I/O loop last heard from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Process {
    /// No in-pod agent: the simulator decides the exit from the outcome and the run time.
    #[default]
    Simulated,
    /// Logging in, taking the task out of its queue, marking it started.
    Starting,
    /// Running the task: its run time counts; an abort in ClearML ends it.
    Working,
    /// Exited with this code (the container ends with it).
    Exited(i32),
}

/// What the kubelet knows about a pod beyond its object: the result of building its containers' environment, and
/// its in-pod agent process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeletView {
    /// Container name → why its environment cannot be built (`secret "x" not found`), as the kubelet says it.
    pub config_errors: BTreeMap<String, String>,
    /// The task container's in-pod agent process.
    pub process: Process,
}

/// What to do with a pod next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Nothing (not ours, terminal, hanging, or already in the target state).
    None,
    /// POST `pods/{name}/binding` to this node.
    Bind(String),
    /// Set `PodScheduled=False, reason=Unschedulable` with this message (strategic merge patch of the status).
    Unschedulable(String),
    /// Strategic merge patch of `pods/{name}/status`.
    PatchStatus(Value),
    /// Delete with grace period 0 (after clearing finalizers).
    ForceDelete,
    /// Look again after this long (the pod is running its simulated time).
    RequeueAfter(Duration),
    /// The task's work is done: tell the in-pod agent process to finish with this exit code (it reports the
    /// result to ClearML, then exits; the pod ends when it has).
    FinishProcess(i32),
}

/// One step for a pod: the action and the events it produces (created once the action succeeded).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// What to do.
    pub action: Action,
    /// Events about the pod this step produces.
    pub events: Vec<PodEvent>,
    /// The containers start with this step and the task container runs the in-pod agent: start its process.
    pub start_process: Option<ProcessStart>,
}

/// How a pod's in-pod agent process behaves, from the pod's outcome and annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessStart {
    /// It notices an abort in ClearML; `false` for a `hang` pod (a wedged container).
    pub watch_aborts: bool,
    /// It stops reporting to ClearML this long after the task started ([`SILENT_AFTER_ANNOTATION`]).
    pub silent_after: Option<Duration>,
}

impl From<Action> for Decision {
    fn from(action: Action) -> Self {
        Self {
            action,
            events: Vec::new(),
            start_process: None,
        }
    }
}

impl Decision {
    pub(crate) fn with_events(action: Action, events: Vec<PodEvent>) -> Self {
        Self {
            action,
            events,
            start_process: None,
        }
    }
}

/// The next step for `pod`, given the simulated nodes, their current usage, the time and the kubelet's view.
pub fn decide(
    pod: &Pod,
    config: &SimConfig,
    usage: &Usage,
    now: Timestamp,
    kubelet: &KubeletView,
) -> Decision {
    let node_name = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
    let ours = node_name.is_some_and(|n| config.nodes.iter().any(|node| node.name == n));
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending");
    if pod.metadata.deletion_timestamp.is_some() {
        // Unbound pods are removed by the apiserver at once; bound ones wait for "their kubelet", which is us.
        if !ours {
            return Action::None.into();
        }
        let killing = if phase == "Running" {
            containers(pod).iter().map(events::killing).collect()
        } else {
            Vec::new()
        };
        return Decision::with_events(Action::ForceDelete, killing);
    }
    if phase == "Succeeded" || phase == "Failed" {
        return Action::None.into();
    }
    let Some(node) = node_name else {
        return match schedule(pod, config, usage) {
            Action::Bind(node) => {
                let event = events::scheduled(pod, &node);
                Decision::with_events(Action::Bind(node), vec![event])
            }
            Action::Unschedulable(m) => {
                let event = events::failed_scheduling(&m);
                Decision::with_events(Action::Unschedulable(m), vec![event])
            }
            other => other.into(),
        };
    };
    if !ours {
        return Action::None.into();
    }
    let outcome = match outcome(pod, config) {
        Ok(o) => o,
        Err(e) => return fail_loudly(pod, now, &e),
    };
    match phase {
        "Pending" => start(pod, node, config, outcome, kubelet, now),
        "Running" => {
            if let Process::Exited(code) = kubelet.process {
                return Action::PatchStatus(terminal_status(
                    pod,
                    Termination::Exited(code),
                    now,
                    None,
                ))
                .into();
            }
            if outcome == Outcome::Hang || kubelet.process == Process::Starting {
                // Hanging, or the in-pod agent has not started the task yet (its run begins when it has).
                return Action::None.into();
            }
            let run = match run_time(pod, config) {
                Ok(r) => r,
                Err(e) => return fail_loudly(pod, now, &e),
            };
            let started = started_at(pod).unwrap_or(now);
            let elapsed = now.duration_since(started).unsigned_abs();
            if elapsed < run {
                return Action::RequeueAfter(run.saturating_sub(elapsed)).into();
            }
            end_of_run(pod, node, outcome, kubelet.process, now)
        }
        _ => Action::None.into(),
    }
}

/// A typo in a test annotation should be loud: fail the pod and say why in its status.
fn fail_loudly(pod: &Pod, now: Timestamp, e: &dyn std::fmt::Display) -> Decision {
    Action::PatchStatus(terminal_status(
        pod,
        Termination::Exited(1),
        now,
        Some(&e.to_string()),
    ))
    .into()
}

/// A bound `Pending` pod: pull the images, build the containers' environment, start them (or fail trying).
fn start(
    pod: &Pod,
    node: &str,
    config: &SimConfig,
    outcome: Outcome,
    kubelet: &KubeletView,
    now: Timestamp,
) -> Decision {
    let pull = match outcome {
        Outcome::ImagePull(kind) => Some(kind),
        _ => None,
    };
    if let Some(kind) = pull {
        return image_pull(pod, node, config, kind, now);
    }
    match outcome {
        Outcome::Evicted(Stage::Pending) => {
            let patch = terminal_status(pod, Termination::Evicted, now, None);
            return Decision::with_events(
                Action::PatchStatus(patch),
                vec![events::evicted(eviction_message(pod))],
            );
        }
        Outcome::Preempted(Stage::Pending) => {
            let patch = terminal_status(pod, Termination::Preempted, now, None);
            return Decision::with_events(
                Action::PatchStatus(patch),
                vec![events::preempted(pod, node)],
            );
        }
        _ => {}
    }
    if !kubelet.config_errors.is_empty() {
        return config_error(pod, node, &kubelet.config_errors, now);
    }
    let mut evs = Vec::new();
    for c in containers(pod) {
        evs.extend(events::pulled(c));
        evs.extend(events::started(c));
    }
    let mut decision =
        Decision::with_events(Action::PatchStatus(running_status(pod, node, now)), evs);
    let runs_agent = config.in_pod_agent.is_some() && label(pod, TASK_ID_LABEL).is_some();
    if runs_agent {
        let silent_after = match seconds(pod, SILENT_AFTER_ANNOTATION) {
            Ok(s) => s,
            Err(e) => return fail_loudly(pod, now, &e),
        };
        decision.start_process = Some(ProcessStart {
            watch_aborts: outcome != Outcome::Hang,
            silent_after,
        });
    }
    decision
}

/// A container whose env refers to a Secret, ConfigMap or key that does not exist: `CreateContainerConfigError`.
fn config_error(
    pod: &Pod,
    node: &str,
    errors: &BTreeMap<String, String>,
    now: Timestamp,
) -> Decision {
    let blocked = |c: &Container| {
        errors.get(&c.name).map(|m| Waiting {
            reason: "CreateContainerConfigError",
            message: m.clone(),
        })
    };
    let unchanged = containers(pod).iter().all(|c| {
        blocked(c).is_none_or(|w| waiting_of(pod, &c.name) == Some((w.reason, w.message.as_str())))
    });
    if unchanged {
        return Action::None.into();
    }
    let mut evs = Vec::new();
    for c in containers(pod) {
        if let Some(w) = blocked(c) {
            evs.extend(events::pulled(c));
            evs.push(events::failed(c, format!("Error: {}", w.message)));
        }
    }
    Decision::with_events(
        Action::PatchStatus(waiting_status(pod, node, now, blocked)),
        evs,
    )
}

/// The run time of a running pod is over: end it as its outcome says.
fn end_of_run(
    pod: &Pod,
    node: &str,
    outcome: Outcome,
    process: Process,
    now: Timestamp,
) -> Decision {
    let terminate = |end: Termination, evs: Vec<PodEvent>| {
        Decision::with_events(
            Action::PatchStatus(terminal_status(pod, end, now, None)),
            evs,
        )
    };
    let killing = || containers(pod).iter().map(events::killing);
    match outcome {
        Outcome::Oom => terminate(
            Termination::OomKilled,
            containers(pod)
                .first()
                .map(events::oom_killed)
                .into_iter()
                .collect(),
        ),
        Outcome::Evicted(_) => {
            let mut evs = vec![events::evicted(eviction_message(pod))];
            evs.extend(killing());
            terminate(Termination::Evicted, evs)
        }
        Outcome::Preempted(_) => {
            let mut evs = vec![events::preempted(pod, node)];
            evs.extend(killing());
            terminate(Termination::Preempted, evs)
        }
        Outcome::Succeed | Outcome::Fail(_) | Outcome::Hang | Outcome::ImagePull(_) => {
            // A pull failure annotated after the pod started cannot happen any more: the images are there.
            let code = match outcome {
                Outcome::Fail(code) => code,
                _ => 0,
            };
            match process {
                Process::Working => Action::FinishProcess(code).into(),
                _ => terminate(Termination::Exited(code), Vec::new()),
            }
        }
    }
}

/// The outcome requested by the pod's annotations (and the image pull pattern).
pub fn outcome(pod: &Pod, config: &SimConfig) -> Result<Outcome, DecideError> {
    let invalid = containers(pod)
        .iter()
        .any(|c| invalid_image_reference(c.image.as_deref().unwrap_or_default()));
    if invalid {
        return Ok(Outcome::ImagePull(PullFailure::InvalidImageName));
    }
    let images_fail = config.image_pull_error.as_ref().is_some_and(|re| {
        containers(pod)
            .iter()
            .any(|c| c.image.as_deref().is_some_and(|image| re.is_match(image)))
    });
    if images_fail {
        return Ok(Outcome::ImagePull(PullFailure::BackOff));
    }
    let value = annotation(pod, OUTCOME_ANNOTATION).unwrap_or("succeed");
    Ok(match value {
        "succeed" | "success" | "succeeded" => Outcome::Succeed,
        "fail" | "failed" | "error" => {
            let code = match annotation(pod, EXIT_CODE_ANNOTATION) {
                Some(v) => v.parse::<i32>().map_err(|_| DecideError::Annotation {
                    key: EXIT_CODE_ANNOTATION,
                    value: v.to_owned(),
                    reason: "not an integer",
                })?,
                None => 1,
            };
            Outcome::Fail(code)
        }
        "oom" | "oomkilled" | "OOMKilled" => Outcome::Oom,
        "hang" => Outcome::Hang,
        "image-pull-backoff" | "ImagePullBackOff" => Outcome::ImagePull(PullFailure::BackOff),
        "err-image-pull" | "ErrImagePull" => Outcome::ImagePull(PullFailure::ErrImagePull),
        "invalid-image-name" | "InvalidImageName" => {
            Outcome::ImagePull(PullFailure::InvalidImageName)
        }
        "evicted" | "Evicted" => Outcome::Evicted(Stage::Running),
        "evicted-pending" => Outcome::Evicted(Stage::Pending),
        "preempted" | "Preempted" => Outcome::Preempted(Stage::Running),
        "preempted-pending" => Outcome::Preempted(Stage::Pending),
        other => {
            return Err(DecideError::Annotation {
                key: OUTCOME_ANNOTATION,
                value: other.to_owned(),
                reason: "expected succeed, fail, oom, hang, image-pull-backoff, err-image-pull, \
                         invalid-image-name, evicted, evicted-pending, preempted or preempted-pending",
            });
        }
    })
}

fn run_time(pod: &Pod, config: &SimConfig) -> Result<Duration, DecideError> {
    Ok(seconds(pod, RUN_SECONDS_ANNOTATION)?.unwrap_or(config.default_run))
}

/// An annotation holding a non-negative number of seconds, if the pod has it.
fn seconds(pod: &Pod, key: &'static str) -> Result<Option<Duration>, DecideError> {
    annotation(pod, key)
        .map(|v| {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
                .ok_or(DecideError::Annotation {
                    key,
                    value: v.to_owned(),
                    reason: "not a non-negative number",
                })
        })
        .transpose()
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
