//! Kubelet simulator: registers fake nodes, binds pods, advances pod status the way kwok does.
//!
//! A real kube-apiserver has no scheduler and no kubelets behind it in the tests, so pods would stay `Pending`
//! forever. This crate plays both parts for nodes it registers itself: it binds pending pods that fit (or marks them
//! `Unschedulable` with the scheduler's message) and takes bound pods through `Running` to `Succeeded` / `Failed`,
//! `OOMKilled` or `ImagePullBackOff`, steered by pod annotations.
//!
//! # Start here
//! - [`decide`]: the pure decision function (pod + nodes + time → next action) and the annotation contract.
//!   All behaviour lives there and in the pure modules it calls, unit-tested without a cluster:
//!   [`schedule`] (binding and the scheduler's messages), `status.rs` (the status a kubelet writes),
//!   [`config`] (nodes and settings).
//! - [`sim`]: the thin I/O loop ([`Simulator`]): node registration, one pod watch, actions.
//! - [`quantity`]: resource quantities for fit checks.
//! - `src/main.rs`: the `kubelet-sim` binary for the demo.
//!
//! ```no_run
//! # async fn t(client: kube::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use kubelet_sim::{NodeSpec, SimConfig, Simulator};
//! let config = SimConfig { nodes: vec![NodeSpec::new("gpu-0", "16", "64Gi", 2)?], ..SimConfig::default() };
//! let _sim = Simulator::new(client, config, Some("my-namespace".into())).spawn().await?; // runs until dropped
//! # Ok(()) }
//! ```

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
    Outcome, Process, PullFailure, RUN_SECONDS_ANNOTATION, SimConfig, Stage, TASK_ID_LABEL,
};
pub use sim::{SimError, SimHandle, Simulator};
