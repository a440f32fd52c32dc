//! Render → policy chain → guard → provenance: how a task becomes the pod the agent would submit, without
//! submitting it. The one path `run` ([`crate::submit`]), `render` and the tests share. The chains run off the
//! reactor; a dispatch round's tasks are rendered together ([`render_round`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use clearml_api::Task;
use k8s_openapi::api::core::v1::Pod;
use policy_runtime::{ChainOutcome, EvalError, PolicyChain, PolicyEngine, TaskContext};

use crate::config::AgentConfig;
use crate::guard::{self, Expected};
use crate::metrics::Metrics;
use crate::policies::{PolicySet, provenance};
use crate::render::{self, ANNOTATION_POLICIES, Identity};
use crate::startup::ResolvedQueue;

/// What the chain produced for a task, ready to submit; also what `render` prints.
#[derive(Debug)]
pub struct Rendered {
    /// The final pod, guarded and annotated.
    pub pod: Pod,
    /// The chain's outcome (per-step provenance and patches).
    pub outcome: ChainOutcome,
}

/// Why a task could not be turned into a pod. The message is what the ML user reads.
#[derive(Debug, thiserror::Error)]
pub enum RenderFailure {
    /// Rendering the base pod failed.
    #[error(transparent)]
    Render(#[from] render::RenderError),
    /// A policy failed or rejected the task.
    #[error(transparent)]
    Policy(EvalError),
    /// The chain changed something the agent owns.
    #[error("queue {queue}: {}changed what the agent owns: {violation}", blamed.as_ref().map(|p| format!("policy `{p}` ")).unwrap_or_default())]
    Guard {
        /// The queue.
        queue: String,
        /// The policy that made the change, when known.
        blamed: Option<String>,
        /// What was changed.
        violation: guard::Violation,
    },
    /// The queue has no chain (cannot happen for a configured queue).
    #[error("queue {0} has no policy chain")]
    NoChain(String),
    /// The base pod did not read back as a typed Pod (a bug in the agent's render; the chain checked it already).
    #[error("queue {queue}: the agent's base pod is not a valid Pod: {reason}")]
    BasePod {
        /// The queue.
        queue: String,
        /// What serde said.
        reason: String,
    },
}

impl RenderFailure {
    /// A stable label for the `tasks_failed` metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Render(_) => "render",
            Self::Policy(e) => e.kind.metric_label(),
            Self::Guard { .. } => "guard",
            Self::NoChain(_) => "no_chain",
            Self::BasePod { .. } => "base_pod",
        }
    }
}

/// The policy-facing view of a ClearML task.
pub fn task_context(task: &Task, queue: &ResolvedQueue, user: Option<String>) -> TaskContext {
    let mut properties = BTreeMap::new();
    for (section, params) in task.hyperparams.iter().flatten() {
        for (name, param) in params {
            if let Some(value) = &param.value {
                properties.insert(format!("{section}/{name}"), value.clone());
            }
        }
    }
    TaskContext {
        id: task.id.clone(),
        name: task.name.clone(),
        project: task.project.clone(),
        user: user.or_else(|| task.user.clone()),
        queue_id: queue.id.clone(),
        queue_name: queue.config.name.clone(),
        tags: task.tags.iter().chain(&task.system_tags).cloned().collect(),
        image: task.image().map(str::to_string),
        properties,
    }
}

/// What rendering a pod needs besides the task: the values, who the agent is, the queue's chain.
#[derive(Clone, Copy)]
pub struct RenderContext<'a> {
    /// The values.
    pub config: &'a AgentConfig,
    /// Who the agent is.
    pub identity: &'a Identity,
    /// Every queue's chain.
    pub policies: &'a PolicySet,
    /// The engine that runs them.
    pub engine: &'a PolicyEngine,
}

/// Render → chain → guard → provenance, for `task` on `queue`: the one path `run` and `render` share. CPU-bound:
/// the chain runs off the reactor.
pub async fn render_task(
    context: RenderContext<'_>,
    queue: &ResolvedQueue,
    task: TaskContext,
) -> Result<Rendered, RenderFailure> {
    let name = queue.config.name.clone();
    render_round(context, vec![(queue.clone(), task)])
        .await
        .pop()
        .unwrap_or(Err(RenderFailure::NoChain(name)))
}

/// A base pod and the chain it goes through, ready to run.
struct ChainInput {
    queue: ResolvedQueue,
    chain: Arc<PolicyChain>,
    base: serde_json::Value,
    task: TaskContext,
}

/// [`render_task`] for the tasks of one dispatch round, in their order. Their chains run back to back, one job per
/// policy worker, instead of one job each: a chain that starts on a worker fresh from other work (the rest of the
/// agent, the API server on the same cores) finds the runtime's and the components' code cold in the CPU caches,
/// which made it ~1.5x slower than the next one run straight after it (BENCHMARKS.md, session 5).
pub async fn render_round(
    context: RenderContext<'_>,
    items: Vec<(ResolvedQueue, TaskContext)>,
) -> Vec<Result<Rendered, RenderFailure>> {
    if items.is_empty() {
        return Vec::new();
    }
    let workers = context.engine.evaluations_at_once().min(items.len());
    // Tasks go round-robin to one job per worker; one that failed before its chain passes through untouched.
    let mut jobs: Vec<Vec<_>> = (0..workers).map(|_| Vec::new()).collect();
    for (index, (queue, task)) in items.into_iter().enumerate() {
        jobs[index % workers].push((index, chain_input(context, queue, task)));
    }
    let runs = jobs.into_iter().map(|job| {
        context.engine.run_blocking(move || {
            job.into_iter()
                .map(|(index, input)| {
                    let ran = input.map(|input| {
                        let queue = Some(input.queue.config.name.as_str());
                        let outcome = input.chain.run(&input.base, &input.task, queue);
                        (input, outcome)
                    });
                    (index, ran)
                })
                .collect::<Vec<_>>()
        })
    });
    let mut done: Vec<_> = futures::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect();
    done.sort_unstable_by_key(|(index, _)| *index);
    done.into_iter()
        .map(|(_, ran)| ran.and_then(|(input, outcome)| finish(context, input, outcome)))
        .collect()
}

