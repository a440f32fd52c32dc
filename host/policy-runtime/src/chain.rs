//! A queue's ordered policies, run as one pipeline step with provenance.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
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

/// What one step did, for provenance, guards and dry-run output.
#[derive(Debug, Clone)]
pub struct StepProvenance {
    /// Policy name.
    pub policy: String,
    /// Component sha256.
    pub sha256: String,
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
    /// The same pod, typed: the result of the strict Pod check, handed back so callers (the agent's guard and
    /// submit) never parse it again.
    pub typed: Pod,
    /// One entry per step, in order.
    pub steps: Vec<StepProvenance>,
    /// The pod JSON each step received (`inputs[0]` is the chain's input), as the policies exchanged it. Kept so
    /// patches are computed only when someone asks (dry-run output, provenance annotations), not on every task's
    /// hot path.
    inputs: Vec<String>,
}

impl ChainOutcome {
    /// RFC 6902 patch from step `index`'s input pod to its output pod.
    pub fn patch(&self, index: usize) -> Option<json_patch::Patch> {
        let input: Value = serde_json::from_str(self.inputs.get(index)?).ok()?;
        let output = match self.inputs.get(index + 1) {
            Some(next) => serde_json::from_str(next).ok()?,
            None => self.pod.clone(),
        };
        Some(json_patch::diff(&input, &output))
    }

    /// RFC 6902 patch from the chain's input pod to its final pod.
    pub fn total_patch(&self) -> json_patch::Patch {
        self.inputs
            .first()
            .and_then(|input| serde_json::from_str::<Value>(input).ok())
            .map_or_else(
                || json_patch::Patch(Vec::new()),
                |input| json_patch::diff(&input, &self.pod),
            )
    }
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

    /// Run `pod` through every step and return the final pod.
    ///
    /// Each policy's output JSON goes straight to the next policy: the host only checks that it is JSON (a scan
    /// that builds nothing), parses once at the end, and runs the strict Pod check once, on the final pod. Only
    /// when that fails are the intermediate pods checked, to blame the first step that produced an invalid one.
    /// Every error names the step's policy.
    pub fn run(
        &self,
        pod: &Value,
        task: &TaskContext,
        queue: Option<&str>,
    ) -> Result<ChainOutcome, EvalError> {
        let error = |policy: &Policy, kind| step_error(policy.name(), queue, task, kind);
        let mut current = serde_json::to_string(pod).map_err(|e| {
            step_error(
                "(chain input)",
                queue,
                task,
                EvalErrorKind::BadInput(e.to_string()),
            )
        })?;
        let mut steps = Vec::with_capacity(self.steps.len());
        let mut inputs = Vec::with_capacity(self.steps.len());
        for step in &self.steps {
            let evaluation = step
                .policy
                .transform(&current, task, &step.config_json, queue)?;
            serde_json::from_str::<serde::de::IgnoredAny>(&evaluation.value)
                .map_err(|e| error(&step.policy, EvalErrorKind::BadOutput(e.to_string())))?;
            steps.push(StepProvenance {
                policy: step.policy.name().to_string(),
                sha256: step.policy.sha256().to_string(),
                duration: evaluation.duration,
                logs: evaluation.logs,
            });
            inputs.push(std::mem::replace(&mut current, evaluation.value));
        }
        let Some(last) = self.steps.last() else {
            // No policies: the input is the final pod, and it gets the same strict check.
            let typed = validate_pod(pod).map_err(|e| {
                step_error(
                    "(chain input)",
                    queue,
                    task,
                    EvalErrorKind::InvalidPod(e.to_string()),
                )
            })?;
            return Ok(ChainOutcome {
                pod: pod.clone(),
                typed,
                steps,
                inputs,
            });
        };
        let final_pod: Value = serde_json::from_str(&current)
            .map_err(|e| error(&last.policy, EvalErrorKind::BadOutput(e.to_string())))?;
        let typed = match validate_pod(&final_pod) {
            Ok(typed) => typed,
            Err(final_error) => {
                // Outputs in order: inputs[1..] then the final pod. Blame the first invalid one.
                let blamed = inputs
                    .iter()
                    .skip(1)
                    .enumerate()
                    .find_map(|(i, out)| {
                        let out: Value = serde_json::from_str(out).ok()?;
                        validate_pod(&out).err().map(|e| (i, e))
                    })
                    .and_then(|(i, e)| self.steps.get(i).map(|s| (&s.policy, e)))
                    .unwrap_or((&last.policy, final_error));
                return Err(error(
                    blamed.0,
                    EvalErrorKind::InvalidPod(blamed.1.to_string()),
                ));
            }
        };
        Ok(ChainOutcome {
            pod: final_pod,
            typed,
            steps,
            inputs,
        })
    }
}

/// An error of the step run by `policy` (a name), for `task` on `queue` (default: the task's queue).
fn step_error(
    policy: &str,
    queue: Option<&str>,
    task: &TaskContext,
    kind: EvalErrorKind,
) -> EvalError {
    EvalError {
        policy: policy.to_string(),
        queue: task.queue_for_messages(queue).map(str::to_string),
        task_id: Some(task.id.clone()).filter(|t| !t.is_empty()),
        kind,
    }
}

/// One checked evaluation: serialise the pod, transform, parse, validate as a Pod.
pub fn run_step(
    policy: &Policy,
    pod: &Value,
    task: &TaskContext,
    config_json: &str,
    queue: Option<&str>,
) -> Result<(Value, crate::engine::Evaluation<String>), EvalError> {
    let fail = |kind| step_error(policy.name(), queue, task, kind);
    let pod_json =
        serde_json::to_string(pod).map_err(|e| fail(EvalErrorKind::BadInput(e.to_string())))?;
    let evaluation = policy.transform(&pod_json, task, config_json, queue)?;
    let next: Value = serde_json::from_str(&evaluation.value)
        .map_err(|e| fail(EvalErrorKind::BadOutput(e.to_string())))?;
    validate_pod(&next).map_err(|e| fail(EvalErrorKind::InvalidPod(e.to_string())))?;
    Ok((next, evaluation))
}
