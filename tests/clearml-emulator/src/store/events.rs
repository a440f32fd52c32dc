//! `events.*` (clearml-server `services/events.py`, `bll/event/event_bll.py` `add_events`): batches are checked
//! and counted like the server does; task log events are kept so `events.get_task_log` can read them back;
//! metrics, plots and debug images are counted as added and dropped. Every task an accepted event names gets its
//! `last_update` refreshed: event batches are how a running task shows it is alive.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::*;

/// `bll/event/event_type.py` `EventType` values.
const EVENT_TYPES: &[&str] = &[
    "training_stats_scalar",
    "training_stats_vector",
    "training_debug_image",
    "plot",
    "log",
];
const TASK_LOG: &str = "log";

impl Store {
    /// `events.add_batch` (and `events.add` with one event): `{added, errors, errors_info}`. An empty batch is
    /// 400/17; a batch where nothing could be added is 400/131 naming the reasons.
    pub fn events_add(&mut self, events: Vec<Value>, worker: &str, now: Ts) -> Result<Value> {
        if events.is_empty() {
            return Err(ApiError::new(400, 17, "Batch request contains no items"));
        }
        let mut errors: BTreeMap<String, u64> = BTreeMap::new();
        let mut used: Vec<String> = Vec::new();
        let mut added = 0u64;
        for event in events {
            let Value::Object(mut e) = event else {
                *errors.entry("Event must be an object".into()).or_default() += 1;
                continue;
            };
            let Some(kind) = e.get("type").and_then(Value::as_str) else {
                *errors
                    .entry("Event must have a 'type' field".into())
                    .or_default() += 1;
                continue;
            };
            let kind = kind.replace(' ', "_");
            if !EVENT_TYPES.contains(&kind.as_str()) {
                *errors
                    .entry(format!("Invalid event type {kind}"))
                    .or_default() += 1;
                continue;
            }
            let Some(task) = e.get("task").and_then(Value::as_str).map(str::to_owned) else {
                *errors
                    .entry("Event must have a 'task' field".into())
                    .or_default() += 1;
                continue;
            };
            if !self.tasks.contains_key(&task) {
                *errors.entry(format!("Invalid task id {task}")).or_default() += 1;
                continue;
            }
            added += 1;
            if !used.contains(&task) {
                used.push(task.clone());
            }
            if kind != TASK_LOG {
                continue;
            }
            if let Some(ts) = e.remove("ts") {
                e.insert("timestamp".into(), ts);
            }
            e.entry("timestamp").or_insert(json!(now.0));
            e.entry("worker").or_insert(json!(worker));
            e.insert("type".into(), json!(kind));
            e.insert("@timestamp".into(), json!(now));
            for key in ["metric", "variant"] {
                if !e.get(key).is_some_and(Value::is_string) {
                    e.insert(key.into(), json!(""));
                }
            }
            self.task_logs
                .entry(task)
                .or_default()
                .push(Value::Object(e));
        }
        for task in &used {
            self.touch_task(task, now);
        }
        if added == 0 {
            let detail: Vec<String> = errors.iter().map(|(k, v)| format!("{k}={v}")).collect();
            return Err(ApiError::new(
                400,
                131,
                format!("Events not added: {}", detail.join(", ")),
            ));
        }
        let count: u64 = errors.values().sum();
        let info: Map<String, Value> = errors.into_iter().map(|(k, v)| (k, json!(v))).collect();
        Ok(json!({ "added": added, "errors": count, "errors_info": info }))
    }

    /// `events.get_task_log` as of 2.9: the newest `batch_size` log events first (`navigate_earlier`, the
    /// default), or the oldest first after `from_timestamp` without it; `order` flips the page as the server
    /// does. `total` counts every log event of the task.
    pub fn events_get_task_log(&self, r: rq::TaskLog) -> Result<Value> {
        self.task(&r.task)?;
        let all = self.task_logs.get(&r.task).map_or(&[][..], Vec::as_slice);
        let ts = |e: &Value| e.get("timestamp").and_then(Value::as_i64).unwrap_or(0);
        let mut sorted: Vec<&Value> = all.iter().collect();
        sorted.sort_by_key(|e| ts(e));
        let mut page: Vec<&Value> = if r.navigate_earlier {
            sorted
                .into_iter()
                .rev()
                .filter(|e| r.from_timestamp.is_none_or(|from| ts(e) < from))
                .take(r.batch_size)
                .collect()
        } else {
            sorted
                .into_iter()
                .filter(|e| r.from_timestamp.is_none_or(|from| ts(e) > from))
                .take(r.batch_size)
                .collect()
        };
        let flip = match r.order.as_deref() {
            Some("asc") => r.navigate_earlier,
            Some("desc") => !r.navigate_earlier,
            _ => false,
        };
        if flip {
            page.reverse();
        }
        Ok(json!({ "events": page, "returned": page.len(), "total": all.len() }))
    }
}
