//! `queues.*` request bodies.

use serde::Deserialize;

use super::{ListQuery, one_or_many, opt_string, yes};

/// `queues.get_all` filters; the list fields take the server's operators (see [`ListQuery`]).
#[derive(Debug, Deserialize, Default)]
pub struct QueueGetAll {
    /// Only these queue ids; also shows hidden queues.
    #[serde(default)]
    pub id: ListQuery,
    /// A case-sensitive regular expression searched in the name; also shows hidden queues.
    #[serde(default, deserialize_with = "opt_string")]
    pub name: Option<String>,
    /// User tags.
    #[serde(default)]
    pub tags: ListQuery,
    /// System tags.
    #[serde(default)]
    pub system_tags: ListQuery,
    /// Return only these fields (`id` always comes back).
    #[serde(default, deserialize_with = "one_or_many")]
    pub only_fields: Vec<String>,
    /// Page number, 0-based, in pages of `page_size`.
    #[serde(default)]
    pub page: Option<u64>,
    /// Queues per page, at most 500 (400/12 above); absent returns every match.
    #[serde(default)]
    pub page_size: Option<u64>,
    /// At most this many `entries` per queue, head first; absent or 0 returns them all.
    #[serde(default)]
    pub max_task_entries: Option<usize>,
    /// Include queues with the system tag [`crate::HIDDEN_QUEUE_TAG`].
    #[serde(default)]
    pub search_hidden: bool,
}

/// `queues.get_by_id`.
#[derive(Debug, Deserialize)]
pub struct QueueGetById {
    /// The queue id (400/701 when unknown, as for a queue name).
    pub queue: String,
    /// At most this many `entries`, head first; absent or 0 returns them all.
    #[serde(default)]
    pub max_task_entries: Option<usize>,
}

/// `queues.create`.
#[derive(Debug, Deserialize)]
pub struct QueueCreate {
    /// Unique (400/801), at least 3 characters (400/800).
    pub name: String,
    /// User tags.
    #[serde(default, deserialize_with = "one_or_many")]
    pub tags: Vec<String>,
    /// System tags: `default` makes it a default queue, [`crate::HIDDEN_QUEUE_TAG`] hides it from `get_all`.
    #[serde(default, deserialize_with = "one_or_many")]
    pub system_tags: Vec<String>,
    /// The server's typed map (`apimodels/queues.py` `DictField(value_types=[MetadataItem])`): key → item.
    #[serde(default)]
    pub metadata: Option<std::collections::BTreeMap<String, MetadataItem>>,
    /// The name the UI shows instead of `name`.
    #[serde(default, deserialize_with = "opt_string")]
    pub display_name: Option<String>,
}

/// A body that names only a queue: `queues.peek_task`, `get_num_entries`, `clear_queue`.
#[derive(Debug, Deserialize)]
pub struct QueueId {
    /// The queue id (400/701 when unknown).
    pub queue: String,
}

/// `queues.delete`.
#[derive(Debug, Deserialize)]
pub struct QueueDelete {
    /// The queue id.
    pub queue: String,
    /// Delete a queue that still has entries (400/702 otherwise); its tasks revert to their status before enqueue.
    #[serde(default)]
    pub force: bool,
}

/// `queues.get_next_task`: pop the head of a queue.
#[derive(Debug, Deserialize)]
pub struct GetNextTask {
    /// The queue id (400/701 when unknown).
    pub queue: String,
    /// 2.14+: also answer `task_info {company, user}` of the popped task.
    #[serde(default)]
    pub get_task_info: bool,
    /// 2.21+: pop only if this task is at the head (otherwise answer `{}`).
    #[serde(default, deserialize_with = "opt_string")]
    pub task: Option<String>,
}

/// A queue and a task: `queues.add_task`, `remove_task` and `move_task_*`.
#[derive(Debug, Deserialize)]
pub struct QueueTask {
    /// The queue id.
    pub queue: String,
    /// The task id.
    pub task: String,
    /// `add_task` only, default `true`: set the task's `execution.queue` to this queue.
    #[serde(default = "yes")]
    pub update_execution_queue: bool,
    /// `remove_task` only: revert the task to its status before enqueue, if this queue is its execution queue.
    #[serde(default)]
    pub update_task_status: bool,
    /// `move_task_forward`/`backward` only: by how many places (default 1; negative counts as 0).
    #[serde(default)]
    pub count: Option<i64>,
}

/// `queues.update`.
#[derive(Debug, Deserialize)]
pub struct QueueUpdate {
    /// The queue id.
    pub queue: String,
    /// A new unique name, at least 3 characters.
    #[serde(default, deserialize_with = "opt_string")]
    pub name: Option<String>,
    /// Replaces the user tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Replaces the system tags.
    #[serde(default)]
    pub system_tags: Option<Vec<String>>,
    /// A new display name.
    #[serde(default, deserialize_with = "opt_string")]
    pub display_name: Option<String>,
    /// Replaces the whole metadata map.
    #[serde(default)]
    pub metadata: Option<std::collections::BTreeMap<String, MetadataItem>>,
}

/// `apimodels/metadata.py` `MetadataItem`: key, type and value are all required strings.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct MetadataItem {
    /// The item's key, also its key in the queue's map.
    pub key: String,
    /// `type`: a type name for the UI; the value is a string regardless.
    #[serde(rename = "type")]
    pub item_type: String,
    /// The value.
    pub value: String,
}

/// `queues.add_or_update_metadata`.
#[derive(Debug, Deserialize)]
pub struct QueueMetadata {
    /// The queue id.
    pub queue: String,
    /// Items to add or replace by key, at least one (400/12 when empty).
    pub metadata: Vec<MetadataItem>,
    /// Drop the existing items first.
    #[serde(default)]
    pub replace_metadata: bool,
}
