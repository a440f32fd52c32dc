//! The documents the emulator keeps: projects, tasks, queues, workers. Serialised as-is both for the state file and
//! (after [`Task::to_wire`] etc.) for responses, so the wire names are the field names.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::status::TaskStatus;
use crate::time::Ts;

/// A JSON object, for the parts of a task the emulator stores but does not interpret (script, hyperparams, ...).
pub type Object = Map<String, Value>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub basename: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub system_tags: Vec<String>,
    pub user: String,
    pub company: String,
    pub created: Ts,
    pub last_update: Ts,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub task_type: String,
    pub user: String,
    pub company: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(default)]
    pub comment: String,
    pub status: TaskStatus,
    #[serde(default)]
    pub status_reason: String,
    #[serde(default)]
    pub status_message: String,
    pub status_changed: Ts,
    pub created: Ts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<Ts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<Ts>,
    pub last_update: Ts,
    pub last_change: Ts,
    /// Seconds the task has been running, as of its last ping or event batch (`TaskBLL.set_last_update`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_duration: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_worker: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_worker_report: Option<Ts>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub system_tags: Vec<String>,
    #[serde(default)]
    pub execution: Object,
    #[serde(default)]
    pub container: Object,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<Value>,
    #[serde(default)]
    pub hyperparams: Object,
    #[serde(default)]
    pub configuration: Object,
    #[serde(default)]
    pub runtime: Object,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Value>,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueEntry {
    pub task: String,
    pub added: Ts,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Queue {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub user: String,
    pub company: String,
    pub created: Ts,
    pub last_update: Ts,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub system_tags: Vec<String>,
    #[serde(default)]
    pub entries: Vec<QueueEntry>,
    /// The server's typed map: key → `{key, type, value}` (strings).
    #[serde(default)]
    pub metadata: Object,
    /// What the workers serving this queue registered (`workers.register {resources}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Value>,
    #[serde(default)]
    pub seq: u64,
}

impl Queue {
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
    pub id: String,
    pub user: String,
    pub company: String,
    #[serde(default)]
    pub ip: String,
    pub register_time: Ts,
    pub last_activity_time: Ts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_report_time: Option<Ts>,
    /// Seconds without activity after which the worker disappears.
    pub timeout: i64,
    #[serde(default)]
    pub queues: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub system_tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_stats: Option<Value>,
}

impl Worker {
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
