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
    /// No values given: the field does not filter.
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

/// `auth.login`, from the query string or the body.
#[derive(Debug, Deserialize, Default)]
pub struct Login {
    /// Token lifetime in seconds; absent or not positive gives the configured lifetime, more than 31536000 (a year) is
    /// 400/12.
    #[serde(default)]
    pub expiration_sec: Option<i64>,
}

/// `projects.create`.
#[derive(Debug, Deserialize)]
pub struct ProjectCreate {
    /// Unique (400/801), at least 3 characters (400/800); a missing name is 400/11.
    pub name: String,
    /// Free text; the SDK sends an empty one.
    #[serde(default, deserialize_with = "opt_string")]
    pub description: Option<String>,
    /// User tags.
    #[serde(default, deserialize_with = "one_or_many")]
    pub tags: Vec<String>,
    /// System tags; `hidden` leaves the project out of `projects.get_all` unless asked for.
    #[serde(default, deserialize_with = "one_or_many")]
    pub system_tags: Vec<String>,
}

/// `projects.get_all` filters.
#[derive(Debug, Deserialize, Default)]
pub struct ProjectGetAll {
    /// Only these project ids (hidden ones included).
    #[serde(default, deserialize_with = "one_or_many")]
    pub id: Vec<String>,
    /// A regular expression searched in the project name (the SDK sends `^name$`).
    #[serde(default, deserialize_with = "opt_string")]
    pub name: Option<String>,
    /// Return only these fields (`id` always comes back).
    #[serde(default, deserialize_with = "one_or_many")]
    pub only_fields: Vec<String>,
    /// Include projects with the system tag `hidden`.
    #[serde(default)]
    pub search_hidden: bool,
}

/// `projects.get_by_id`.
#[derive(Debug, Deserialize)]
pub struct ProjectGetById {
    /// The project id (400/401 when unknown).
    pub project: String,
}

/// `tasks.create`: a new draft (`created`) owned by the emulator's user; the objects are stored as sent.
#[derive(Debug, Deserialize)]
pub struct TaskCreate {
    /// At least 3 characters (400/800), not unique.
    pub name: String,
    /// `type`: one of the server's task types (`training`, `testing`, `inference`, ..., `custom`); anything else is
    /// 400/12.
    #[serde(rename = "type")]
    pub task_type: String,
    /// User tags.
    #[serde(default, deserialize_with = "one_or_many")]
    pub tags: Vec<String>,
    /// System tags; the SDK sends `development` for a task created by running a script.
    #[serde(default, deserialize_with = "one_or_many")]
    pub system_tags: Vec<String>,
    /// Free-text description.
    #[serde(default, deserialize_with = "opt_string")]
    pub comment: Option<String>,
    /// Id of the task this one was created from (not checked).
    #[serde(default, deserialize_with = "opt_string")]
    pub parent: Option<String>,
    /// Project id; it must exist (400/401); empty means none.
    #[serde(default, deserialize_with = "opt_string")]
    pub project: Option<String>,
    /// `execution` (`queue`, `parameters`, ...).
    #[serde(default)]
    pub execution: Option<Object>,
    /// `script` (repository, entry point, requirements, ...).
    #[serde(default)]
    pub script: Option<Value>,
    /// Section → name → parameter.
    #[serde(default)]
    pub hyperparams: Option<Object>,
    /// Configuration objects.
    #[serde(default)]
    pub configuration: Option<Object>,
    /// Run-time values.
    #[serde(default)]
    pub runtime: Option<Object>,
    /// `image`, `arguments`, `setup_shell_script` (2.13+).
    #[serde(default)]
    pub container: Option<Object>,
    /// Input and output models.
    #[serde(default)]
    pub models: Option<Value>,
    /// Where the task's outputs go; stored as `output.destination`.
    #[serde(default)]
    pub output_dest: Option<String>,
}

