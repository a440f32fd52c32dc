//! Tasks: the task document, its status, and the bodies of the `tasks.*` calls the agent makes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A task status. Unknown future statuses deserialise as [`TaskStatus::Other`] instead of failing the response.
/// Which status may follow which is the server's state machine (`force: true` bypasses it), see
/// `shared/reference/clearml-api.md` §6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// A draft: the only status `tasks.edit` accepts without `force`, and where `tasks.reset` and a dequeue of a
    /// task that was a draft before it was enqueued send it back.
    Created,
    /// Waiting in a queue (`tasks.enqueue`) for a worker, or for the agent, to pop it.
    Queued,
    /// Running: set by `tasks.started`, which the in-pod `clearml-agent execute` calls.
    InProgress,
    /// Aborted (`tasks.stop`/`tasks.stopped`, or the server's non-responsive-task watchdog); the agent deletes the
    /// pod of a task that ends up here.
    Stopped,
    /// Published: read-only, final; no transition leaves it.
    Published,
    /// On its way to `published` (the only status it can go to).
    Publishing,
    /// Closed (a legacy status); it can still move to created, failed, stopped, publishing or published.
    Closed,
    /// The run failed (`tasks.failed`); the agent sets it, forced, when it cannot create the task's pod.
    Failed,
    /// The run ended successfully (`tasks.completed`).
    Completed,
    /// The server's own `unknown` status.
    Unknown,
    /// A status this client does not know (a newer server). Only ever read, never sent.
    #[serde(other)]
    Other,
}

impl TaskStatus {
    /// The wire name (`in_progress`, `queued`, ...); [`TaskStatus::Other`] reads as `unknown`.
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
    /// The docker image to run the task in (the SDK's `docker=`). Absent or empty: the queue's `defaultImage`,
    /// else the agent's `defaultContainerImage`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Extra `docker run` arguments as one string (the SDK's `docker_args`, e.g. `-e FOO=1 --ipc=host`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
    /// A bash script to run in the container before the task (the SDK's `docker_bash_setup_script`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup_shell_script: Option<String>,
}

/// `task.execution`; only `queue` is interpreted, the rest is kept as is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Execution {
    /// Id (not name) of the queue the task was last enqueued to; set by `tasks.enqueue` and `queues.add_task`,
    /// cleared by `tasks.reset`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Every other `execution` field (`parameters`, `docker_cmd`, ...), passed through untouched.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// One hyperparameter (`hyperparams.<section>.<name>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HyperParam {
    /// The section it belongs to (`Args`, `General`; `properties` for what a glue writes, such as `k8s-queue`).
    pub section: String,
    /// Its name within the section.
    pub name: String,
    /// The value; the server stores every value as a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The type hint the SDK records (`str`, `int`, `float`, ...), for the UI; the value is a string regardless.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub param_type: Option<String>,
    /// Free-text help shown in the UI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A task document (any subset of it, per `only_fields`). Dates are ISO-8601 UTC strings, as the server prints
