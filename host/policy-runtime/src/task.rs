//! The task context handed to policies: the host-side, serde-friendly twin of the WIT `task` record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::bindings;

/// What the host knows about a ClearML task. Golden cases write it as `task.yaml`; the agent fills it from the
/// ClearML API. Field names follow the WIT record (kebab-case); snake_case is accepted too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TaskContext {
    /// ClearML task id.
    pub id: String,
    /// Task name.
    #[serde(default)]
    pub name: String,
    /// Project name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Owner (user name or id), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Queue id the task was pulled from.
    #[serde(default, alias = "queue_id")]
    pub queue_id: String,
    /// Queue name (the key under `agentk8sglue.queues`).
    #[serde(default, alias = "queue_name")]
    pub queue_name: String,
    /// Tags and system tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Requested container image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Hyperparameters / user properties as `"section/name" -> value`. A map keeps case files readable; the WIT
    /// record carries them as an ordered list of pairs (sorted by key, so evaluation is deterministic).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

impl TaskContext {
    /// A minimal task for tests and benchmarks.
    pub fn for_test(id: &str, queue_name: &str) -> Self {
        Self {
            id: id.to_string(),
            name: format!("task {id}"),
            queue_id: format!("{queue_name}-id"),
            queue_name: queue_name.to_string(),
            ..Self::default()
        }
    }

    pub(crate) fn to_wit(&self) -> bindings::Task {
        bindings::Task {
            id: self.id.clone(),
            name: self.name.clone(),
            project: self.project.clone(),
            user: self.user.clone(),
            queue_id: self.queue_id.clone(),
            queue_name: self.queue_name.clone(),
            tags: self.tags.clone(),
            image: self.image.clone(),
            properties: self
                .properties
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}
