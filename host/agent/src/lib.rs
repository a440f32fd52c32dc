//! # agent: the ClearML → Kubernetes dispatcher behind `clearml-k8s-agent run`
//!
//! Ships in the binary (`host/cli`). The pipeline: `clearml-api` → `pod-template` → `policy-runtime` → **agent** →
//! `cli`.
//!
//! ## Start here
//! - [`config`]: the values file (the Enterprise chart's shape), parsed strictly.
//! - [`run`]: prepare (policies, before any connection), start up, then the dispatch loop and the worker report.
//! - [`dispatch`]: which queues to pop now, from capacity and queue state (the pure decision core).
//! - [`submit`]: one task from pop to pod: read → [`pipeline`] ([`render`] → policy chain → [`guard`]) → pending
//!   queue ([`handover`]) → create.
//! - [`kube`]: the credentials Secret, idempotent pod creation, the pod watch and capacity counts.
//! - [`startup`]: queue resolution, the pending queue, worker registration.
//! - [`policies`]: each queue's chain, loaded and validated at start-up.
//! - [`lifecycle`] (pure) and [`follow`] (its loop): pod states → task status, messages, cleanup, aborts.
//! - [`pod_events`]: the pods' Kubernetes Events appended to their tasks' console logs.
//! - [`recover`]: start-up recovery of submissions a crash interrupted.
//! - [`health`]: whether ClearML and the Kubernetes API answer: what `/readyz` says, what gates the pops.
//! - [`leader`]: two replicas, one dispatcher (a coordination.k8s.io Lease).
//! - [`metrics`]: Prometheus metrics, `/healthz`, `/readyz`.

#![warn(missing_docs)]

pub mod config;
pub mod dispatch;
pub mod follow;
pub mod guard;
pub mod handover;
pub mod health;
pub mod kube;
pub mod leader;
pub mod lifecycle;
pub mod metrics;
pub mod pipeline;
pub mod pod_events;
pub mod policies;
pub mod recover;
pub mod render;
pub mod run;
pub mod startup;
pub mod submit;

#[cfg(test)]
mod fixtures;