/// them (`2026-11-30T05:01:32.123000+00:00`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Task {
    /// The task id (32 hex digits). The server returns it even when `only_fields` leaves it out.
    pub id: String,
    /// Display name: at least 3 characters, not unique.
    pub name: String,
    /// `training`, `testing`, `inference`, `data_processing`, `application`, `monitor`, `controller`,
    /// `optimizer`, `service`, `qc` or `custom`.
    #[serde(rename = "type")]
    pub task_type: Option<String>,
    /// Where the task is in its lifecycle; `None` when `only_fields` left it out.
    pub status: Option<TaskStatus>,
    /// Why the last status change happened, as the status call that made it said (e.g. `k8s pending scheduler`).
    pub status_reason: Option<String>,
    /// Free text shown next to the status in the UI: where the agent reports pod progress. `tasks.stop` on a task
    /// a worker is running sets it to `stopping`, the worker's cue to abort.
    pub status_message: Option<String>,
    /// When the status last changed.
    pub status_changed: Option<String>,
    /// Id of the user who owns the task (the one who created it).
    pub user: Option<String>,
    /// Id of the company (tenant) the task belongs to.
    pub company: Option<String>,
    /// Id (not name) of the task's project; `None` for a task outside any project.
    pub project: Option<String>,
    /// Id of the task this one was created from (a pipeline step's controller, a clone's original).
    pub parent: Option<String>,
    /// Free-text description (the SDK writes `Auto-generated at ... by user@host`).
    pub comment: Option<String>,
    /// User tags, set in the UI or the SDK.
    pub tags: Vec<String>,
    /// Tags set by the system and clients: `development` (dropped on enqueue), `hidden` (left out of
    /// `tasks.get_all` unless asked), `archived`, ...
    pub system_tags: Vec<String>,
    /// When the task was created.
    pub created: Option<String>,
    /// When the run started (set by `tasks.started` only).
    pub started: Option<String>,
    /// When the run ended (set by `stopped`, `failed` and `completed`).
    pub completed: Option<String>,
    /// The last sign of life, e.g. a status change, ping, event batch or a worker's status report naming the task.
    /// `tasks.stop` treats a task not updated for 600 s as having no live worker.
    pub last_update: Option<String>,
    /// Id of the last worker that reported running this task (`workers.status_report {task}`); empty means no
    /// worker ever did, and `tasks.stop` then stops it at once.
    pub last_worker: Option<String>,
    /// How and where to run: the queue, script parameters, docker command.
    pub execution: Option<Execution>,
    /// The docker image and arguments the task asks for.
    pub container: Option<Container>,
    /// Hyperparameters by section, then by name.
    pub hyperparams: Option<BTreeMap<String, BTreeMap<String, HyperParam>>>,
    /// Values the SDK and clearml-agent record while the task runs (free-form); cleared by `tasks.reset`.
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

/// `tasks.get_all` filters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TasksGetAll {
    /// Only these task ids (hidden tasks included).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub id: Vec<String>,
    /// Only tasks in one of these statuses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<TaskStatus>,
    /// A regular expression searched in the task name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Only tasks in one of these projects (ids).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub project: Vec<String>,
    /// Tasks with any of these tags; `-x` excludes those tagged `x`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The same filter on system tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub system_tags: Vec<String>,
    /// Only tasks whose `execution.queue` is one of these queue ids.
    #[serde(rename = "execution.queue", skip_serializing_if = "Vec::is_empty")]
    pub execution_queue: Vec<String>,
    /// Return only these fields (dotted paths such as `execution.queue`; `id` always comes back), so a task with a
    /// large script or configuration costs no more than a small one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub only_fields: Vec<String>,
    /// Include tasks with the system tag `hidden`, left out otherwise unless `id` is given.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub search_hidden: bool,
    /// Page number, 0-based, in pages of `page_size`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    /// Tasks per page; absent returns every match at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
}

/// Body of the status calls (`started`, `stopped`, `failed`, `stop`, ...).
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusChange {
    /// The task id.
    pub task: String,
    /// Skip the state-machine check, e.g. to fail a queued task whose pod could not be created, or to start a
    /// task from any status as the in-pod `clearml-agent execute` does.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    /// Stored as the task's `status_reason`; absent leaves it empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// Stored as the task's `status_message`; absent leaves it empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
}

impl StatusChange {
    /// A plain status change of `task`: not forced, no reason, no message.
    pub fn new(task: impl Into<String>) -> Self {
        StatusChange {
            task: task.into(),
            ..Default::default()
        }
    }

    /// Skips the state-machine check (`force: true`).
    pub fn force(mut self) -> Self {
        self.force = true;
        self
    }

    /// Sets `status_reason`.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.status_reason = Some(reason.into());
        self
    }

    /// Sets `status_message`.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.status_message = Some(message.into());
        self
    }
}

/// What a status call changed.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Updated {
    /// How many tasks changed: 1, or 0 when nothing did.
    pub updated: u32,
    /// The changed fields and their new values (`status`, `status_reason`, `status_changed`, `last_update`, ...;
    /// nested ones by dotted path such as `execution.queue`).
    pub fields: Map<String, Value>,
}

