//! The host guard: after a queue's policies, re-assert what the agent owns in the pod. Pure.
//!
//! Policies may reshape a pod freely, except for what the agent's own bookkeeping depends on: the name and namespace
//! (idempotent submits, the watch), the agent's labels (the watch's selector, `maxPods` counts), `restartPolicy:
//! Never` (one run per task), the task container and its command (the in-pod agent, unless the queue sets
//! `useImageEntrypoint`) and the credentials' `secretKeyRef`s. A policy that changes any of these fails the task
//! with a message naming the policy and the field; the agent never "fixes" it silently. The guard also refuses a pod
//! that carries a credential value anywhere in its spec.

use k8s_openapi::api::core::v1::{Container, Pod};
use pod_template::TASK_CONTAINER_NAME;
use policy_runtime::ChainOutcome;

use crate::render::{SECRET_ACCESS_KEY, SECRET_SECRET_KEY};

/// Secrets shorter than this are not searched for (a one-letter test key would match everywhere); real ClearML keys
/// are 20-60 characters.
pub const MIN_SECRET_LEN: usize = 8;

/// The credential values that must never reach a pod, a log line or a message.
pub fn secret_values(credentials: &crate::config::Credentials) -> Vec<&str> {
    [
        credentials.access_key.expose(),
        credentials.secret_key.expose(),
    ]
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect()
}

/// What the guard checks the final pod against: the base pod as rendered, and the secrets it must never contain.
#[derive(Debug)]
pub struct Expected<'a> {
    /// The base pod ([`crate::render::base_pod`]), typed.
    pub base: &'a Pod,
    /// The queue keeps the image's entrypoint (`queueSettings.useImageEntrypoint`): the command is the policies'.
    pub use_image_entrypoint: bool,
    /// Values that must not appear anywhere in the pod (the ClearML key and secret).
    pub secrets: &'a [&'a str],
}

/// A field the agent owns that the chain changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {what}")]
pub struct Violation {
    /// The owned field, as a JSON pointer into the pod (`/metadata/name`).
    pub field: String,
    /// What is wrong with it.
    pub what: String,
}

/// Check `pod` (the chain's final pod) against what the agent owns.
pub fn check(pod: &Pod, expected: &Expected<'_>) -> Result<(), Violation> {
    let base = expected.base;
    let violation = |field: &str, what: String| Violation {
        field: field.to_string(),
        what,
    };
    if pod.metadata.name != base.metadata.name {
        return Err(violation(
            "/metadata/name",
            format!(
                "changed to {:?} (the agent names the pod {:?})",
                pod.metadata.name, base.metadata.name
            ),
        ));
    }
    if pod.metadata.namespace != base.metadata.namespace {
        return Err(violation(
            "/metadata/namespace",
            format!(
                "changed to {:?} (task pods go to {:?})",
                pod.metadata.namespace, base.metadata.namespace
            ),
        ));
    }
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    for (key, value) in base.metadata.labels.iter().flatten() {
        if pod_template::is_agent_label(key) && labels.get(key) != Some(value) {
            return Err(violation(
                &format!("/metadata/labels/{key}"),
                format!(
                    "the agent's label must stay {value:?}, found {:?}",
                    labels.get(key)
                ),
            ));
        }
    }
    let (spec, base_spec) = (
        pod.spec.clone().unwrap_or_default(),
        base.spec.clone().unwrap_or_default(),
    );
    if spec.restart_policy != base_spec.restart_policy {
        return Err(violation(
            "/spec/restartPolicy",
            format!(
                "must stay \"Never\" (one run per task), found {:?}",
                spec.restart_policy
            ),
        ));
    }
    let task_container = |containers: &[Container]| {
        containers
            .iter()
            .find(|c| c.name == TASK_CONTAINER_NAME)
            .cloned()
    };
    let index = spec
        .containers
        .iter()
        .position(|c| c.name == TASK_CONTAINER_NAME)
        .unwrap_or_default();
    let (Some(container), Some(base_container)) = (
        task_container(&spec.containers),
        task_container(&base_spec.containers),
    ) else {
        return Err(violation(
            "/spec/containers",
            format!("the task container {TASK_CONTAINER_NAME:?} was removed or renamed"),
        ));
    };
    if !expected.use_image_entrypoint
        && (container.command != base_container.command || container.args != base_container.args)
    {
        return Err(violation(
            &format!("/spec/containers/{index}/command"),
            "the task container's command and args run the in-pod agent and must not change (set \
             queueSettings.useImageEntrypoint to run the image's own entrypoint)"
                .to_string(),
        ));
    }
    for key in [SECRET_ACCESS_KEY, SECRET_SECRET_KEY] {
        let find = |c: &Container| c.env.iter().flatten().find(|e| e.name == key).cloned();
        if find(&container) != find(&base_container) {
            return Err(violation(
                &format!("/spec/containers/{index}/env"),
                format!(
                    "the ClearML credentials (env {key}) come from the agent's Secret (secretKeyRef) and must not \
                     change"
                ),
            ));
        }
    }
    if !expected.secrets.is_empty() {
        let text = serde_json::to_string(pod).unwrap_or_default();
        if expected
            .secrets
            .iter()
            .any(|s| s.len() >= MIN_SECRET_LEN && text.contains(s))
        {
            return Err(violation(
                "/",
                "the pod carries a ClearML credential value; credentials may only be referenced through the \
                 agent's Secret"
                    .to_string(),
            ));
        }
    }
    Ok(())
}

/// The name of the first policy whose step changed `violation.field` (or its parent or a child), for the message.
/// `None` when no step's patch touches it (for example a credential copied in by a policy under another path).
pub fn blame(outcome: &ChainOutcome, violation: &Violation) -> Option<String> {
    let field = violation.field.as_str();
    (0..outcome.steps.len()).find_map(|index| {
        let patch = outcome.patch(index)?;
        let touches = patch.0.iter().any(|op| {
            let path = op_path(op);
            field == "/" || path.starts_with(field) || field.starts_with(path.as_str())
        });
        touches.then(|| outcome.steps[index].policy.clone())
    })
}

fn op_path(op: &json_patch::PatchOperation) -> String {
    use json_patch::PatchOperation::*;
    match op {
        Add(o) => o.path.to_string(),
        Remove(o) => o.path.to_string(),
        Replace(o) => o.path.to_string(),
        Move(o) => o.path.to_string(),
        Copy(o) => o.path.to_string(),
        Test(o) => o.path.to_string(),
    }
}

#[cfg(test)]
mod tests;
