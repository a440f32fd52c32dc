//! Values-shaped pod template (the `basePodTemplate` / `templateOverrides` shape of the ClearML Enterprise chart)
//! mapped onto a Kubernetes `v1/Pod`. Compiles for the host and for `wasm32-wasip2` (the template-overrides plugin),
//! so the agent's base render and a queue's overrides go through the same code.
//!
//! Ships, in two places: the agent links it (the pipeline's render stage: clearml-api → **pod-template** →
//! policy-runtime → agent → cli) and so does the `template-overrides` plugin, which is why it lives in `common/`.
//!
//! # Start here
//! - [`Template::from_value`] parses and normalises a template (`deny_unknown_fields`, camelCase; errors name the
//!   key and its path). [`Template`] also implements `Deserialize`, for embedding in a config struct.
//! - [`apply`] renders a template onto a pod with a [`MergeStrategy`]:
//!   - [`MergeStrategy::Replace`] (the chart's semantics, default): every field present in the template replaces the
//!     pod's field; fields absent from the template are left as they are (inherited).
//!   - [`MergeStrategy::Deep`] (opt-in): maps are merged key by key, lists of named objects are merged by `name`
//!     (`volumeMounts` by `mountPath`, as Kubernetes' strategic merge does), other lists and scalars are replaced.
//! - [`merge_templates`] combines `basePodTemplate` and `templateOverrides` at template level with the same rules.
//!
//! # Where each field goes
//! Pod-level fields go to `metadata` or `spec`; container-level fields (`resources`, `env`, `volumeMounts`,
//! `containerSecurityContext`, ...) go to **the task container**: the container named [`TASK_CONTAINER_NAME`] if
//! the pod has one, otherwise the first container (see [`task_container_index`]). Sidecars are never touched.
//!
//! # What the agent owns
//! Neither strategy drops or changes what the agent itself put on the pod: labels for which [`is_agent_label`] holds
//! (`clearml-task-id`, `clearml-agent*`) and env vars for which [`is_agent_env`] holds (`CLEARML_*`) are kept, and
//! win over a template entry of the same name. The Enterprise chart behaves the same way: its overrides replace the
//! *template's* labels and env, and the agent adds its own afterwards.
//!
//! # Example: the doc's `blue` queue
//! ```
//! use pod_template::{apply, MergeStrategy, Template};
//! use serde_json::json;
//!
//! // The host renders `basePodTemplate` onto its own pod (agent labels, the task container) ...
//! let base = Template::from_value(
//!     &json!({"labels": {"team": "red"}, "resources": {"limits": {"memory": "1Gi"}}}),
//!     "agentk8sglue.basePodTemplate",
//! )?;
//! let mut pod = json!({
//!     "metadata": {"labels": {"clearml-task-id": "abc"}},
//!     "spec": {"containers": [{"name": "clearml-task", "image": "python:3.11"}]}
//! });
//! apply(&mut pod, &base, MergeStrategy::Replace)?;
//! // ... and the template-overrides plugin applies the queue's overrides with the same code.
//! let blue = Template::from_value(&json!({"labels": {"team": "blue"}}), "agentk8sglue.queues.blue.templateOverrides")?;
//! apply(&mut pod, &blue, MergeStrategy::Replace)?;
//! assert_eq!(pod["metadata"]["labels"], json!({"clearml-task-id": "abc", "team": "blue"}));
//! assert_eq!(pod["spec"]["containers"][0]["resources"]["limits"]["memory"], "1Gi");
//! # Ok::<(), pod_template::Error>(())
//! ```
//!
//! The plugin's config, built by the host from a queue's values, is
//! `{"templateOverrides": <queues.<q>.templateOverrides>, "mergeStrategy": "replace" | "deep"}`.
//!
//! # Layout
//! - `fields`: the values shape: every key a template accepts and where it lands in the pod.
//! - `template`: [`Template`]: parsing and normalising (the errors that name a key's path).
//! - `merge`: [`apply`], [`deep_merge`], [`merge_templates`]: rendering onto a pod, keeping what the agent owns.

#![warn(missing_docs, clippy::disallowed_methods)]

use std::fmt;

use serde::{Deserialize, Serialize};

mod fields;
mod merge;
mod template;

pub use fields::known_keys;
pub use merge::{
    apply, deep_merge, is_agent_env, is_agent_label, merge_templates, task_container_index,
    task_container_mut,
};
pub use template::Template;

/// Name the host gives the container that runs the ClearML task. Container-level fields target it.
pub const TASK_CONTAINER_NAME: &str = "clearml-task";

/// Labels the agent sets on every pod and that templates and policies must not overwrite or drop.
pub const AGENT_LABELS: &[&str] = &[
    "clearml-task-id",
    "clearml-agent-queue",
    "clearml-agent-queue-name",
];

/// Any label starting with this prefix belongs to the agent (`clearml-agent-queue`, `clearml-agent-instance`, ...).
pub const AGENT_LABEL_PREFIX: &str = "clearml-agent";

/// Env vars starting with this prefix are the agent's (ClearML connection, worker id, task id).
pub const AGENT_ENV_PREFIX: &str = "CLEARML_";

/// Errors from parsing a template or applying it to a pod.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The template has a key that is not part of the values shape.
    #[error("unknown key `{key}` at {path} (known keys: {known})")]
    UnknownKey {
        /// Where the key was found, e.g. `agentk8sglue.queues.red.templateOverrides`.
        path: String,
        /// The offending key.
        key: String,
        /// The keys allowed at that place, comma-separated, so the user can spot a typo.
        known: String,
    },
    /// A value has the wrong JSON type.
    #[error("{path}: expected {expected}, found {found}")]
    InvalidType {
        /// Full path of the value, e.g. `templateOverrides.resources.limits.memory`.
        path: String,
        /// What the values shape wants there.
        expected: &'static str,
        /// What was given (JSON type name).
        found: &'static str,
    },
    /// The pod given to [`apply`] cannot carry the template (not an object, no containers, ...).
    #[error("invalid pod: {0}")]
    InvalidPod(String),
}

/// How a template's fields combine with what is already there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeStrategy {
    /// Each field present replaces the existing field as a whole (the Enterprise chart's `templateOverrides`).
    #[default]
    Replace,
    /// Maps are merged recursively and lists of named objects are merged by name.
    Deep,
}

impl fmt::Display for MergeStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Replace => "replace",
            Self::Deep => "deep",
        })
    }
}

#[cfg(test)]
mod tests;