/// A body that names only a task: `tasks.get_by_id`, `tasks.ping`, and the artifact, model and configuration calls the
/// emulator accepts without storing anything.
#[derive(Debug, Deserialize)]
pub struct TaskId {
    /// The task id.
    pub task: String,
}

/// `tasks.get_all` (and `tasks.get_all_ex`) filters. The list fields take the server's operators (see [`ListQuery`]);
/// all given filters must match.
#[derive(Debug, Deserialize, Default)]
pub struct TaskGetAll {
    /// Only these task ids; also shows hidden tasks.
    #[serde(default)]
    pub id: ListQuery,
    /// A regular expression searched in the task name.
    #[serde(default, deserialize_with = "opt_string")]
    pub name: Option<String>,
    /// Statuses (`queued`, `in_progress`, ...).
    #[serde(default)]
    pub status: ListQuery,
    /// Project ids.
    #[serde(default)]
    pub project: ListQuery,
    /// Owner user ids.
    #[serde(default)]
    pub user: ListQuery,
    /// `type`: task types.
    #[serde(default, rename = "type")]
    pub task_type: ListQuery,
    /// User tags.
    #[serde(default)]
    pub tags: ListQuery,
    /// System tags.
    #[serde(default)]
    pub system_tags: ListQuery,
    /// Parent task ids.
    #[serde(default)]
    pub parent: ListQuery,
    /// `execution.queue`: ids of the queues the tasks were last enqueued to.
    #[serde(default, rename = "execution.queue")]
    pub execution_queue: ListQuery,
    /// Return only these fields (dotted paths such as `container.image`; `id` always comes back).
    #[serde(default, deserialize_with = "one_or_many")]
    pub only_fields: Vec<String>,
    /// Sort keys, the first one primary; `-field` sorts descending, a missing value sorts first.
    #[serde(default, deserialize_with = "one_or_many")]
    pub order_by: Vec<String>,
    /// Page number, 0-based, in pages of `page_size`.
    #[serde(default)]
    pub page: Option<u64>,
    /// Tasks per page, no upper limit; absent returns every match.
    #[serde(default)]
    pub page_size: Option<u64>,
    /// Include tasks with the system tag `hidden`.
    #[serde(default)]
    pub search_hidden: bool,
}

/// The common body of status-changing calls (`started`, `stopped`, `failed`, `completed`, `stop`, `reset`, ...).
#[derive(Debug, Deserialize)]
pub struct StatusChange {
    /// The task id.
    pub task: String,
    /// Skip the state-machine check; for `tasks.reset` and `tasks.delete`, also allow a published or non-draft task.
    #[serde(default)]
    pub force: bool,
    /// Replaces the task's `status_reason` (empty when absent).
    #[serde(default, deserialize_with = "opt_string")]
    pub status_reason: Option<String>,
    /// Replaces the task's `status_message` (empty when absent); `tasks.stop` writes its own message instead.
    #[serde(default, deserialize_with = "opt_string")]
    pub status_message: Option<String>,
    /// `tasks.completed` only (2.20+): publish the task right after completing it.
    #[serde(default)]
    pub publish: bool,
}

/// `tasks.stop_many` (the web UI's abort): the `tasks.stop` rules applied to each id.
#[derive(Debug, Deserialize)]
pub struct StopMany {
    /// The task ids, each stopped on its own; failures are listed in the answer, not raised.
    pub ids: Vec<String>,
    /// As `tasks.stop {force}`, for every id.
    #[serde(default)]
    pub force: bool,
    /// As `tasks.stop {status_reason}`, for every id.
    #[serde(default, deserialize_with = "opt_string")]
    pub status_reason: Option<String>,
}

/// `tasks.set_requirements`: replaces `script.requirements` (a task with no `script` is 400/122).
#[derive(Debug, Deserialize)]
pub struct SetRequirements {
    /// The task id.
    pub task: String,
    /// The new requirements (`{pip: ...}`), stored as sent.
    pub requirements: Value,
}

