//! A queue's ordered policies, run as one pipeline step with provenance.

use std::time::Duration;

use serde_json::Value;

use crate::engine::{EvalContext, Policy};
use crate::error::{EvalError, EvalErrorKind};
use crate::pod::validate_pod;
use crate::state::LogRecord;
use crate::task::TaskContext;

/// One policy bound to a queue with its configuration.
#[derive(Debug, Clone)]
pub struct ChainStep {
    /// The loaded policy.
    pub policy: Policy,
    /// Its configuration for this queue, as JSON (`null` when none is given).
    pub config_json: String,
}

/// What one step changed, for provenance, guards and dry-run output.
#[derive(Debug, Clone)]
pub struct StepProvenance {
    /// Policy name.
    pub policy: String,
    /// Component sha256.
    pub sha256: String,
    /// RFC 6902 patch from the step's input pod to its output pod.
    pub patch: json_patch::Patch,
    /// Evaluation time.
    pub duration: Duration,
    /// What the policy logged.
    pub logs: Vec<LogRecord>,
}

/// The final pod and how it came to be.
#[derive(Debug, Clone)]
pub struct ChainOutcome {
    /// The pod after the last policy.
    pub pod: Value,
    /// One entry per step, in order.
    pub steps: Vec<StepProvenance>,
}

/// An ordered list of policies for a queue. Immutable once built; share it behind an `Arc`.
#[derive(Debug, Clone, Default)]
pub struct PolicyChain {
    steps: Vec<ChainStep>,
}

impl PolicyChain {
    /// A chain of these steps, run in order.
    pub fn new(steps: Vec<ChainStep>) -> Self {
        Self { steps }
    }

    /// The steps.
    pub fn steps(&self) -> &[ChainStep] {
        &self.steps
    }

    /// Check every step's configuration (`validate-config`), as done when a policy set is loaded.
    pub fn validate_configs(&self, queue: Option<&str>) -> Result<(), EvalError> {
        for step in &self.steps {
            step.policy.validate_config(
                &step.config_json,
                EvalContext {
                    queue,
                    task_id: None,
                },
            )?;
        }
        Ok(())
    }

    /// Run `pod` through every step. Each output must be JSON and a valid Pod, or the chain stops with an error
    /// naming the step's policy.
    pub fn run(
        &self,
        pod: &Value,
        task: &TaskContext,
        queue: Option<&str>,
    ) -> Result<ChainOutcome, EvalError> {
        let mut current = pod.clone();
        let mut steps = Vec::with_capacity(self.steps.len());
        for step in &self.steps {
            let (next, evaluation) =
                run_step(&step.policy, &current, task, &step.config_json, queue)?;
            steps.push(StepProvenance {
                policy: step.policy.name().to_string(),
                sha256: step.policy.sha256().to_string(),
                patch: json_patch::diff(&current, &next),
                duration: evaluation.duration,
                logs: evaluation.logs,
            });
            current = next;
        }
        Ok(ChainOutcome {
            pod: current,
            steps,
        })
    }
}

/// One checked evaluation: serialise the pod, transform, parse, validate.
pub fn run_step(
    policy: &Policy,
    pod: &Value,
    task: &TaskContext,
    config_json: &str,
    queue: Option<&str>,
) -> Result<(Value, crate::engine::Evaluation<String>), EvalError> {
    let fail = |kind| EvalError {
        policy: policy.name().to_string(),
        queue: queue
            .or(Some(task.queue_name.as_str()))
            .filter(|q| !q.is_empty())
            .map(str::to_string),
        task_id: Some(task.id.clone()).filter(|t| !t.is_empty()),
        kind,
    };
    let pod_json =
        serde_json::to_string(pod).map_err(|e| fail(EvalErrorKind::BadInput(e.to_string())))?;
    let evaluation = policy.transform(&pod_json, task, config_json, queue)?;
    let next: Value = serde_json::from_str(&evaluation.value)
        .map_err(|e| fail(EvalErrorKind::BadOutput(e.to_string())))?;
    validate_pod(&next).map_err(|e| fail(EvalErrorKind::InvalidPod(e.to_string())))?;
    Ok((next, evaluation))
}
