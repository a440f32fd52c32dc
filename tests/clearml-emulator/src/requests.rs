//! Request bodies of the modelled endpoints. Unknown fields are ignored (jsonmodels does the same); a missing
//! required field or a wrong type is a 400/12 raised by the dispatcher from the serde error.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::model::Object;

/// A list field that also accepts one bare string or `null` (`tasks.get_all {id: "<id>"}` works on the server).
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}

/// A list-field filter of `get_all` as the server reads it (`database/model/base.py` `get_list_field_query`):
/// one value or a list of values, where an entry may be `null` (match an empty field), `-x` (exclude x), or an
/// operator (`__$not`, `__$all`/`__$and`, `__$any`/`__$or`, `__$nop`) applying to what follows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery(pub Vec<Option<String>>);

impl ListQuery {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for ListQuery {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<Option<String>>),
        }
        Ok(match Option::<OneOrMany>::deserialize(d)? {
            // A bare `null` is "not given", as jsonmodels treats it; `[null]` is the "empty field" filter.
            None => ListQuery::default(),
            Some(OneOrMany::One(s)) => ListQuery(vec![Some(s)]),
            Some(OneOrMany::Many(v)) => ListQuery(v),
        })
    }
}

/// `null` and absent both mean "not given" for strings (the SDK sends `null` for unset optional fields).
fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
}