/// `tasks.edit`: a draft only, unless `force`. `execution` and `script` are merged one level deep, the other objects
/// replaced whole.
#[derive(Debug, Deserialize)]
pub struct TaskEdit {
    /// The task id.
    pub task: String,
    /// Edit a task that is no longer a draft (400/110 otherwise).
    #[serde(default)]
    pub force: bool,
    /// A new name, at least 3 characters.
    #[serde(default, deserialize_with = "opt_string")]
    pub name: Option<String>,
    /// `type`: a new task type (not checked on edit).
    #[serde(default, rename = "type", deserialize_with = "opt_string")]
    pub task_type: Option<String>,
    /// Replaces the user tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Replaces the system tags.
    #[serde(default)]
    pub system_tags: Option<Vec<String>>,
    /// A new description.
    #[serde(default, deserialize_with = "opt_string")]
    pub comment: Option<String>,
    /// A new parent id; empty clears it.
    #[serde(default, deserialize_with = "opt_string")]
    pub parent: Option<String>,
    /// A new project id (it must exist); empty clears it.
    #[serde(default, deserialize_with = "opt_string")]
    pub project: Option<String>,
    /// Merged one level deep into `execution`.
    #[serde(default)]
    pub execution: Option<Object>,
    /// Merged one level deep into `script`.
    #[serde(default)]
    pub script: Option<Value>,
    /// Replaces every hyperparameter.
    #[serde(default)]
    pub hyperparams: Option<Object>,
    /// Replaces the configuration.
    #[serde(default)]
    pub configuration: Option<Object>,
    /// Replaces `runtime`.
    #[serde(default)]
    pub runtime: Option<Object>,
    /// Replaces `container`.
    #[serde(default)]
    pub container: Option<Object>,
    /// Replaces `models`.
    #[serde(default)]
    pub models: Option<Value>,
    /// Sets the status directly, without the state machine (an unknown name is 400/12).
    #[serde(default, deserialize_with = "opt_string")]
    pub status: Option<String>,
}

/// `tasks.update`: plain field updates with no state-machine check; it stamps only `last_change`.
#[derive(Debug, Deserialize)]
pub struct TaskUpdate {
    /// The task id.
    pub task: String,
    /// A new name.
    #[serde(default, deserialize_with = "opt_string")]
    pub name: Option<String>,
    /// Replaces the user tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Replaces the system tags.
    #[serde(default)]
    pub system_tags: Option<Vec<String>>,
    /// A new description.
    #[serde(default, deserialize_with = "opt_string")]
    pub comment: Option<String>,
    /// A new project id (it must exist); empty clears it.
    #[serde(default, deserialize_with = "opt_string")]
    pub project: Option<String>,
    /// Sets the status directly, without the state machine (an unknown name is 400/12).
    #[serde(default, deserialize_with = "opt_string")]
    pub status: Option<String>,
    /// A new `status_reason`.
    #[serde(default, deserialize_with = "opt_string")]
    pub status_reason: Option<String>,
    /// A new `status_message`: what a glue writes while a task's pod is pending.
    #[serde(default, deserialize_with = "opt_string")]
    pub status_message: Option<String>,
}

/// `tasks.enqueue`.
#[derive(Debug, Deserialize)]
pub struct Enqueue {
    /// The task id.
    pub task: String,
    /// Queue id; give it or `queue_name`, not both (400/12). Neither: the default queue (400/707 when there is none).
    #[serde(default, deserialize_with = "opt_string")]
    pub queue: Option<String>,
    /// Queue name (2.19+); a queue of that name is created when none exists.
    #[serde(default, deserialize_with = "opt_string")]
    pub queue_name: Option<String>,
    /// Skip the state-machine check (e.g. to put a running task back in a queue).
    #[serde(default)]
    pub force: bool,
    /// Stored on the task with the status change.
    #[serde(default, deserialize_with = "opt_string")]
    pub status_reason: Option<String>,
    /// Stored on the task with the status change.
    #[serde(default, deserialize_with = "opt_string")]
    pub status_message: Option<String>,
    /// 2.31+, default `true`. `false` leaves `execution.queue` as it is, allowed only for a task already queued with it
    /// set (400/12 otherwise).
    #[serde(default = "yes")]
    pub update_execution_queue: bool,
}

