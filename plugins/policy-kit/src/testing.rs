//! Native golden-case runner: the same `cases/<name>/` folders the host's `policy test` harness runs against the
//! built component, run here against the plugin's Rust logic so `cargo test` catches a regression without a wasm
//! build. The case format, the loader and the BLESS rule are `policy-cases`' (shared with the host), so a case
//! means the same thing in both places: an `expected-error.txt` states the kind (`reject`, `invalid-config`,
//! `internal`) and a text, and both are checked.
//!
//! Each case is its own test: a plugin has a `harness = false` test target whose `main` is [`main`]:
//! ```no_run
//! # struct MyPolicy;
//! # impl policy_kit::Policy for MyPolicy {
//! #     type Config = ();
//! #     fn parse_config(_: &serde_json::Value) -> Result<(), policy_kit::PolicyError> { Ok(()) }
//! #     fn transform(p: serde_json::Value, _: &policy_kit::Task, _: &(), _: &mut dyn policy_kit::Logger)
//! #         -> Result<serde_json::Value, policy_kit::PolicyError> { Ok(p) }
//! # }
//! // tests/golden.rs, with `[[test]] name = "golden" harness = false` in Cargo.toml
//! fn main() -> std::process::ExitCode {
//!     policy_kit::testing::main::<MyPolicy>(policy_kit::testing::cases_dir(env!("CARGO_MANIFEST_DIR")))
//! }
//! ```
//! `BLESS=1 cargo test` rewrites the expectations of failing cases (refused under `CI`; check the diff by eye
//! before committing it).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub use policy_cases::{Case, CaseTask, ErrorKind, Failure, Outcome};
use serde_json::Value;

use crate::{Policy, PolicyError, Task, VecLogger};

impl From<CaseTask> for Task {
    fn from(task: CaseTask) -> Self {
        Self {
            id: task.id,
            name: task.name,
            project: task.project,
            user: task.user,
            queue_id: task.queue_id,
            queue_name: task.queue_name,
            tags: task.tags,
            image: task.image,
            // Sorted by key, as the host hands them to a component.
            properties: task.properties.into_iter().collect(),
        }
    }
}

/// The case kind and message of a policy's error.
pub fn failure(err: &PolicyError) -> Failure {
    let (kind, message) = match err {
        PolicyError::Reject(m) => (ErrorKind::Reject, m),
        PolicyError::InvalidConfig(m) => (ErrorKind::InvalidConfig, m),
        PolicyError::Internal(m) => (ErrorKind::Internal, m),
    };
    Failure {
        kind,
        message: message.clone(),
        full: err.to_string(),
    }
}

/// Evaluate a case as the host does: `validate-config` first (as at load time), then the transform, on the JSON
/// strings that cross the WIT boundary.
pub fn evaluate<P: Policy>(case: &Case) -> Outcome {
    let task = Task::from(case.task.clone());
    let config_json = case.config.to_string();
    let pod_json = case.pod.to_string();
    let run = || -> Result<Value, PolicyError> {
        crate::parse_config_str::<P>(&config_json)?;
        let out =
            crate::transform_str::<P>(&pod_json, &task, &config_json, &mut VecLogger::default())?;
        serde_json::from_str(&out).map_err(|e| PolicyError::Internal(e.to_string()))
    };
    run().map_err(|e| failure(&e))
}

/// The plugin's `cases/` folder in the checkout under test: cargo's `CARGO_MANIFEST_DIR` at run time, else
/// `compiled_manifest_dir` (pass `env!("CARGO_MANIFEST_DIR")`). Clones share the target directory and cargo does
/// not rebuild a crate whose checkout moved, so the compile-time path alone can name another clone's cases.
pub fn cases_dir(compiled_manifest_dir: &str) -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| PathBuf::from(compiled_manifest_dir), PathBuf::from)
        .join("cases")
}

/// The `main` of a plugin's `harness = false` golden test: every case under `cases_dir` is its own test. A plugin
/// without cases fails.
pub fn main<P: Policy + 'static>(cases_dir: impl AsRef<Path>) -> ExitCode {
    policy_cases::run_as_tests(
        cases_dir.as_ref(),
        |name| std::env::var(name).ok(),
        |case| (evaluate::<P>(case), evaluate::<P>(case)),
    )
}
