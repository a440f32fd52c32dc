//! Queues: queue documents, their entries, and what `queues.get_next_task` pops.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A queue entry: the task and when it was added.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct QueueEntry {
    /// Id of the queued task.
    pub task: String,
    /// When the task entered the queue (ISO-8601 UTC).
    pub added: Option<String>,
}

/// A queue document (`queues.get_all`, `queues.get_by_id`), any subset of it per `only_fields`. Dates are ISO-8601
/// UTC strings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Queue {
    /// The queue id (32 hex digits): what `tasks.enqueue {queue}`, `queues.get_next_task` and worker registrations
    /// take.
    pub id: String,
    /// Unique name (at least 3 characters), what users give as `queue_name`.
    pub name: String,
    /// The name the UI shows instead, when set.
    pub display_name: Option<String>,
    /// User tags.
    pub tags: Vec<String>,
    /// System tags: `default` marks the default queue, `k8s-glue` hides the queue from `queues.get_all` unless
    /// `search_hidden`, `id` or `name` is given.
    pub system_tags: Vec<String>,
    /// The waiting tasks, head first: `queues.get_next_task` pops `entries[0]`.
    pub entries: Vec<QueueEntry>,
    /// Key → `{key, type, value}` (all strings), as `queues.add_or_update_metadata` stores it.
    pub metadata: Map<String, Value>,
    /// When the queue was created.
    pub created: Option<String>,
    /// When the queue last changed (an entry added or popped, an update).
    pub last_update: Option<String>,
}

/// `queues.get_all` filters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QueuesGetAll {
    /// Case-sensitive regular expression on the name (`^name$` for an exact match).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Only these queue ids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub id: Vec<String>,
    /// Queues with any of these tags; `-x` excludes those tagged `x`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The same filter on system tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub system_tags: Vec<String>,
    /// Return only these fields (`entries`, `name`, ...; `id` always comes back), to keep answers small.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub only_fields: Vec<String>,
    /// Include hidden queues (system tag `k8s-glue`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub search_hidden: bool,
    /// Return at most this many `entries` per queue (head first); absent or 0 returns them all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_task_entries: Option<u32>,
}

/// `queues.create`; the answer is the new queue's id.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QueueCreate {
    /// Unique name, at least 3 characters (400/801 when taken, 400/800 when too short).
    pub name: String,
    /// User tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// System tags; `k8s-glue` hides the queue from `queues.get_all` (the glue's pending queue carries it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub system_tags: Vec<String>,
    /// The name the UI shows instead of `name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// Who owns a popped task (`get_task_info`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TaskInfo {
    /// Id of the task's company.
    pub company: Option<String>,
    /// Id of the task's owner, saving a `tasks.get_all` to learn it.
    pub user: Option<String>,
}

/// A task popped by `queues.get_next_task`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextTask {
    /// The popped entry: the task id and when it was queued. The task is no longer in the queue.
    pub entry: QueueEntry,
    /// Whose task it is (asked for with `get_task_info`, 2.14); `None` when the server did not say, e.g. because
    /// the task no longer exists.
    pub task_info: Option<TaskInfo>,
}
