//! Wire types: request bodies and response `data` of the endpoints the agent calls. Responses are lenient (every
//! field defaults) because `only_fields` trims documents and servers add fields over time; requests omit unset
//! optional fields so the server applies its own defaults.

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

/// `workers.register`: announce a worker and the queues it serves; status reports keep it alive afterwards.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkerRegister {
    /// The worker id, unique per user; registering an existing id starts its entry afresh.
    pub worker: String,
    /// Seconds without a report after which the server forgets the worker (server default 600).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    /// Queue ids the worker listens on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<String>,
    /// Worker tags, shown in the UI and filterable in `workers.get_all`; on an open-source server the only place
    /// for extra capacity information.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// Machine statistics of a status report. Per-GPU values are arrays: the GPU count is their length (there is no
/// `gpu_count` field). Memory in MB.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MachineStats {
    /// CPU use per core, in percent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpu_usage: Vec<f64>,
    /// Utilisation per GPU, in percent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpu_usage: Vec<f64>,
    /// Free memory per GPU, MB.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpu_memory_free: Vec<f64>,
    /// Used memory per GPU, MB.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpu_memory_used: Vec<f64>,
    /// Temperature per GPU, °C.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpu_temperature: Vec<f64>,
    /// Host memory in use, MB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_used: Option<f64>,
    /// Host memory free, MB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_free: Option<f64>,
}

/// `workers.status_report`: the worker's heartbeat. Every report refreshes its `timeout`; an unknown worker is
/// registered on the fly.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusReport {
    /// The worker id.
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
    /// Resource use at the time of the report, for the workers page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_stats: Option<MachineStats>,
    /// Worker tags; absent keeps the registered ones.
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
    /// The `partial` flag of clearml-agent's body, sent as is (`false` unless set); what the dashboard does with
    /// it is in the enterprise schema, which is not public.
    pub partial: bool,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// Seconds until the report expires (clearml-agent: twice its report interval).
    pub timeout: Option<u32>,
    /// The resource groups the capacity belongs to (`<cluster>:<group>`, see [`ClusterReport::new`]).
    pub resource_groups: Vec<String>,
    /// Most GPUs the cluster gives tasks at once (`properties.max_gpus`).
    pub max_gpus: Option<u32>,
    /// Most CPUs the cluster gives tasks at once (`properties.max_cpus`).
    pub max_cpus: Option<u32>,
    /// Most workers the cluster runs at once; for a k8s glue, task pods (`properties.max_workers`).
    pub max_workers: Option<u32>,
    /// Further top-level fields, sent as they are; the named fields above win over a key of the same name.
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

/// A task console line for `events.add_batch` (event type `log`), e.g. a pod event the agent surfaces.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogEvent {
    /// Id of the task whose console the line goes to.
    pub task: String,
    /// Always `log` when sent; kept so events read back from `events.get_task_log` round-trip.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Milliseconds since the epoch; the server stamps the arrival time when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// `info`, `warning`, `error`, ...
    pub level: String,
    /// The line's text.
    pub msg: String,
    /// The worker the line is from; absent when sent, the server records the worker named by the request's
    /// `X-ClearML-Worker` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
}

impl LogEvent {
    /// A `log` event for `task` with no timestamp (the server stamps the arrival time) and no worker.
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
    /// Events stored.
    pub added: u32,
    /// Events rejected.
    pub errors: u32,
    /// Rejected events counted by reason (`"Invalid task id <id>": 1`).
    pub errors_info: Map<String, Value>,
}

/// `events.get_task_log` reply (2.9): the newest events first unless asked otherwise.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct TaskLog {
    /// This page of console lines.
    pub events: Vec<LogEvent>,
    /// How many events this page holds.
    pub returned: u32,
    /// How many log events the task has in all.
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
