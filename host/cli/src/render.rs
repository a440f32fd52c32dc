//! `clearml-k8s-agent render`: print the pod the agent would submit for a task, and each policy's changes, without
//! submitting anything. Goes through the same `agent::submit::render_task` as `run`.

use std::path::PathBuf;
use std::process::ExitCode;

use agent::startup::ResolvedQueue;
use agent::submit::{self, RenderContext};
use anyhow::Context as _;
use policy_runtime::TaskContext;

/// Arguments of `clearml-k8s-agent render`.
#[derive(clap::Args, Debug)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["task_id", "task"]))]
pub struct RenderArgs {
    /// The values file.
    #[arg(long)]
    pub config: PathBuf,
    /// The queue (a key of agentk8sglue.queues).
    #[arg(long)]
    pub queue: String,
    /// Render this ClearML task (read from the server named in the values).
    #[arg(long)]
    pub task_id: Option<String>,
    /// Render the task described in this YAML file (the harness's task.yaml format), offline.
    #[arg(long)]
    pub task: Option<PathBuf>,
    /// Namespace written into the pod.
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// The agent's identity, as `run` takes it.
    #[command(flatten)]
    pub identity: crate::run::IdentityArgs,
}

pub fn run(args: RenderArgs) -> anyhow::Result<ExitCode> {
    let prepared = match crate::run::prepare(&args.config) {
        Ok(prepared) => prepared,
        Err(code) => return Ok(code),
    };
    let Some(queue) = prepared
        .config
        .queues
        .iter()
        .find(|q| q.name == args.queue)
        .cloned()
    else {
        eprintln!(
            "error: --queue {}: not a queue of {} (queues: {})",
            args.queue,
            args.config.display(),
            prepared
                .config
                .queues
                .iter()
                .map(|q| q.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(ExitCode::from(crate::run::EXIT_CONFIG));
    };
    let identity = args.identity.identity(args.namespace.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let (resolved, task) = match (&args.task_id, &args.task) {
            (Some(task_id), _) => {
                let client = agent::run::clearml_client(&prepared.config)?;
                let queue_id = agent::startup::find_queue(&client, &queue.name)
                    .await?
                    .unwrap_or_else(|| queue.name.clone());
                let resolved = ResolvedQueue {
                    config: queue.clone(),
                    id: queue_id,
                };
                let fetched = client.tasks_get_by_id(task_id).await?;
                let context = submit::task_context(&fetched, &resolved, None);
                (resolved, context)
            }
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let mut task = TaskContext::from_yaml(&text)
                    .with_context(|| format!("{}: not a task file", path.display()))?;
                task.queue_name = queue.name.clone();
                let id = if task.queue_id.is_empty() {
                    queue.name.clone()
                } else {
                    task.queue_id.clone()
                };
                task.queue_id = id.clone();
                (
                    ResolvedQueue {
                        config: queue.clone(),
                        id,
                    },
                    task,
                )
            }
            (None, None) => unreachable!("clap requires --task-id or --task"),
        };
        let context = RenderContext {
            config: &prepared.config,
            identity: &identity,
            policies: &prepared.policies,
            engine: &prepared.engine,
        };
        match submit::render_task(context, &resolved, task).await {
            Ok(rendered) => {
                for (index, step) in rendered.outcome.steps.iter().enumerate() {
                    let patch = rendered
                        .outcome
                        .patch(index)
                        .map(|p| serde_json::to_string(&p))
                        .transpose()?;
                    eprintln!(
                        "# {} (sha256 {}, {:.3} ms): {}",
                        step.policy,
                        &step.sha256[..12.min(step.sha256.len())],
                        step.duration.as_secs_f64() * 1e3,
                        patch.unwrap_or_default()
                    );
                }
                print!("{}", serde_yaml::to_string(&rendered.pod)?);
                Ok(ExitCode::SUCCESS)
            }
            Err(failure) => {
                eprintln!("error: the agent would fail this task: {failure}");
                Ok(ExitCode::FAILURE)
            }
        }
    })
}
