//! The documents the emulator keeps: projects, tasks, queues, workers. Serialised as-is both for the state file and
//! (after [`Task::to_wire`] etc.) for responses, so the wire names are the field names.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::status::TaskStatus;
use crate::time::Ts;

/// A JSON object, for the parts of a task the emulator stores but does not interpret (script, hyperparams, ...).
pub type Object = Map<String, Value>;

/// A project (`projects.*`): only what the SDK's find-or-create of a project by name needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Project {
    /// The project id (32 hex digits), what tasks store in `project`.
    pub id: String,
    /// The full name, unique, at least 3 characters; `/` separates a subproject from its parents (`team/exp`).
    pub name: String,
    /// The last `/` part of the name.
    #[serde(default)]
    pub basename: String,
    /// Free-text description (the SDK sends an empty one).
    #[serde(default)]
    pub description: String,
    /// User tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// System tags; `hidden` leaves the project out of `projects.get_all` unless `search_hidden` or `id` is given.
    #[serde(default)]
    pub system_tags: Vec<String>,
    /// Id of the user who created it.
    pub user: String,
    /// Id of the company it belongs to.
    pub company: String,
    /// When it was created; `projects.get_all` lists in this order.
    pub created: Ts,
    /// When it last changed.
    pub last_update: Ts,
}

/// A task document. Dates serialise as ISO-8601 UTC strings, like the server's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    /// The task id (32 hex digits).
    pub id: String,
    /// Display name: at least 3 characters, not unique.
    pub name: String,
    /// One of clearml-server's task types (`training`, `inference`, `controller`, ...); checked on create.
    #[serde(rename = "type")]
    pub task_type: String,
    /// Id of the owner (the emulator's one user).
    pub user: String,
    /// Id of the company (the emulator's one company).
    pub company: String,
    /// Project id; `None` outside any project (an empty string from a client is stored as `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Id of the task this one was created from, as the client set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Free-text description.
    #[serde(default)]
    pub comment: String,
    /// Where the task is in the state machine ([`crate::status`]).
    pub status: TaskStatus,
    /// Why the last status change happened; every status change replaces it (empty when the call gave none).
    #[serde(default)]
    pub status_reason: String,
    /// Text shown next to the status; `stopping` asks the task's worker to abort it (`tasks.stop`).
    #[serde(default)]
    pub status_message: String,
    /// When the status last changed.
    pub status_changed: Ts,
    /// When the task was created.
    pub created: Ts,
    /// When the run started; set only by `tasks.started`, cleared by `tasks.reset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<Ts>,
    /// When the run ended (`stopped`, `failed`, `completed`); cleared by a new start or a reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<Ts>,
    /// The last sign of life of the run: status changes, pings, event batches, status reports naming the task,
    /// edits of run fields. `tasks.stop` and the non-responsive watchdog judge a task by it.
    pub last_update: Ts,
    /// The last change of any kind, including those that are not a sign of life (`tasks.update`, an edit of the
    /// `properties` hyperparameters).
    pub last_change: Ts,
    /// Seconds the task has been running, as of its last ping or event batch (`TaskBLL.set_last_update`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_duration: Option<f64>,
    /// The worker that last reported running this task (`workers.status_report {task}`); cleared by reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_worker: Option<String>,
    /// When that report came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_worker_report: Option<Ts>,
    /// User tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// System tags: `development` (dropped on enqueue; such a task stops at once on `tasks.stop`), `hidden`
    /// (left out of `tasks.get_all` unless asked), `archived` (may be deleted unforced).
    #[serde(default)]
    pub system_tags: Vec<String>,
    /// `execution`: `queue` (the queue id, see [`Task::execution_queue`]) and whatever else the client sent.
    #[serde(default)]
    pub execution: Object,
    /// `container`: `image`, `arguments`, `setup_shell_script`, stored as sent and replaced whole by an edit.
    #[serde(default)]
    pub container: Object,
    /// `script` (repository, entry point, `requirements`, ...), stored as sent; an edit merges it one level deep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<Value>,
    /// Section → name → `{section, name, value, type, description}`; values are stored as strings.
    #[serde(default)]
    pub hyperparams: Object,
    /// Configuration objects, stored as sent and not interpreted.
    #[serde(default)]
    pub configuration: Object,
    /// Values clients record while the task runs; cleared by reset.
    #[serde(default)]
    pub runtime: Object,
    /// Input and output models, stored as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Value>,
    /// `{destination}`, from `tasks.create {output_dest}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// The status a task had when it was enqueued, restored by dequeue/remove_task. Hidden from responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enqueue_status: Option<TaskStatus>,
    /// Insertion order: listings come back in creation order, like MongoDB's natural order.
    #[serde(default)]
    pub seq: u64,
}