fn yes() -> bool {
    true
}

/// `tasks.dequeue`.
#[derive(Debug, Deserialize)]
pub struct Dequeue {
    /// The task id; an unknown one is only purged from every queue.
    pub task: String,
    /// 2.26+: the status a queued or running task goes to (default: its status before enqueue, else created); an
    /// unknown name is 400/12.
    #[serde(default, deserialize_with = "opt_string")]
    pub new_status: Option<String>,
    /// 2.25+: leave every queue, not only the one in `execution.queue`.
    #[serde(default)]
    pub remove_from_all_queues: bool,
    /// Stored on the task with the status change.
    #[serde(default, deserialize_with = "opt_string")]
    pub status_reason: Option<String>,
    /// Stored on the task with the status change.
    #[serde(default, deserialize_with = "opt_string")]
    pub status_message: Option<String>,
}

/// One parameter of `tasks.edit_hyper_params`.
#[derive(Debug, Deserialize)]
pub struct HyperParamItem {
    /// The section; `properties` (in any case, stored lower-case) may change on a task that is no longer a draft
    /// without `force`.
    pub section: String,
    /// The parameter's name; an existing one is replaced.
    pub name: String,
    /// Stored as a string: a non-string JSON value as its JSON text, `null` or absent as empty.
    #[serde(default)]
    pub value: Option<Value>,
    /// `type`: a type hint for the UI.
    #[serde(default, rename = "type")]
    pub param_type: Option<String>,
    /// Free-text help for the UI.
    #[serde(default)]
    pub description: Option<String>,
}

/// `tasks.edit_hyper_params`.
#[derive(Debug, Deserialize)]
pub struct EditHyperParams {
    /// The task id.
    pub task: String,
    /// The parameters to add or replace.
    pub hyperparams: Vec<HyperParamItem>,
    /// `all` drops every existing parameter first, `section` the sections named in `hyperparams`; absent (or anything
    /// else) merges.
    #[serde(default)]
    pub replace_hyperparams: Option<String>,
    /// Allow sections other than `properties` on a task that is not a draft (400/110 otherwise).
    #[serde(default)]
    pub force: bool,
}

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

/// `apimodels/workers.py` `Resources` (`workers.register`, schema 2.34).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
pub struct Resources {
    /// The schema's `cpu_usage`, recorded on the worker's queues as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_usage: Option<f64>,
    /// The schema's `gpu_usage`, recorded on the worker's queues as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_usage: Option<f64>,
}

/// `workers.register`.
#[derive(Debug, Deserialize)]
pub struct WorkerRegister {
    /// The worker id; registering again starts its entry afresh.
    pub worker: String,
    /// Seconds it lives without a report: absent or 0 gives 600, a negative value is 400/1002.
    #[serde(default)]
    pub timeout: Option<i64>,
    /// Ids of the queues it serves; each must exist (400/701 naming the unknown ones).
    #[serde(default, deserialize_with = "one_or_many")]
    pub queues: Vec<String>,
    /// Worker tags.
    #[serde(default, deserialize_with = "one_or_many")]
    pub tags: Vec<String>,
    /// System tags.
    #[serde(default, deserialize_with = "one_or_many")]
    pub system_tags: Vec<String>,
    /// Recorded on each of its queues.
    #[serde(default)]
    pub resources: Option<Resources>,
}

/// A body that names only a worker (`workers.unregister`).
#[derive(Debug, Deserialize)]
pub struct WorkerId {
    /// The worker id; an unknown one is not an error.
    pub worker: String,
}

