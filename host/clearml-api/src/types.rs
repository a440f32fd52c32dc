//! Wire types: request bodies and response `data` of the endpoints the agent calls. Responses are lenient (every
//! field defaults) because `only_fields` trims documents and servers add fields over time; requests omit unset
//! optional fields so the server applies its own defaults.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A task status. Unknown future statuses deserialise as [`TaskStatus::Other`] instead of failing the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Created,
    Queued,
    InProgress,
    Stopped,
    Published,
    Publishing,
    Closed,
    Failed,
    Completed,
    Unknown,
    #[serde(other)]
    Other,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Created => "created",
            TaskStatus::Queued => "queued",
            TaskStatus::InProgress => "in_progress",
            TaskStatus::Stopped => "stopped",
            TaskStatus::Published => "published",
            TaskStatus::Publishing => "publishing",
            TaskStatus::Closed => "closed",
            TaskStatus::Failed => "failed",
            TaskStatus::Completed => "completed",
            TaskStatus::Unknown | TaskStatus::Other => "unknown",
        }
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `task.container`: what the pod's image and extra docker arguments come from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Container {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup_shell_script: Option<String>,
}

/// `task.execution`; only `queue` is interpreted, the rest is kept as is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Execution {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// One hyperparameter (`hyperparams.<section>.<name>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HyperParam {
    pub section: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub param_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A task document (any subset of it, per `only_fields`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Task {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub task_type: Option<String>,
    pub status: Option<TaskStatus>,
    pub status_reason: Option<String>,
    pub status_message: Option<String>,
    pub status_changed: Option<String>,
    pub user: Option<String>,
    pub company: Option<String>,
    pub project: Option<String>,
    pub parent: Option<String>,
    pub comment: Option<String>,
    pub tags: Vec<String>,
    pub system_tags: Vec<String>,
    pub created: Option<String>,
    pub started: Option<String>,
    pub completed: Option<String>,
    pub last_update: Option<String>,
    pub last_worker: Option<String>,
    pub execution: Option<Execution>,
    pub container: Option<Container>,
    pub hyperparams: Option<BTreeMap<String, BTreeMap<String, HyperParam>>>,
    pub runtime: Option<Map<String, Value>>,
}

impl Task {
    /// `container.image` if set and non-empty.
    pub fn image(&self) -> Option<&str> {
        self.container
            .as_ref()?
            .image
            .as_deref()
            .filter(|i| !i.is_empty())
    }

    /// `execution.queue` if set.
    pub fn execution_queue(&self) -> Option<&str> {
        self.execution
            .as_ref()?
            .queue
            .as_deref()
            .filter(|q| !q.is_empty())
    }
}

/// A queue entry: the task and when it was added.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct QueueEntry {
    pub task: String,
    pub added: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Queue {
    pub id: String,
    pub name: String,
    pub display_name: Option<String>,
    pub tags: Vec<String>,
    pub system_tags: Vec<String>,
    pub entries: Vec<QueueEntry>,
    pub metadata: Map<String, Value>,
    pub created: Option<String>,
    pub last_update: Option<String>,
}

/// `queues.get_all` filters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QueuesGetAll {
    /// Case-sensitive regular expression on the name (`^name$` for an exact match).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub id: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub system_tags: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub only_fields: Vec<String>,
    /// Include hidden queues (system tag `k8s-glue`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub search_hidden: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_task_entries: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct QueueCreate {
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub system_tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// Who owns a popped task (`get_task_info`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TaskInfo {
    pub company: Option<String>,
    pub user: Option<String>,
}

/// A task popped by `queues.get_next_task`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextTask {
    pub entry: QueueEntry,
    pub task_info: Option<TaskInfo>,
}

/// `tasks.get_all` filters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TasksGetAll {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub id: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<TaskStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub project: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub system_tags: Vec<String>,
    #[serde(rename = "execution.queue", skip_serializing_if = "Vec::is_empty")]
    pub execution_queue: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub only_fields: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub search_hidden: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
}

/// Body of the status calls (`started`, `stopped`, `failed`, `stop`, ...).
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusChange {
    pub task: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
}

impl StatusChange {
    pub fn new(task: impl Into<String>) -> Self {
        StatusChange {
            task: task.into(),
            ..Default::default()
        }
    }

