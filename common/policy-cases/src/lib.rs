//! # policy-cases: golden cases for queue policies, one format for every runner
//!
//! A test and authoring tool, not part of the agent: it sits beside the pipeline (clearml-api → pod-template →
//! policy-runtime → agent → cli) and serves the two places that run a policy's `cases/`:
//! - the host harness (`policy-runtime::harness`: `clearml-k8s-agent policy test`, the `policy-testing` crate),
//!   which runs the built component;
//! - the guests' native runner (`policy-kit::testing`, `cargo test` in `plugins/`), which runs the plugin's Rust
//!   logic without a wasm build.
//!
//! Both load a case with [`Case::load`], judge it with [`judge`] and decide blessing with [`bless_requested`], so a
//! case means the same thing wherever it runs. It builds natively and for `wasm32-wasip2`.
//!
//! ## A case folder
//! ```text
//! cases/<name>/task.yaml            the task context (see [`task`]): id, name, project, user, queue-name, tags, ...
//!             /pod.yaml             the input v1/Pod
//!             /config.yaml          the policy's config for the queue (optional: absent means `null`)
//!             /expected.yaml        the output Pod ...
//!             /expected-error.txt   ... or `<kind>: <text>`: the error's kind and a text its message contains
//! ```
//! Exactly one expectation per case (none fails until blessed, both is an error). See [`ExpectedError`] for the
//! kinds. Blessing (`BLESS=1`, or a runner's `--bless`) rewrites the expectation from what the policy did, and is
//! refused when `CI` is set: a CI run must check the expectations, never write them.

mod bless;
mod case;
mod expected;
#[cfg(feature = "libtest")]
mod libtest;
pub mod task;

pub use bless::{BlessError, bless_requested};
pub use case::{
    Case, CaseError, Expected, Failure, Outcome, Verdict, judge, load_cases, to_yaml, yaml_diff,
};
pub use expected::{ErrorKind, ExpectedError, ExpectedErrorProblem};
#[cfg(feature = "libtest")]
pub use libtest::run_as_tests;
pub use task::{CaseTask, TaskError};
