//! # policy-runtime: the WebAssembly host for queue policies
//!
//! A queue policy is a WebAssembly component targeting the `clearml:queue-policy` world (`wit/`). This crate loads
//! such components and runs them safely and fast; the agent, the CLI harness and plugin authors' tests all go
//! through it.
//!
//! Ships: the pipeline's policy stage (clearml-api → pod-template → **policy-runtime** → agent → cli). The golden-case
//! harness and `policy bench` in here serve the CLI's `policy` commands and authors' tests.
//!
//! ## Start here
//! 1. [`PolicyEngine`] — one per process. Owns the wasmtime engines (epoch interruption, pooling allocator), the
//!    linker (WASI p2 with an empty context + the `host` interface) and the on-disk cache of precompiled components.
//! 2. [`PolicyEngine::load`] turns bytes into a [`Policy`]: verify the sha256 if one is pinned, check imports and
//!    exports against the allow-list ([`inspect`]), compile or load the precompiled artifact ([`cache`]), and
//!    pre-instantiate (`InstancePre`).
//! 3. [`Policy::transform`] / [`Policy::validate_config`] evaluate once, each in a **fresh `Store`** with an epoch
//!    deadline and a memory cap ([`Limits`]). Failures are typed ([`EvalError`]) and name the policy, queue and task.
//! 4. [`PolicyChain`] runs a pod through a queue's ordered policies, validating the pod after every step
//!    ([`pod::validate_pod`]) and recording an RFC 6902 patch per step for provenance.
//! 5. [`harness`] runs golden cases (`policy test`; the case format is `policy-cases`, shared with the guests),
//!    used by the CLI and by `policy-testing` for authors; [`bench`] measures a component (`policy bench`).
//!
//! Evaluation is synchronous and CPU-bound; async callers use [`PolicyEngine::run_blocking`], which runs it off the
//! reactor on a fixed set of worker threads ([`workers`]).

#![warn(missing_docs, clippy::disallowed_methods)]

pub mod bench;
mod bindings;
pub mod cache;
pub mod chain;
pub mod engine;
pub mod error;
pub mod harness;
pub mod inspect;
pub mod pod;
mod state;
pub mod task;
pub mod workers;

pub use chain::{ChainOutcome, ChainStep, PolicyChain, StepProvenance};
pub use engine::{EngineConfig, Limits, Policy, PolicyEngine};
pub use error::{EvalError, EvalErrorKind, LoadError};
pub use task::TaskContext;

/// Version of the `clearml:queue-policy` WIT package this host serves (any `0.1.x` component is accepted).
pub const WIT_PACKAGE_VERSION: &str = "0.1.0";
