//! The task context handed to policies: the host-side, serde-friendly twin of the WIT `task` record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use policy_cases::{CaseTask, TaskError};

use crate::bindings;

/// What the host knows about a ClearML task. The agent fills it from the ClearML API; golden cases and the CLI's
/// `--task` write it as YAML, read by the one task reader ([`policy_cases::task`], also used by the guests' native
/// runner): WIT field names (kebab-case, snake_case accepted), any scalar as text (`id: 42`), errors that name the
/// field. [`TaskContext::from_yaml`] is the entry point; `Deserialize` goes through the same reader.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", from = "CaseTask")]
pub struct TaskContext {
    /// ClearML task id.
    pub id: String,
    /// Task name.
    pub name: String,
    /// Project name, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Owner (user name or id), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Queue id the task was pulled from.
    pub queue_id: String,
    /// Queue name (the key under `agentk8sglue.queues`).
    pub queue_name: String,
    /// Tags and system tags.
    pub tags: Vec<String>,
    /// Requested container image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Hyperparameters / user properties as `"section/name" -> value`. A map keeps case files readable; the WIT
    /// record carries them as an ordered list of pairs (sorted by key, so evaluation is deterministic).
    pub properties: BTreeMap<String, String>,
}

impl From<CaseTask> for TaskContext {
    fn from(task: CaseTask) -> Self {
        Self {
            id: task.id,
            name: task.name,
            project: task.project,
            user: task.user,
            queue_id: task.queue_id,
            queue_name: task.queue_name,
            tags: task.tags,
            image: task.image,
            properties: task.properties,
        }
    }
}

impl TaskContext {
    /// Read a task from YAML (or JSON) text with the one task reader; the error names the offending field.
    pub fn from_yaml(text: &str) -> Result<Self, TaskError> {
        CaseTask::from_yaml(text).map(Self::from)
    }

    /// The queue an evaluation is for, as messages and log fields name it: `explicit` when the caller has one,
    /// else the task's queue name; `None` when neither is set. The one rule the harness, the chain and the CLI use.
    pub fn queue_for_messages<'a>(&'a self, explicit: Option<&'a str>) -> Option<&'a str> {
        explicit
            .or(Some(self.queue_name.as_str()))
            .filter(|q| !q.is_empty())
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_serde_read_tasks_the_same_way() {
        let text = "id: 42\nqueue_name: gpu\nproperties: {k8s/gpus: 2}\n";
        let task = TaskContext::from_yaml(text).unwrap();
        assert_eq!(task, serde_yaml::from_str::<TaskContext>(text).unwrap());
        assert_eq!(
            (task.id.as_str(), task.properties["k8s/gpus"].as_str()),
            ("42", "2")
        );
        let err = TaskContext::from_yaml("id: t\nproperties: [a]\n").unwrap_err();
        assert_eq!(err.path, "properties");
    }

    #[test]
    fn the_queue_for_messages_falls_back_to_the_tasks() {
        let task = TaskContext::for_test("t", "gpu");
        assert_eq!(task.queue_for_messages(None), Some("gpu"));
        assert_eq!(task.queue_for_messages(Some("red")), Some("red"));
        assert_eq!(TaskContext::default().queue_for_messages(None), None);
        assert_eq!(task.queue_for_messages(Some("")), None);
    }
}
