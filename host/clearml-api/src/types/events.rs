//! Events: console lines (`events.add_batch`) and the task log read back.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
