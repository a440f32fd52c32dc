//! # policy-testing: golden cases in your own `cargo test`
//!
//! Plugin authors add this crate as a dev-dependency of a small host-side test crate and assert their cases with
//! the very runtime the agent uses (same limits, same strict Pod check, same determinism check):
//!
//! A test and authoring tool (not shipped): it puts the agent's runtime (policy-runtime) under an author's
//! `cargo test`. Each case as its own test, in a test target with `harness = false`:
//! ```no_run
//! // tests/golden.rs, with `[[test]] name = "golden" harness = false` in Cargo.toml
//! fn main() -> std::process::ExitCode {
//!     policy_testing::cases_main("target/wasm32-wasip2/release/my_policy.wasm", "cases")
//! }
//! ```
//! or all cases in one `#[test]` with [`assert_cases`]. `BLESS=1 cargo test` rewrites the expectations (refused
//! under `CI`). The case format (task.yaml, pod.yaml, config.yaml, expected.yaml or expected-error.txt as
//! `<kind>: <text>`) is `policy-cases`', the same for every runner. For one-off checks, [`PolicyUnderTest`]
//! evaluates a single pod/task/config and returns the output pod or the typed error.

use std::path::Path;
use std::process::ExitCode;

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
    /// Blessing was asked for under CI.
    #[error(transparent)]
    Bless(#[from] harness::BlessError),
}

/// A loaded policy, ready to evaluate.
pub struct PolicyUnderTest {
    // Keeps the engine (and its epoch ticker) alive as long as the policy.
    _engine: PolicyEngine,
    policy: Policy,
}

impl PolicyUnderTest {
    /// Load a component with the runtime's default limits ([`Limits::default`]), without the on-disk cache.
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
                queue: task.queue_for_messages(None),
                task_id: None,
            },
        )?;
        policy_runtime::chain::run_step(&self.policy, pod, task, &config, None).map(|(pod, _)| pod)
    }

    /// Run every case under `cases_dir` (blessing mismatches when `bless`); returns a report of failures (empty
    /// when all pass).
    pub fn run_cases(
        &self,
        cases_dir: impl AsRef<Path>,
        bless: bool,
    ) -> Result<Vec<String>, TestError> {
        let cases = harness::load_cases(cases_dir.as_ref())?;
        let summary = harness::run_cases(&self.policy, &cases, bless);
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

/// `BLESS` and `CI` from the process environment: a test is a binary, the edge where the environment is read.
fn env_text(name: &str) -> Option<String> {
    cache_paths::process_env(name).map(|v| v.to_string_lossy().into_owned())
}

/// Assert that every golden case under `cases_dir` passes for the component at `wasm`; panics with a readable
/// report (diffs included) otherwise. Honors `BLESS=1` (refused under `CI`).
#[track_caller]
pub fn assert_cases(wasm: impl AsRef<Path>, cases_dir: impl AsRef<Path>) {
    let wasm = wasm.as_ref();
    let bless = harness::bless_requested(false, env_text).unwrap_or_else(|e| panic!("{e}"));
    let policy = match PolicyUnderTest::load(wasm) {
        Ok(p) => p,
        Err(e) => panic!("cannot load {}: {e}", wasm.display()),
    };
    match policy.run_cases(cases_dir.as_ref(), bless) {
        Ok(failures) if failures.is_empty() => {}
        Ok(failures) => panic!(
            "{} golden case(s) failed:\n\n{}",
            failures.len(),
            failures.join("\n\n")
        ),
        Err(e) => panic!("{e}"),
    }
}

/// The `main` of a `harness = false` test target: every case under `cases_dir` is its own test, run against the
/// component at `wasm` (cargo test lists and filters them by case name). A component that cannot be loaded fails
/// every case with the reason.
pub fn cases_main(wasm: impl AsRef<Path>, cases_dir: impl AsRef<Path>) -> ExitCode {
    let wasm = wasm.as_ref().to_path_buf();
    let loaded =
        PolicyUnderTest::load(&wasm).map_err(|e| format!("cannot load {}: {e}", wasm.display()));
    policy_cases::run_as_tests(cases_dir.as_ref(), env_text, move |case| match &loaded {
        Ok(policy) => {
            let (first, second, _) = harness::outcomes(&policy.policy, case);
            (first, second)
        }
        Err(reason) => {
            let failure = harness::Failure {
                kind: harness::ErrorKind::Internal,
                message: reason.clone(),
                full: reason.clone(),
            };
            (Err(failure.clone()), Err(failure))
        }
    })
}