    pub fn force(mut self) -> Self {
        self.force = true;
        self
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.status_reason = Some(reason.into());
        self
    }

    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.status_message = Some(message.into());
        self
    }
}

/// What a status call changed.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Updated {
    pub updated: u32,
    pub fields: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Enqueue {
    pub task: String,
    /// Queue id. Give this or `queue_name` (not both); neither means the default queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Queue name (2.19+); the server creates the queue if it does not exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_name: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// 2.31+: `false` keeps `execution.queue` (only valid for a task already queued with it set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_execution_queue: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Enqueued {
    pub queued: u32,
    pub updated: u32,
    pub fields: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Dequeue {
    pub task: String,
    /// 2.26+: the status to leave a queued/running task in (default: its status before enqueue).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_status: Option<TaskStatus>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub remove_from_all_queues: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Dequeued {
    pub dequeued: u32,
    pub updated: u32,
    pub fields: Map<String, Value>,
}

/// `tasks.update`: plain field updates, with no state-machine check (used for `status_message`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TaskUpdate {
    pub task: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
}

/// `tasks.edit`. Without `force` the task must still be a draft (`created`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TaskEdit {
    pub task: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_tags: Option<Vec<String>>,
    /// Replaces the whole `container` object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// Replaces the whole `runtime` object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Map<String, Value>>,
    /// Merged one level deep into `execution`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<Map<String, Value>>,
}

/// One item of `tasks.edit_hyper_params`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HyperParamItem {
    pub section: String,
    pub name: String,
    pub value: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub param_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl HyperParamItem {
    pub fn new(
        section: impl Into<String>,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        HyperParamItem {
            section: section.into(),
            name: name.into(),
            value: value.into(),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkerRegister {
    pub worker: String,
    /// Seconds without a report after which the server forgets the worker (server default 600).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    /// Queue ids the worker listens on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// Machine statistics of a status report. Per-GPU values are arrays: the GPU count is their length (there is no
/// `gpu_count` field). Memory in MB.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MachineStats {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpu_usage: Vec<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpu_usage: Vec<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpu_memory_free: Vec<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpu_memory_used: Vec<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpu_temperature: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_used: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_free: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusReport {
    pub worker: String,
    /// Milliseconds since the epoch (what clearml-agent sends).
    pub timestamp: i64,
    /// The task the worker runs; absent clears it on the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The queue that task came from; absent clears it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Queue ids; absent keeps the registered ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queues: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_stats: Option<MachineStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// Enterprise `workers.cluster_report`: capacity for the orchestration dashboard. Serialised as the body
/// clearml-agent 3.0.3 posts (`helper/resource_monitor.py` `send_cluster_report`): `worker`, `key`, `partial`,
/// `timestamp`, `timeout`, `resource_groups`, and the limits nested under `properties` (`max_gpus`, `max_cpus`,
/// `max_workers`, each only when set). Extra fields pass through at the top level because the enterprise schema is
/// not public.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterReport {
    /// The reporting worker id (`<cluster>:<name>`).
    pub worker: String,
    /// The cluster key the dashboard groups by (the worker id's first `:` part).
    pub key: String,
    pub partial: bool,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// Seconds until the report expires (clearml-agent: twice its report interval).
    pub timeout: Option<u32>,
    pub resource_groups: Vec<String>,
    pub max_gpus: Option<u32>,
    pub max_cpus: Option<u32>,
    pub max_workers: Option<u32>,
    pub extra: Map<String, Value>,
}

impl ClusterReport {
    /// A report for `worker_id` as clearml-agent builds it (`get_cluster_key_and_resource_group`): key = the id's
    /// first `:` part and resource group = its first two parts; an id with fewer than three parts gets the
    /// default cluster `onprem` and the group `onprem:<first part>`.
    pub fn new(worker_id: &str, timestamp_ms: i64) -> Self {
        let parts: Vec<&str> = worker_id.split(':').collect();
        let (key, group) = if parts.len() < 3 {
            ("onprem".to_owned(), format!("onprem:{}", parts[0]))
        } else {
            (parts[0].to_owned(), parts[..2].join(":"))
        };
        ClusterReport {
            worker: worker_id.to_owned(),
            key,
            timestamp: timestamp_ms,
            resource_groups: vec![group],
            ..Default::default()
        }
    }
}

impl Serialize for ClusterReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut body = self.extra.clone();
        let mut properties = Map::new();
        for (name, v) in [
            ("max_cpus", self.max_cpus),
            ("max_gpus", self.max_gpus),
            ("max_workers", self.max_workers),
        ] {
            if let Some(v) = v {
                properties.insert(name.into(), Value::from(v));
            }
        }
        body.insert("worker".into(), Value::from(self.worker.clone()));
        body.insert("partial".into(), Value::from(self.partial));
        body.insert("key".into(), Value::from(self.key.clone()));
        body.insert("timestamp".into(), Value::from(self.timestamp));
        if let Some(t) = self.timeout {
            body.insert("timeout".into(), Value::from(t));
        }
        body.insert(
            "resource_groups".into(),
            Value::from(self.resource_groups.clone()),
        );
        body.insert("properties".into(), Value::Object(properties));
        body.serialize(s)
    }
}

/// `tasks.stop_many` (what the web UI's abort sends): each id stopped as by `tasks.stop`; failures are listed,
/// not raised.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct StopMany {
    pub succeeded: Vec<BatchSucceeded>,
    pub failed: Vec<BatchFailed>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct BatchSucceeded {
    pub id: String,
    pub updated: u32,
    pub fields: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct BatchFailed {
    pub id: String,
    pub error: BatchError,
}

/// One id's failure in a batch call: `codes` = `[result_code, result_subcode]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct BatchError {
    pub codes: Vec<u32>,
    pub msg: String,
}

/// A task console line for `events.add_batch` (event type `log`), e.g. a pod event the agent surfaces.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogEvent {
    pub task: String,
    /// Always `log` when sent; kept so events read back from `events.get_task_log` round-trip.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Milliseconds since the epoch; the server stamps the arrival time when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// `info`, `warning`, `error`, ...
    pub level: String,
    pub msg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
}