/// `workers.status_report`.
#[derive(Debug, Deserialize)]
pub struct StatusReport {
    /// The worker id; an unknown one is registered on the fly with the default timeout.
    pub worker: String,
    /// Required: milliseconds since the epoch, as clearml-agent sends them (not stored).
    pub timestamp: i64,
    /// The task it runs; it must exist (400/101). Absent clears it.
    #[serde(default, deserialize_with = "opt_string")]
    pub task: Option<String>,
    /// The queue that task came from (not checked); absent clears it.
    #[serde(default, deserialize_with = "opt_string")]
    pub queue: Option<String>,
    /// Replaces its queues when given non-empty.
    #[serde(default)]
    pub queues: Option<Vec<String>>,
    /// Kept as sent, when given.
    #[serde(default)]
    pub machine_stats: Option<Value>,
    /// Replaces its tags, when given.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// `workers.get_all` filters.
#[derive(Debug, Deserialize, Default)]
pub struct WorkerGetAll {
    /// Only workers active in the last this many seconds: default 3600, 0 for every live worker, at least 1 otherwise.
    #[serde(default)]
    pub last_seen: Option<i64>,
    /// Workers with any of these tags; `-x` excludes those tagged `x`.
    #[serde(default, deserialize_with = "one_or_many")]
    pub tags: Vec<String>,
}

/// The body clearml-agent's `ResourceMonitor.send_cluster_report` posts (`helper/resource_monitor.py`, 3.0.3). The
/// enterprise schema is not public: what the real agent always sends is required, typed as it sends it.
#[derive(Debug, Deserialize)]
pub struct ClusterReport {
    /// The reporting worker id.
    pub worker: String,
    /// The cluster key (400/12 when blank); the last report per key is kept.
    pub key: String,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// Seconds until the report expires (clearml-agent: twice its report interval); kept, not enforced.
    #[serde(default)]
    pub timeout: Option<i64>,
    /// clearml-agent's `partial` flag, kept as sent.
    #[serde(default)]
    pub partial: bool,
    /// The resource groups the capacity belongs to (`<cluster>:<group>`).
    #[serde(default)]
    pub resource_groups: Vec<String>,
    /// The capacity limits.
    #[serde(default)]
    pub properties: ClusterProperties,
}

/// `properties` of a cluster report: capacity limits, each only when set.
#[derive(Debug, Default, Deserialize, serde::Serialize, Clone, PartialEq, Eq)]
pub struct ClusterProperties {
    /// Most CPUs the cluster gives tasks at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cpus: Option<u64>,
    /// Most GPUs the cluster gives tasks at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_gpus: Option<u64>,
    /// Most workers (for a k8s glue, task pods) the cluster runs at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_workers: Option<u64>,
}

/// `workers.cluster_unregister` as clearml-agent sends it: only the cluster key.
#[derive(Debug, Deserialize)]
pub struct ClusterUnregister {
    /// The cluster key whose report is dropped.
    pub key: String,
}

/// `events.get_task_log` at 2.9 (`apimodels/events.py` `LogEventsRequest`).
#[derive(Debug, Deserialize)]
pub struct TaskLog {
    /// The task id (400/101 when unknown).
    pub task: String,
    /// At most this many events (default 5000).
    #[serde(default = "default_log_batch")]
    pub batch_size: usize,
    /// Default `true`: the newest events first, older than `from_timestamp`; `false`: the oldest first, newer than it.
    #[serde(default = "yes")]
    pub navigate_earlier: bool,
    /// Milliseconds since the epoch to page from (exclusive); absent starts at the newest or oldest end.
    #[serde(default)]
    pub from_timestamp: Option<i64>,
    /// `asc` or `desc`: flips the page when it runs the other way (default: as navigated).
    #[serde(default, deserialize_with = "opt_string")]
    pub order: Option<String>,
}

fn default_log_batch() -> usize {
    5000
}
