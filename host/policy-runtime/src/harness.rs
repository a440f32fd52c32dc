//! Golden cases for policies on the host: the engine behind `clearml-k8s-agent policy test` and the
//! `policy-testing` crate. The case format, the loader, the expected-error kinds and the BLESS rule are
//! [`policy_cases`]' (shared with the guests' native runner in `policy-kit`); this module evaluates a case on the
//! built component and maps the runtime's errors onto the case kinds.
//!
//! Every case is checked for: the expected result (an error's kind and text), a valid Pod (strict), and
//! determinism (evaluated twice, same outcome).

use std::fmt;
use std::time::Duration;

pub use policy_cases::{
    BlessError, Case, CaseError, ErrorKind, Expected, ExpectedError, Failure, Outcome, Verdict,
    bless_requested, load_cases, to_yaml, yaml_diff,
};
use serde_json::Value;

use crate::chain::run_step;
use crate::engine::{EvalContext, Policy};
use crate::error::{EvalError, EvalErrorKind};
use crate::task::TaskContext;

/// One case's result.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Case name.
    pub name: String,
    /// Verdict.
    pub verdict: Verdict,
    /// Time of the first evaluation.
    pub duration: Duration,
}

/// All results of a run.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// In case order.
    pub results: Vec<CaseResult>,
}

impl Summary {
    /// Cases that passed (or were blessed).
    pub fn passed(&self) -> usize {
        self.results
            .iter()
            .filter(|r| !matches!(r.verdict, Verdict::Fail(_)))
            .count()
    }
    /// Cases that failed.
    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} passed, {} failed", self.passed(), self.failed())
    }
}

/// The case kind of a runtime error and the message an expectation's text is looked for in.
pub fn failure(err: &EvalError) -> Failure {
    let (kind, message) = match &err.kind {
        EvalErrorKind::Rejected(m) => (ErrorKind::Reject, m.clone()),
        EvalErrorKind::InvalidConfig(m) => (ErrorKind::InvalidConfig, m.clone()),
        EvalErrorKind::Internal(m) => (ErrorKind::Internal, m.clone()),
        EvalErrorKind::Timeout { .. } => (ErrorKind::Timeout, err.kind.to_string()),
        EvalErrorKind::MemoryLimit { .. } => (ErrorKind::MemoryLimit, err.kind.to_string()),
        EvalErrorKind::Trap(m) => (ErrorKind::Trap, m.clone()),
        EvalErrorKind::BadOutput(m) => (ErrorKind::BadOutput, m.clone()),
        EvalErrorKind::InvalidPod(m) => (ErrorKind::InvalidPod, m.clone()),
        EvalErrorKind::BadInput(m) => (ErrorKind::BadInput, m.clone()),
    };
    Failure {
        kind,
        message,
        full: err.to_string(),
    }
}

/// Evaluate a case once, as the host does for a task: `validate-config` (as at load time), then `transform`, then
/// the strict Pod check.
pub fn evaluate(policy: &Policy, task: &TaskContext, case: &Case) -> Result<Value, EvalError> {
    let config = case.config.to_string();
    policy.validate_config(
        &config,
        EvalContext {
            queue: task.queue_for_messages(None),
            task_id: None,
        },
    )?;
    run_step(policy, &case.pod, task, &config, None).map(|(pod, _)| pod)
}

/// Evaluate a case twice (the second proves determinism), as [`policy_cases::judge`] wants it; also the time of
/// the first evaluation.
pub fn outcomes(policy: &Policy, case: &Case) -> (Outcome, Outcome, Duration) {
    let task = TaskContext::from(case.task.clone());
    let started = std::time::Instant::now();
    let first = evaluate(policy, &task, case).map_err(|e| failure(&e));
    let duration = started.elapsed();
    let second = evaluate(policy, &task, case).map_err(|e| failure(&e));
    (first, second, duration)
}

/// Run one case: evaluate twice, compare (or bless).
pub fn run_case(policy: &Policy, case: &Case, bless: bool) -> CaseResult {
    let (first, second, duration) = outcomes(policy, case);
    CaseResult {
        name: case.name.clone(),
        verdict: policy_cases::judge(case, &first, &second, bless),
        duration,
    }
}

/// Run every case.
pub fn run_cases(policy: &Policy, cases: &[Case], bless: bool) -> Summary {
    Summary {
        results: cases.iter().map(|c| run_case(policy, c, bless)).collect(),
    }
}
