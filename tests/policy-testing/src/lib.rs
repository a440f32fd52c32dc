//! # policy-testing: golden cases in your own `cargo test`
//!
//! Plugin authors add this crate as a dev-dependency of a small host-side test crate and assert their cases with
//! the very runtime the agent uses (same limits, same strict Pod check, same determinism check):
//!
//! ```no_run
//! #[test]
//! fn golden_cases() {
//!     policy_testing::assert_cases("target/wasm32-wasip2/release/my_policy.wasm", "cases");
//! }
//! ```
//! `BLESS=1 cargo test` rewrites the expectations. For one-off checks, [`PolicyUnderTest`] evaluates a single
//! pod/task/config and returns the output pod or the typed error.

use std::path::Path;

use policy_runtime::harness::{self, Verdict};
use policy_runtime::{EngineConfig, Policy, PolicyEngine};
pub use policy_runtime::{EvalError, EvalErrorKind, Limits, TaskContext};
use serde_json::Value;

/// Why a policy could not be put under test.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// The engine could not be built.
    #[error(transparent)]
    Engine(#[from] policy_runtime::engine::EngineError),
    /// The component was refused.
    #[error(transparent)]
    Load(#[from] policy_runtime::LoadError),
    /// The cases could not be read.
    #[error(transparent)]
    Cases(#[from] harness::CaseError),
}

/// A loaded policy, ready to evaluate.
pub struct PolicyUnderTest {
    // Keeps the engine (and its epoch ticker) alive as long as the policy.
    _engine: PolicyEngine,
    policy: Policy,
}

impl PolicyUnderTest {
    /// Load a component with default limits (100 ms, 64 MiB), without the on-disk cache.
    pub fn load(wasm: impl AsRef<Path>) -> Result<Self, TestError> {
        Self::load_with_limits(wasm, Limits::default())
    }

    /// Load a component with the given limits.
    pub fn load_with_limits(wasm: impl AsRef<Path>, limits: Limits) -> Result<Self, TestError> {
        let engine = PolicyEngine::new(EngineConfig::default())?;
        let policy = engine.load_file(wasm.as_ref(), None, limits)?;
        Ok(Self {
            _engine: engine,
            policy,
        })
    }

    /// Validate `config`, then transform `pod` for `task`; the output is checked to be a valid Pod.
    pub fn transform(
        &self,
        pod: &Value,
        task: &TaskContext,
        config: &Value,
    ) -> Result<Value, EvalError> {
        let config = config.to_string();
        self.policy.validate_config(
            &config,
            policy_runtime::engine::EvalContext {
                queue: Some(task.queue_name.as_str()),
                task_id: None,
            },
        )?;
        policy_runtime::chain::run_step(&self.policy, pod, task, &config, None).map(|(pod, _)| pod)
    }

    /// Run every case under `cases_dir`; returns a report of failures (empty when all pass).
    pub fn run_cases(&self, cases_dir: impl AsRef<Path>) -> Result<Vec<String>, TestError> {
        let cases = harness::load_cases(cases_dir.as_ref())?;
        let summary = harness::run_cases(&self.policy, &cases, harness::bless_from_env());
        Ok(summary
            .results
            .into_iter()
            .filter_map(|r| match r.verdict {
                Verdict::Fail(why) => Some(format!("case `{}` failed:\n{why}", r.name)),
                Verdict::Pass | Verdict::Blessed => None,
            })
            .collect())
    }
}

/// Assert that every golden case under `cases_dir` passes for the component at `wasm`; panics with a readable
/// report (diffs included) otherwise. Honors `BLESS=1`.
#[track_caller]
pub fn assert_cases(wasm: impl AsRef<Path>, cases_dir: impl AsRef<Path>) {
    let wasm = wasm.as_ref();
    let policy = match PolicyUnderTest::load(wasm) {
        Ok(p) => p,
        Err(e) => panic!("cannot load {}: {e}", wasm.display()),
    };
    match policy.run_cases(cases_dir.as_ref()) {
        Ok(failures) if failures.is_empty() => {}
        Ok(failures) => panic!(
            "{} golden case(s) failed:\n\n{}",
            failures.len(),
            failures.join("\n\n")
        ),
        Err(e) => panic!("{e}"),
    }
}
