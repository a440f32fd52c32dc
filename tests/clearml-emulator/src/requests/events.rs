//! `events.*` request bodies.

use serde::Deserialize;

use super::{opt_string, yes};

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