impl Task {
    /// The queue id in `execution.queue`, if any.
    pub fn execution_queue(&self) -> Option<&str> {
        self.execution
            .get("queue")
            .and_then(Value::as_str)
            .filter(|q| !q.is_empty())
    }

    /// The response form: the stored document without internal fields.
    pub fn to_wire(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.remove("enqueue_status");
            m.remove("seq");
        }
        v
    }
}

/// One waiting task in a queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueEntry {
    /// The task id. An entry may outlive its task, as on the server.
    pub task: String,
    /// When the task joined the queue.
    pub added: Ts,
}

/// A queue: a FIFO of task ids.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Queue {
    /// The queue id (32 hex digits).
    pub id: String,
    /// Unique name, at least 3 characters.
    pub name: String,
    /// The name the UI shows instead, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Id of the user who created it.
    pub user: String,
    /// Id of its company.
    pub company: String,
    /// When it was created.
    pub created: Ts,
    /// When its entries or fields last changed.
    pub last_update: Ts,
    /// User tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// System tags: `default` marks the default queue, [`crate::HIDDEN_QUEUE_TAG`] hides it from `get_all`.
    #[serde(default)]
    pub system_tags: Vec<String>,
    /// The waiting tasks, head (next to pop) first.
    #[serde(default)]
    pub entries: Vec<QueueEntry>,
    /// The server's typed map: key → `{key, type, value}` (strings).
    #[serde(default)]
    pub metadata: Object,
    /// What the workers serving this queue registered (`workers.register {resources}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Value>,
    /// Insertion order: listings come back in creation order. Hidden from responses.
    #[serde(default)]
    pub seq: u64,
}

impl Queue {
    /// The response form: without `seq`, and with at most `max_task_entries` entries (absent or 0: all).
    pub fn to_wire(&self, max_task_entries: Option<usize>) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.remove("seq");
            // queue_bll.py: `if max_task_entries:` slices the entries; 0 (like absent) returns them all.
            if let (Some(max), Some(Value::Array(entries))) = (
                max_task_entries.filter(|max| *max > 0),
                m.get_mut("entries"),
            ) {
                entries.truncate(max);
            }
        }
        v
    }
}

/// A worker (kept in Redis by the real server, with a time-to-live refreshed by every report).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Worker {
    /// The worker id the client chose.
    pub id: String,
    /// Id of the user it runs as.
    pub user: String,
    /// Id of its company.
    pub company: String,
    /// Its address as the server saw it (always the loopback address here).
    #[serde(default)]
    pub ip: String,
    /// When it registered (or was registered on the fly by its first report).
    pub register_time: Ts,
    /// Its last register or status report: what expiry and `workers.get_all {last_seen}` count from.
    pub last_activity_time: Ts,
    /// Its last status report; `None` when it only registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_report_time: Option<Ts>,
    /// Seconds without activity after which the worker disappears.
    pub timeout: i64,
    /// Ids of the queues it serves.
    #[serde(default)]
    pub queues: Vec<String>,
    /// Worker tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// System tags it registered with.
    #[serde(default)]
    pub system_tags: Vec<String>,
    /// The task it runs, as of its last report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The queue that task came from, as of its last report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The last `machine_stats` it sent, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_stats: Option<Value>,
}

impl Worker {
    /// Whether `timeout` seconds have passed since its last activity: the server's Redis entry would be gone.
    pub fn expired(&self, now: Ts) -> bool {
        self.last_activity_time.plus_secs(self.timeout) < now
    }
}

/// Keeps only the listed fields (dotted paths, as `only_fields` sends them) of a response document. `id` is always
/// kept, as the real server does.
pub fn project_fields(doc: &Value, only_fields: &[String]) -> Value {
    if only_fields.is_empty() {
        return doc.clone();
    }
    let mut out = Value::Object(Map::new());
    if let Some(id) = doc.get("id") {
        set_path(&mut out, &["id"], id.clone());
    }
    for field in only_fields {
        let path: Vec<&str> = field.split('.').collect();
        if let Some(v) = get_path(doc, &path) {
            set_path(&mut out, &path, v.clone());
        }
    }
    out
}

fn get_path<'a>(doc: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |cur, key| cur.get(key))
}

fn set_path(out: &mut Value, path: &[&str], v: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = out;
    for key in parents {
        let Value::Object(m) = cur else { return };
        cur = m
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if let Value::Object(m) = cur {
        m.insert((*last).to_owned(), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_fields_keeps_nested_paths_and_id() {
        let doc = json!({"id": "t", "name": "n", "container": {"image": "i", "arguments": "a"}, "status": "created"});
        let got = project_fields(
            &doc,
            &["container.image".into(), "status".into(), "missing".into()],
        );
        assert_eq!(
            got,
            json!({"id": "t", "container": {"image": "i"}, "status": "created"})
        );
    }
}