/// `tasks.enqueue`: status → queued, push onto the queue, set `execution.queue`, leave every other queue. On a
/// failed push the server reverts the status.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Enqueue {
    /// The task id.
    pub task: String,
    /// Queue id. Give this or `queue_name` (not both); neither means the default queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Queue name (2.19+); the server creates the queue if it does not exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_name: Option<String>,
    /// Skip the state-machine check, e.g. to put a running task back in a queue.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    /// Stored as the task's `status_reason` (the glue's pending queue uses `k8s pending scheduler`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// Stored as the task's `status_message`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// 2.31+: `false` keeps `execution.queue` (only valid for a task already queued with it set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_execution_queue: Option<bool>,
}

/// What `tasks.enqueue` did.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Enqueued {
    /// 1 when the task was pushed onto the queue.
    pub queued: u32,
    /// How many tasks changed status (1).
    pub updated: u32,
    /// The changed fields, as in [`Updated::fields`], with `execution.queue` when it was set.
    pub fields: Map<String, Value>,
}

/// `tasks.dequeue`: the task leaves its execution queue; a queued or running task goes back to `new_status`, else
/// the status it had before it was enqueued, else created (forced).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Dequeue {
    /// The task id.
    pub task: String,
    /// 2.26+: the status to leave a queued/running task in (default: its status before enqueue).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_status: Option<TaskStatus>,
    /// 2.25+: leave every queue, not only the one in `execution.queue`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub remove_from_all_queues: bool,
    /// Stored as the task's `status_reason` when its status changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// Stored as the task's `status_message` when its status changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
}

/// What `tasks.dequeue` did.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Dequeued {
    /// 1: the server answers so even for a task that was in no queue (or no longer exists).
    pub dequeued: u32,
    /// 1 when the status changed, 0 when the task was neither queued nor running.
    pub updated: u32,
    /// The changed fields, as in [`Updated::fields`].
    pub fields: Map<String, Value>,
}

/// `tasks.update`: plain field updates, with no state-machine check (used for `status_message`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TaskUpdate {
    /// The task id.
    pub task: String,
    /// A new name (at least 3 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Replaces the whole list of user tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Replaces the whole list of system tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_tags: Option<Vec<String>>,
    /// A new `status_reason`, the status itself unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// A new `status_message`, the status itself unchanged (what users see while a pod is pending).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
}

/// `tasks.edit`. Without `force` the task must still be a draft (`created`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TaskEdit {
    /// The task id.
    pub task: String,
    /// Edit a task that is no longer a draft (400/110 otherwise), as the SDK and the glue do.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    /// A new name (at least 3 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Replaces the whole list of user tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Replaces the whole list of system tags.
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
    /// The section; `properties` (any case) may be edited on a task that is no longer a draft without `force`.
    pub section: String,
    /// The parameter's name within the section; an existing one is replaced.
    pub name: String,
    /// The value (the server keeps values as strings).
    pub value: String,
    /// Type hint for the UI (`str`, `int`, ...).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub param_type: Option<String>,
    /// Free-text help shown in the UI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl HyperParamItem {
    /// An item with no type hint or description.
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

/// `tasks.stop_many` (what the web UI's abort sends): each id stopped as by `tasks.stop`; failures are listed,
/// not raised.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct StopMany {
    /// The ids that were stopped (or, when a worker runs them, asked to stop).
    pub succeeded: Vec<BatchSucceeded>,
    /// The ids that could not be (unknown id, illegal status change), each with the server's error.
    pub failed: Vec<BatchFailed>,
}

/// One id a batch call changed.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct BatchSucceeded {
    /// The task id.
    pub id: String,
    /// How many tasks changed (1).
    pub updated: u32,
    /// The changed fields, as in [`Updated::fields`].
    pub fields: Map<String, Value>,
}

/// One id a batch call could not change.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct BatchFailed {
    /// The task id.
    pub id: String,
    /// Why, as the single call would have failed.
    pub error: BatchError,
}

/// One id's failure in a batch call: `codes` = `[result_code, result_subcode]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct BatchError {
    /// `[result_code, result_subcode]`, e.g. `[400, 101]` for an unknown task id (see [`crate::codes`]).
    pub codes: Vec<u32>,
    /// The server's message for it (`Invalid task id: ...`).
    pub msg: String,
}
