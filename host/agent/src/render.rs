//! The base pod for a task: what the agent owns plus `basePodTemplate`, before any queue policy runs. Pure.
//!
//! The agent owns the name (`clearml-id-<task id>`), the namespace, its labels, `restartPolicy: Never`, the task
//! container (its name, image and the command that bootstraps the stock in-pod `clearml-agent execute`) and the
//! ClearML connection env. Credentials reach the pod only as `valueFrom.secretKeyRef` on the agent's Secret.
//! [`crate::guard`] re-asserts all of this after the policies.

use pod_template::{MergeStrategy, TASK_CONTAINER_NAME};
use policy_runtime::TaskContext;
use serde_json::{Value, json};

use crate::config::{AgentConfig, QueueConfig};

/// Label: the ClearML task id.
pub const LABEL_TASK_ID: &str = "clearml-task-id";
/// Label: the id of the queue the task came from.
pub const LABEL_QUEUE_ID: &str = "clearml-agent-queue";
/// Label: that queue's name, sanitised to a label value.
pub const LABEL_QUEUE_NAME: &str = "clearml-agent-queue-name";
/// Label: which agent instance owns the pod (its watch and its `maxPods` count select on it).
pub const LABEL_INSTANCE: &str = "clearml-agent-instance";
/// Annotation: the policies that shaped the pod, `name@sha256:<digest>` comma-separated, in chain order.
pub const ANNOTATION_POLICIES: &str = "clearml.ai/policies";
/// Key of the ClearML access key in the agent's credentials Secret.
pub const SECRET_ACCESS_KEY: &str = "CLEARML_API_ACCESS_KEY";
/// Key of the ClearML secret key in the agent's credentials Secret.
pub const SECRET_SECRET_KEY: &str = "CLEARML_API_SECRET_KEY";

/// Who the agent is in the cluster and in ClearML: the same for every task it submits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The instance name: value of [`LABEL_INSTANCE`], and the ClearML worker id.
    pub instance: String,
    /// Namespace task pods go to.
    pub namespace: String,
    /// Name of the Secret holding the ClearML credentials for task pods.
    pub credentials_secret: String,
}

impl Identity {
    /// The ClearML worker id of the agent.
    pub fn worker_id(&self) -> &str {
        &self.instance
    }
}

/// Why a base pod cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// `basePodTemplate` does not fit the pod (reported at load time already, so rare).
    #[error("queue {queue}, task {task_id}: agentk8sglue.basePodTemplate: {source}")]
    Template {
        /// The queue.
        queue: String,
        /// The task.
        task_id: String,
        /// What pod-template said.
        #[source]
        source: pod_template::Error,
    },
}

/// The name of the pod of `task_id`. Deterministic, so a retry or a restart finds the pod it already created.
pub fn pod_name(task_id: &str) -> String {
    format!("clearml-id-{}", task_id.to_ascii_lowercase())
}

/// A Kubernetes label value for `raw`: at most 63 characters of `[A-Za-z0-9._-]`, starting and ending alphanumeric.
pub fn label_value(raw: &str) -> String {
    let mapped: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    mapped
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// The image for a task: the task's `container.image`, else the queue's `defaultImage`, else
/// `defaultContainerImage`.
pub fn image_for<'a>(
    config: &'a AgentConfig,
    queue: &'a QueueConfig,
    task: &'a TaskContext,
) -> &'a str {
    task.image
        .as_deref()
        .filter(|i| !i.trim().is_empty())
        .or(queue.settings.default_image.as_deref())
        .unwrap_or(&config.default_container_image)
}

/// The shell script the task container runs: find a Python, install `clearml-agent` only when the image lacks it
/// (never upgrade one the image ships: an in-pod upgrade breaking pods is a known pain of the Python glue), then
/// hand over to the stock `clearml-agent execute`, whose exit code becomes the container's.
pub fn bootstrap_script(task_id: &str) -> String {
    format!(
        r#"set -e
PY=""
for candidate in python3 python; do
  if command -v "$candidate" >/dev/null 2>&1; then PY="$candidate"; break; fi
done
if [ -z "$PY" ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip git >/dev/null && PY=python3
fi
if [ -z "$PY" ]; then echo "clearml-k8s-agent: the image has no python3 (and no apt-get to install it)" >&2; exit 127; fi
if ! "$PY" -m clearml_agent --version >/dev/null 2>&1; then
  "$PY" -m pip install --quiet --no-cache-dir clearml-agent || "$PY" -m pip install --quiet --no-cache-dir --break-system-packages clearml-agent
fi
exec "$PY" -m clearml_agent execute --full-monitoring --require-queue --id {task_id}
"#
    )
}

/// The pod the agent renders for `task` on `queue` (queue id `queue_id`) before the queue's policies run.
pub fn base_pod(
    config: &AgentConfig,
    queue: &QueueConfig,
    queue_id: &str,
    task: &TaskContext,
    identity: &Identity,
) -> Result<Value, RenderError> {
    let mut env = vec![json!({"name": "CLEARML_API_HOST", "value": config.api_server_url})];
    if let Some(web) = &config.web_server_url {
        env.push(json!({"name": "CLEARML_WEB_HOST", "value": web}));
    }
    if let Some(files) = &config.file_server_url {
        env.push(json!({"name": "CLEARML_FILES_HOST", "value": files}));
    }
    for key in [SECRET_ACCESS_KEY, SECRET_SECRET_KEY] {
        env.push(json!({
            "name": key,
            "valueFrom": {"secretKeyRef": {"name": identity.credentials_secret, "key": key}}
        }));
    }
    env.push(json!({"name": "CLEARML_WORKER_ID", "value": format!("{}:{}", identity.worker_id(), task.id)}));
    env.push(json!({"name": "CLEARML_TASK_ID", "value": task.id}));

    let mut container = json!({
        "name": TASK_CONTAINER_NAME,
        "image": image_for(config, queue, task),
        "env": env,
    });
    if !queue.settings.use_image_entrypoint {
        container["command"] = json!(["/bin/sh", "-c", bootstrap_script(&task.id)]);
    }
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(&task.id),
            "namespace": identity.namespace,
            "labels": {
                LABEL_TASK_ID: label_value(&task.id),
                LABEL_QUEUE_ID: label_value(queue_id),
                LABEL_QUEUE_NAME: label_value(&queue.name),
                LABEL_INSTANCE: label_value(&identity.instance),
            },
        },
        "spec": {
            "restartPolicy": "Never",
            "containers": [container],
        },
    });
    pod_template::apply(&mut pod, &config.base_pod_template, MergeStrategy::Replace).map_err(
        |source| RenderError::Template {
            queue: queue.name.clone(),
            task_id: task.id.clone(),
            source,
        },
    )?;
    Ok(pod)
}

/// The template-overrides plugin's config for `queue`: the first step of every queue's chain.
pub fn template_overrides_config(queue: &QueueConfig) -> Value {
    json!({"templateOverrides": queue.template_overrides, "mergeStrategy": "replace"})
}

#[cfg(test)]
mod tests;