#[derive(Debug, Deserialize, Default)]
pub struct Login {
    #[serde(default)]
    pub expiration_sec: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct ProjectCreate {
    pub name: String,
    #[serde(default, deserialize_with = "opt_string")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub tags: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub system_tags: Vec<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct ProjectGetAll {
    #[serde(default, deserialize_with = "one_or_many")]
    pub id: Vec<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub only_fields: Vec<String>,
    #[serde(default)]
    pub search_hidden: bool,
}

#[derive(Debug, Deserialize)]
pub struct ProjectGetById {
    pub project: String,
}

#[derive(Debug, Deserialize)]
pub struct TaskCreate {
    pub name: String,
    #[serde(rename = "type")]
    pub task_type: String,
    #[serde(default, deserialize_with = "one_or_many")]
    pub tags: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub system_tags: Vec<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub comment: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub parent: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub project: Option<String>,
    #[serde(default)]
    pub execution: Option<Object>,
    #[serde(default)]
    pub script: Option<Value>,
    #[serde(default)]
    pub hyperparams: Option<Object>,
    #[serde(default)]
    pub configuration: Option<Object>,
    #[serde(default)]
    pub runtime: Option<Object>,
    #[serde(default)]
    pub container: Option<Object>,
    #[serde(default)]
    pub models: Option<Value>,
    #[serde(default)]
    pub output_dest: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct TaskId {
    pub task: String,
}

#[derive(Debug, Deserialize, Default)]
pub struct TaskGetAll {
    #[serde(default)]
    pub id: ListQuery,
    #[serde(default, deserialize_with = "opt_string")]
    pub name: Option<String>,
    #[serde(default)]
    pub status: ListQuery,
    #[serde(default)]
    pub project: ListQuery,
    #[serde(default)]
    pub user: ListQuery,
    #[serde(default, rename = "type")]
    pub task_type: ListQuery,
    #[serde(default)]
    pub tags: ListQuery,
    #[serde(default)]
    pub system_tags: ListQuery,
    #[serde(default)]
    pub parent: ListQuery,
    #[serde(default, rename = "execution.queue")]
    pub execution_queue: ListQuery,
    #[serde(default, deserialize_with = "one_or_many")]
    pub only_fields: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub order_by: Vec<String>,
    #[serde(default)]
    pub page: Option<u64>,
    #[serde(default)]
    pub page_size: Option<u64>,
    #[serde(default)]
    pub search_hidden: bool,
}

/// The common body of status-changing calls (`started`, `stopped`, `failed`, `completed`, `stop`, `reset`, ...).
#[derive(Debug, Deserialize)]
pub struct StatusChange {
    pub task: String,
    #[serde(default)]
    pub force: bool,
    #[serde(default, deserialize_with = "opt_string")]
    pub status_reason: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub status_message: Option<String>,
    #[serde(default)]
    pub publish: bool,
}

/// `tasks.stop_many` (the web UI's abort): the `tasks.stop` rules applied to each id.
#[derive(Debug, Deserialize)]
pub struct StopMany {
    pub ids: Vec<String>,
    #[serde(default)]
    pub force: bool,
    #[serde(default, deserialize_with = "opt_string")]
    pub status_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SetRequirements {
    pub task: String,
    pub requirements: Value,
}

#[derive(Debug, Deserialize)]
pub struct TaskEdit {
    pub task: String,
    #[serde(default)]
    pub force: bool,
    #[serde(default, deserialize_with = "opt_string")]
    pub name: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "opt_string")]
    pub task_type: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub system_tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "opt_string")]
    pub comment: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub parent: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub project: Option<String>,
    #[serde(default)]
    pub execution: Option<Object>,
    #[serde(default)]
    pub script: Option<Value>,
    #[serde(default)]
    pub hyperparams: Option<Object>,
    #[serde(default)]
    pub configuration: Option<Object>,
    #[serde(default)]
    pub runtime: Option<Object>,
    #[serde(default)]
    pub container: Option<Object>,
    #[serde(default)]
    pub models: Option<Value>,
    #[serde(default, deserialize_with = "opt_string")]
    pub status: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct TaskUpdate {
    pub task: String,
    #[serde(default, deserialize_with = "opt_string")]
    pub name: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub system_tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "opt_string")]
    pub comment: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub project: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub status_reason: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub status_message: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Enqueue {
    pub task: String,
    #[serde(default, deserialize_with = "opt_string")]
    pub queue: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub queue_name: Option<String>,
    #[serde(default)]
    pub force: bool,
    #[serde(default, deserialize_with = "opt_string")]
    pub status_reason: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub status_message: Option<String>,
    #[serde(default = "yes")]
    pub update_execution_queue: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
pub struct Dequeue {
    pub task: String,
    #[serde(default, deserialize_with = "opt_string")]
    pub new_status: Option<String>,
    #[serde(default)]
    pub remove_from_all_queues: bool,
    #[serde(default, deserialize_with = "opt_string")]
    pub status_reason: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub status_message: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct HyperParamItem {
    pub section: String,
    pub name: String,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default, rename = "type")]
    pub param_type: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct EditHyperParams {
    pub task: String,
    pub hyperparams: Vec<HyperParamItem>,
    #[serde(default)]
    pub replace_hyperparams: Option<String>,
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Deserialize, Default)]
pub struct QueueGetAll {
    #[serde(default)]
    pub id: ListQuery,
    #[serde(default, deserialize_with = "opt_string")]
    pub name: Option<String>,
    #[serde(default)]
    pub tags: ListQuery,
    #[serde(default)]
    pub system_tags: ListQuery,
    #[serde(default, deserialize_with = "one_or_many")]
    pub only_fields: Vec<String>,
    #[serde(default)]
    pub page: Option<u64>,
    #[serde(default)]
    pub page_size: Option<u64>,
    #[serde(default)]
    pub max_task_entries: Option<usize>,
    #[serde(default)]
    pub search_hidden: bool,
}

#[derive(Debug, Deserialize)]
pub struct QueueGetById {
    pub queue: String,
    #[serde(default)]
    pub max_task_entries: Option<usize>,
}

