//! A queue's ordered policies, run as one pipeline step with provenance.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

use crate::engine::{EvalContext, Policy};
use crate::error::{EvalError, EvalErrorKind};
use crate::pod::{PodError, parse_pod, validate_pod};
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
    /// The final pod, typed: the result of the strict Pod check, handed back so callers (the agent's guard and
    /// submit) never parse it again.
    pub typed: Pod,
    /// One entry per step, in order.
    pub steps: Vec<StepProvenance>,
    /// The pod JSON each step received (`documents[0]` is the chain's input), as the policies exchanged it, then the
    /// final pod's. Kept so the pod as a `Value` and the patches are built only when someone asks (dry-run output,
    /// blame), not on every task's hot path.
    documents: Vec<String>,
}

impl ChainOutcome {
    /// The final pod as the last policy returned it.
    pub fn pod(&self) -> Value {
        self.document(self.steps.len())
            .unwrap_or_else(|| serde_json::to_value(&self.typed).unwrap_or_default())
    }

    fn document(&self, index: usize) -> Option<Value> {
        serde_json::from_str(self.documents.get(index)?).ok()
    }

    /// RFC 6902 patch from step `index`'s input pod to its output pod.
    pub fn patch(&self, index: usize) -> Option<json_patch::Patch> {
        Some(json_patch::diff(
            &self.document(index)?,
            &self.document(index + 1)?,
        ))
    }

    /// RFC 6902 patch from the chain's input pod to its final pod.
    pub fn total_patch(&self) -> json_patch::Patch {
        match (self.document(0), self.document(self.steps.len())) {
            (Some(input), Some(output)) => json_patch::diff(&input, &output),
            _ => json_patch::Patch(Vec::new()),
        }
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
    /// Each policy's output JSON goes straight to the next policy, unchecked; the final pod gets the strict Pod check
    /// once, parsed straight into the typed Pod. Only when something fails are the intermediate pods looked at, to
    /// blame the first step that broke the pod: the first whose output is not JSON, else the first whose output is
    /// not a valid Pod. A step that fails on a document an earlier step broke is not blamed for it. Every error names
    /// the step's policy.
    pub fn run(
        &self,
        pod: &Value,
        task: &TaskContext,
        queue: Option<&str>,
    ) -> Result<ChainOutcome, EvalError> {
        let input = serde_json::to_string(pod).map_err(|e| {
            step_error(
                "(chain input)",
                queue,
                task,
                EvalErrorKind::BadInput(e.to_string()),
            )
        })?;
        let mut steps = Vec::with_capacity(self.steps.len());
        let mut documents = Vec::with_capacity(self.steps.len() + 1);
        documents.push(input);
        for step in &self.steps {
            let current = documents.last().map_or("", String::as_str);
            match step
                .policy
                .transform(current, task, &step.config_json, queue)
            {
                Ok(evaluation) => {
                    steps.push(StepProvenance {
                        policy: step.policy.name().to_string(),
                        sha256: step.policy.sha256().to_string(),
                        duration: evaluation.duration,
                        logs: evaluation.logs,
                    });
                    documents.push(evaluation.value);
                }
                Err(err) => {
                    return Err(self
                        .blame_not_json(&documents[1..], task, queue)
                        .unwrap_or(err));
                }
            }
        }
        match parse_pod(documents.last().map_or("", String::as_str)) {
            Ok(typed) => Ok(ChainOutcome {
                typed,
                steps,
                documents,
            }),
            Err(final_error) => Err(self.blame(&documents, final_error, task, queue)),
        }
    }

    /// The error for the first step whose output (`outputs[i]` is step `i`'s) is not JSON, if any.
    fn blame_not_json(
        &self,
        outputs: &[String],
        task: &TaskContext,
        queue: Option<&str>,
    ) -> Option<EvalError> {
        outputs.iter().zip(&self.steps).find_map(|(output, step)| {
            let not_json = serde_json::from_str::<serde::de::IgnoredAny>(output).err()?;
            Some(step_error(
                step.policy.name(),
                queue,
                task,
                EvalErrorKind::BadOutput(not_json.to_string()),
            ))
        })
    }

    /// The error for a final pod that failed the strict check with `final_error`, blamed on the first step that
    /// broke the pod (`documents` as in [`ChainOutcome`]); the chain's input itself when there are no steps.
    fn blame(
        &self,
        documents: &[String],
        final_error: PodError,
        task: &TaskContext,
        queue: Option<&str>,
    ) -> EvalError {
        let Some(last) = self.steps.last() else {
            return step_error(
                "(chain input)",
                queue,
                task,
                EvalErrorKind::InvalidPod(final_error.to_string()),
            );
        };
        let outputs = documents.get(1..).unwrap_or_default();
        if let Some(err) = self.blame_not_json(outputs, task, queue) {
            return err;
        }
        let (policy, pod_error) = outputs
            .iter()
            .zip(&self.steps)
            .find_map(|(output, step)| Some((&step.policy, parse_pod(output).err()?)))
            .unwrap_or((&last.policy, final_error));
        step_error(
            policy.name(),
            queue,
            task,
            EvalErrorKind::InvalidPod(pod_error.to_string()),
        )
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
