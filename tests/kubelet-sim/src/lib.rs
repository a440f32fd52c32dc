//! Kubelet simulator (a test double, not shipped): registers fake nodes, binds pods, advances pod status the way
//! kwok does, and optionally plays the stock in-pod ClearML agent in the agent's pods.
//!
//! A real kube-apiserver has no scheduler and no kubelets behind it in the tests, so pods would stay `Pending`
//! forever. This crate plays both parts for nodes it registers itself: it binds pending pods that fit (or marks them
//! `Unschedulable` with the scheduler's message), builds their containers' environment from Secrets and ConfigMaps,
//! and takes bound pods through `Running` to `Succeeded` / `Failed`, steered by pod annotations. It writes the core/v1
//! Events a scheduler and kubelet would (`Scheduled`, `FailedScheduling`, `Pulling`, `Pulled`, `Failed`, `BackOff`,
//! `InspectFailed`, `Created`, `Started`, `Killing`, `OOMKilling`, `Evicted`, `Preempted`), each before the status
//! change it explains.
//!
//! # Annotations (on the pod)
//! | annotation | values |
//! | --- | --- |
//! | `sim.clearml-k8s-agent/outcome` ([`OUTCOME_ANNOTATION`]) | `succeed` (default); `fail` (exit code below, reason `Error`); `oom` (exit 137, `OOMKilled`); `hang` (Running until the annotation changes or the pod is deleted); `image-pull-backoff` (`ErrImagePull`, then `ImagePullBackOff`); `err-image-pull` (stays `ErrImagePull`); `invalid-image-name`; `evicted` / `preempted` (phase `Failed`, reason `Evicted` / `Preempted`, at the end of the run); `evicted-pending` / `preempted-pending` (the same before the containers start) |
//! | `sim.clearml-k8s-agent/exit-code` ([`EXIT_CODE_ANNOTATION`]) | exit code for `fail` (default 1) |
//! | `sim.clearml-k8s-agent/run-seconds` ([`RUN_SECONDS_ANNOTATION`]) | seconds from Running (with the in-pod agent: from the task's start) to the outcome; default [`SimConfig::default_run`] |
//! | `sim.clearml-k8s-agent/silent-after-seconds` ([`SILENT_AFTER_ANNOTATION`]) | with the in-pod agent: seconds after the task's start from which it sends ClearML nothing more (no status reports) while the pod keeps running; default never |
//!
//! Without an annotation, an image matching [`SimConfig::image_pull_error`] fails to pull, and an image reference
//! that does not parse (upper case in the repository, whitespace) is `InvalidImageName`. A container whose env
//! refers to a Secret, ConfigMap or key that does not exist stays waiting with `CreateContainerConfigError` and the
//! kubelet's message (`secret "x" not found`, `couldn't find key k in Secret ns/x`).
//!
//! Every step follows from the pod's state; only the run time is a clock. A test that wants full control uses
//! `hang` and changes the annotation (to `succeed`, `fail`, `oom`, ...) when it wants the pod to end.
//!
//! # The in-pod agent ([`SimConfig::in_pod_agent`], binary flag `--in-pod-agent`)
//! For pods labelled `clearml-task-id` ([`TASK_ID_LABEL`]), the task container (`clearml-task`, else the first)
//! runs what `clearml-agent execute --full-monitoring --require-queue --id <task>` does ([`in_pod`]): with
//! `CLEARML_API_HOST` and the `secretKeyRef`-resolved `CLEARML_API_ACCESS_KEY` / `CLEARML_API_SECRET_KEY` from the
//! pod's env it logs in, `tasks.dequeue {new_status: in_progress}` (a task no longer queued: exit 1, nothing else),
//! `tasks.started`, reports its worker, and when the run is over `tasks.completed` (exit 0) or `tasks.failed`
//! (`worker execution exit code N`); the pod then ends with that code. An abort in ClearML (`stopping`) →
//! `tasks.stopped`, exit 0. `oom`, `evicted`, `preempted` and deleted pods are killed and report nothing at the
//! end; image-pull and config-error pods never start it; a `hang` pod's agent never notices an abort.
//!
//! # Start here
//! - [`decide`]: the pure decision function (pod + nodes + time + what the kubelet observed → action and events).
//!   All behaviour lives there and in the pure modules it calls, unit-tested without a cluster:
//!   [`schedule`] (binding and the scheduler's messages), `pull.rs` (image pull failures), `status.rs` (the status a
//!   kubelet writes), [`events`] (the Events), [`config`] (nodes and settings), [`mod@env`] (building a container's
//!   environment).
//! - [`sim`]: the thin I/O loop ([`Simulator`]): node registration, one pod watch, Secret reads, in-pod processes,
//!   actions. [`in_pod`]: the in-pod agent process.
//! - [`quantity`]: resource quantities for fit checks.
//! - `src/main.rs`: the `kubelet-sim` binary for the demo (`--node`, `--namespace`, `--run-seconds`,
//!   `--image-pull-error`, `--in-pod-agent`, `--abort-poll-seconds`, `--no-events`).
//!
//! ```no_run
//! # async fn t(client: kube::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use kubelet_sim::{InPodAgent, NodeSpec, SimConfig, Simulator};
//! let config = SimConfig {
//!     nodes: vec![NodeSpec::new("gpu-0", "16", "64Gi", 2)?],
//!     in_pod_agent: Some(InPodAgent::default()),
//!     ..SimConfig::default()
//! };
//! let _sim = Simulator::new(client, config, Some("my-namespace".into())).spawn().await?; // runs until dropped
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod config;
pub mod decide;
pub mod env;
pub mod events;
pub mod in_pod;
mod kube_io;
mod pod_view;
mod pull;
pub mod quantity;
pub mod schedule;
pub mod sim;
mod status;
#[cfg(test)]
mod test_support;

pub use decide::{
    Action, Decision, EXIT_CODE_ANNOTATION, InPodAgent, KubeletView, NodeSpec, OUTCOME_ANNOTATION,
    Outcome, Process, ProcessStart, PullFailure, RUN_SECONDS_ANNOTATION, SILENT_AFTER_ANNOTATION,
    SimConfig, Stage, TASK_ID_LABEL,
};
pub use sim::{SimError, SimHandle, Simulator};