#[derive(Debug, Deserialize)]
pub struct QueueCreate {
    pub name: String,
    #[serde(default, deserialize_with = "one_or_many")]
    pub tags: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub system_tags: Vec<String>,
    /// The server's typed map (`apimodels/queues.py` `DictField(value_types=[MetadataItem])`): key → item.
    #[serde(default)]
    pub metadata: Option<std::collections::BTreeMap<String, MetadataItem>>,
    #[serde(default, deserialize_with = "opt_string")]
    pub display_name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct QueueId {
    pub queue: String,
}

#[derive(Debug, Deserialize)]
pub struct QueueDelete {
    pub queue: String,
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Deserialize)]
pub struct GetNextTask {
    pub queue: String,
    #[serde(default)]
    pub get_task_info: bool,
    #[serde(default, deserialize_with = "opt_string")]
    pub task: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct QueueTask {
    pub queue: String,
    pub task: String,
    #[serde(default = "yes")]
    pub update_execution_queue: bool,
    #[serde(default)]
    pub update_task_status: bool,
    #[serde(default)]
    pub count: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct QueueUpdate {
    pub queue: String,
    #[serde(default, deserialize_with = "opt_string")]
    pub name: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub system_tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "opt_string")]
    pub display_name: Option<String>,
    #[serde(default)]
    pub metadata: Option<std::collections::BTreeMap<String, MetadataItem>>,
}

/// `apimodels/metadata.py` `MetadataItem`: key, type and value are all required strings.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct MetadataItem {
    pub key: String,
    #[serde(rename = "type")]
    pub item_type: String,
    pub value: String,
}

#[derive(Debug, Deserialize)]
pub struct QueueMetadata {
    pub queue: String,
    pub metadata: Vec<MetadataItem>,
    #[serde(default)]
    pub replace_metadata: bool,
}

/// `apimodels/workers.py` `Resources` (`workers.register`, schema 2.34).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_usage: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_usage: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct WorkerRegister {
    pub worker: String,
    #[serde(default)]
    pub timeout: Option<i64>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub queues: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub tags: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub system_tags: Vec<String>,
    #[serde(default)]
    pub resources: Option<Resources>,
}

#[derive(Debug, Deserialize)]
pub struct WorkerId {
    pub worker: String,
}

#[derive(Debug, Deserialize)]
pub struct StatusReport {
    pub worker: String,
    pub timestamp: i64,
    #[serde(default, deserialize_with = "opt_string")]
    pub task: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub queue: Option<String>,
    #[serde(default)]
    pub queues: Option<Vec<String>>,
    #[serde(default)]
    pub machine_stats: Option<Value>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, Default)]
pub struct WorkerGetAll {
    #[serde(default)]
    pub last_seen: Option<i64>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub tags: Vec<String>,
}

/// The body clearml-agent's `ResourceMonitor.send_cluster_report` posts (`helper/resource_monitor.py`, 3.0.3). The
/// enterprise schema is not public: what the real agent always sends is required, typed as it sends it.
#[derive(Debug, Deserialize)]
pub struct ClusterReport {
    pub worker: String,
    pub key: String,
    pub timestamp: i64,
    #[serde(default)]
    pub timeout: Option<i64>,
    #[serde(default)]
    pub partial: bool,
    #[serde(default)]
    pub resource_groups: Vec<String>,
    #[serde(default)]
    pub properties: ClusterProperties,
}

#[derive(Debug, Default, Deserialize, serde::Serialize, Clone, PartialEq, Eq)]
pub struct ClusterProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cpus: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_gpus: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_workers: Option<u64>,
}

/// `workers.cluster_unregister` as clearml-agent sends it: only the cluster key.
#[derive(Debug, Deserialize)]
pub struct ClusterUnregister {
    pub key: String,
}

/// `events.get_task_log` at 2.9 (`apimodels/events.py` `LogEventsRequest`).
#[derive(Debug, Deserialize)]
pub struct TaskLog {
    pub task: String,
    #[serde(default = "default_log_batch")]
    pub batch_size: usize,
    #[serde(default = "yes")]
    pub navigate_earlier: bool,
    #[serde(default)]
    pub from_timestamp: Option<i64>,
    #[serde(default, deserialize_with = "opt_string")]
    pub order: Option<String>,
}

fn default_log_batch() -> usize {
    5000
}