impl LogEvent {
    pub fn new(task: &str, level: &str, msg: impl Into<String>) -> Self {
        LogEvent {
            task: task.into(),
            event_type: "log".into(),
            level: level.into(),
            msg: msg.into(),
            ..Default::default()
        }
    }
}

/// `events.add_batch` reply: how many were stored, and the rejected ones counted per reason.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct EventsAdded {
    pub added: u32,
    pub errors: u32,
    pub errors_info: Map<String, Value>,
}

/// `events.get_task_log` reply (2.9): the newest events first unless asked otherwise.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct TaskLog {
    pub events: Vec<LogEvent>,
    pub returned: u32,
    pub total: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // clearml-agent 3.0.3 helper/resource_monitor.py send_cluster_report: limits nest under `properties`.
    #[test]
    fn cluster_report_has_the_body_clearml_agent_sends() {
        let mut r = ClusterReport::new("k8s:glue:agent-1", 1_000);
        r.max_gpus = Some(8);
        r.timeout = Some(120);
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({
                "worker": "k8s:glue:agent-1", "partial": false, "key": "k8s", "timestamp": 1000,
                "timeout": 120, "resource_groups": ["k8s:glue"], "properties": {"max_gpus": 8},
            })
        );
        let short = ClusterReport::new("agent-1", 0);
        assert_eq!(
            (short.key.as_str(), short.resource_groups[0].as_str()),
            ("onprem", "onprem:agent-1")
        );
    }

    #[test]
    fn unset_fields_are_not_sent() {
        let body = serde_json::to_value(QueuesGetAll {
            name: Some("^q$".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(body, json!({"name": "^q$"}));
        let body = serde_json::to_value(StatusChange::new("t").force().message("m")).unwrap();
        assert_eq!(
            body,
            json!({"task": "t", "force": true, "status_message": "m"})
        );
    }

    #[test]
    fn trimmed_and_future_documents_decode() {
        let t: Task = serde_json::from_value(
            json!({"id": "t", "container": {"image": "img", "arguments": null}}),
        )
        .unwrap();
        assert_eq!(t.image(), Some("img"));
        assert_eq!(t.status, None);
        let t: Task =
            serde_json::from_value(json!({"id": "t", "status": "hibernating", "new_field": 1}))
                .unwrap();
        assert_eq!(t.status, Some(TaskStatus::Other));
    }
}