/// The base pod of `task` on `queue` and the queue's chain.
fn chain_input(
    context: RenderContext<'_>,
    queue: ResolvedQueue,
    task: TaskContext,
) -> Result<ChainInput, RenderFailure> {
    let base = render::base_pod(
        context.config,
        &queue.config,
        &queue.id,
        &task,
        context.identity,
    )?;
    let chain = context
        .policies
        .chain(&queue.config.name)
        .ok_or_else(|| RenderFailure::NoChain(queue.config.name.clone()))?;
    Ok(ChainInput {
        queue,
        chain,
        base,
        task,
    })
}

/// Guard and annotate a chain's outcome.
fn finish(
    context: RenderContext<'_>,
    input: ChainInput,
    outcome: Result<ChainOutcome, EvalError>,
) -> Result<Rendered, RenderFailure> {
    let queue = &input.queue;
    let outcome = outcome.map_err(RenderFailure::Policy)?;
    let base: Pod = serde_json::from_value(input.base).map_err(|e| {
        // The agent's own base pod always deserialises; the chain already checked it strictly.
        RenderFailure::BasePod {
            queue: queue.config.name.clone(),
            reason: e.to_string(),
        }
    })?;
    let secrets = guard::secret_values(&context.config.credentials);
    let expected = Expected {
        base: &base,
        use_image_entrypoint: queue.config.settings.use_image_entrypoint,
        secrets: &secrets,
    };
    if let Err(violation) = guard::check(&outcome.typed, &expected) {
        return Err(RenderFailure::Guard {
            queue: queue.config.name.clone(),
            blamed: guard::blame(&outcome, &violation),
            violation,
        });
    }
    let mut pod = outcome.typed.clone();
    pod.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(ANNOTATION_POLICIES.to_string(), provenance(&input.chain));
    Ok(Rendered { pod, outcome })
}

pub(crate) fn record_policy_times(metrics: &Metrics, outcome: &ChainOutcome) {
    for step in &outcome.steps {
        metrics
            .policy_seconds
            .get_or_create(&crate::metrics::PolicyLabels {
                policy: step.policy.clone(),
            })
            .observe(step.duration.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;
    use crate::fixtures;

    /// A round's results stay with their tasks, whatever fails among them.
    #[tokio::test]
    async fn a_round_renders_each_task_in_its_place() {
        let config = AgentConfig::from_yaml(
            r#"
clearml: {agentk8sglueKey: ACCESSKEY-FIXTURE, agentk8sglueSecret: secret-key-fixture-value}
agentk8sglue:
  apiServerUrlReference: http://clearml-apiserver:8008
  queues:
    red:
      templateOverrides: {labels: {team: red}}
    strict:
      policies:
        - {plugin: guardrails, config: {allowedRegistries: [nvcr.io/nvidia]}}
"#,
            &Overrides::default(),
        )
        .unwrap();
        let engine = PolicyEngine::new(policy_runtime::EngineConfig::default()).unwrap();
        let policies = PolicySet::load(&engine, &config).unwrap();
        let identity = fixtures::identity();
        let context = RenderContext {
            config: &config,
            identity: &identity,
            policies: &policies,
            engine: &engine,
        };
        let queue = |name: &str| ResolvedQueue {
            config: config
                .queues
                .iter()
                .find(|q| q.name == name)
                .unwrap()
                .clone(),
            id: format!("{name}-id"),
        };
        let items: Vec<_> = [
            ("a1", "red"),
            ("b2", "strict"),
            ("c3", "red"),
            ("d4", "red"),
        ]
        .into_iter()
        .map(|(id, name)| (queue(name), TaskContext::for_test(id, name)))
        .collect();
        let results = render_round(context, items).await;
        assert_eq!(results.len(), 4);
        for (result, id) in results.iter().zip(["a1", "b2", "c3", "d4"]) {
            match result {
                Ok(rendered) => {
                    assert_eq!(rendered.pod.metadata.name, Some(render::pod_name(id)));
                    assert_eq!(
                        rendered.pod.metadata.labels.as_ref().unwrap()["team"],
                        "red"
                    );
                }
                Err(RenderFailure::Policy(err)) => {
                    assert_eq!(id, "b2");
                    assert_eq!(err.task_id.as_deref(), Some("b2"));
                    assert_eq!(err.policy, "guardrails");
                }
                Err(other) => panic!("{id}: {other}"),
            }
        }
        assert!(results[1].is_err() && results.iter().filter(|r| r.is_ok()).count() == 3);
        // An empty round renders nothing.
        assert!(render_round(context, Vec::new()).await.is_empty());
    }
}
