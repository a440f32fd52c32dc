//! `tasks.*` request bodies.

use serde::Deserialize;
use serde_json::Value;

use super::{ListQuery, one_or_many, opt_string, yes};
use crate::model::Object;

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
