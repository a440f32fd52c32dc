//! The server's state and its rules, without HTTP: each method is one endpoint's behaviour on typed requests, with
//! "now" passed in so tests can pick the clock. The dispatcher (`endpoints.rs`) decodes bodies and wraps results.
//!
//! One [`Store`] holds the whole state; each service's endpoints live in their own module (`projects`, `tasks`,
//! `lifecycle` for status changes and enqueue/dequeue, `queues`, `workers`). The lookups and the status change
//! they share stay here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::model::{Object, Project, Queue, QueueEntry, Task, Worker, project_fields};
use crate::requests as rq;
use crate::status::{TaskStatus, can_transition};
use crate::time::Ts;

mod events;
mod filters;
mod lifecycle;
mod projects;
mod queues;
mod tasks;
mod workers;

pub use queues::Move;

use filters::{ListFilter, MAX_PAGE_SIZE, cmp_json, compile_regex, paginate};

#[cfg(test)]
mod tests;

/// The identity every call runs as: the emulator has one user in one company, the owner of the configured keys.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Identity {
    /// User id (32 hex digits): the owner of every task, queue and worker, and `task_info.user` of a pop.
    pub user: String,
    /// The user's display name; `tasks.stop` writes `Stopped by <user_name>`.
    pub user_name: String,
    /// Company id (32 hex digits), named in "Invalid task id" and "Invalid queue id" messages.
    pub company: String,
    /// The company's display name.
    pub company_name: String,
    /// The role in the token (`user`; the server also knows `admin`, `system`, ...).
    pub role: String,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            user: "e5f4c1c3b6a24c1f9d2b0a8e7c6d5f40".into(),
            user_name: "emulator".into(),
            company: "d1bd92a3b039400cbafc60a7a5b1e52b".into(),
            company_name: "emulator".into(),
            role: "user".into(),
        }
    }
}

/// System tag that hides a queue from `queues.get_all` (the glue's pending queue carries it).
pub const HIDDEN_QUEUE_TAG: &str = "k8s-glue";
/// `apiserver.workers.task_update_timeout`: a task not updated for this long has no live worker for `tasks.stop`.
const TASK_UPDATE_TIMEOUT_SECS: i64 = 600;
const TASK_TYPES: &[&str] = &[
    "training",
    "testing",
    "inference",
    "data_processing",
    "application",
    "monitor",
    "controller",
    "optimizer",
    "service",
    "qc",
    "custom",
];

/// Everything the server knows. Serialised whole to the state file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Store {
    /// Who every call runs as. Not saved: it comes from the configured keys at start.
    #[serde(skip)]
    pub identity: Identity,
    /// Projects by id.
    #[serde(default)]
    pub projects: BTreeMap<String, Project>,
    /// Tasks by id.
    #[serde(default)]
    pub tasks: BTreeMap<String, Task>,
    /// Queues by id.
    #[serde(default)]
    pub queues: BTreeMap<String, Queue>,
    /// Workers by id; expired ones are purged by the worker calls.
    #[serde(default)]
    pub workers: BTreeMap<String, Worker>,
    /// Task log events (`type: log`) by task id, in arrival order: what `events.get_task_log` reads back. Other
    /// event types are counted as added and dropped.
    #[serde(default)]
    pub task_logs: BTreeMap<String, Vec<Value>>,
    /// Enterprise cluster reports by cluster key (`workers.cluster_report`), as last received.
    #[serde(default)]
    pub cluster_reports: BTreeMap<String, Value>,
    #[serde(default)]
    next_seq: u64,
    /// Whether `tasks.enqueue` takes a task that is already `queued` without `force` (a same-status change):
    /// clearml-server 1.17.0 and later ("Allow enqueueing enqueued tasks", commit fa41e14), ClearML Enterprise
    /// 3.22.3 and later. Older servers refused it (`allow_same_state_transition=False`), which is why the glue stops
    /// a task before re-enqueueing it. Not saved: it comes from the configured server version at start.
    #[serde(skip, default = "enqueues_queued")]
    pub enqueues_queued: bool,
}

fn enqueues_queued() -> bool {
    true
}

type Result<T, E = ApiError> = std::result::Result<T, E>;

fn new_id() -> String {
    format!("{:032x}", fastrand::u128(..))
}

fn min_len(what: &str, value: &str) -> Result<()> {
    if value.trim().chars().count() < 3 {
        return Err(ApiError::data_validation(format!(
            "{what} should be at least 3 characters: {what}={value}"
        )));
    }
    Ok(())
}

/// The `fields` object status calls return.
fn status_fields(t: &Task) -> Object {
    let mut m = Map::new();
    m.insert("status".into(), json!(t.status));
    m.insert("status_reason".into(), json!(t.status_reason));
    m.insert("status_message".into(), json!(t.status_message));
    m.insert("status_changed".into(), json!(t.status_changed));
    m.insert("last_update".into(), json!(t.last_update));
    m.insert("last_change".into(), json!(t.last_change));
    m
}

impl Store {
    /// A fresh server: only the `default` queue, as a new clearml-server creates it.
    pub fn new(identity: Identity, now: Ts) -> Self {
        let mut s = Store {
            identity,
            projects: BTreeMap::new(),
            tasks: BTreeMap::new(),
            queues: BTreeMap::new(),
            workers: BTreeMap::new(),
            task_logs: BTreeMap::new(),
            cluster_reports: BTreeMap::new(),
            next_seq: 0,
            enqueues_queued: true,
        };
        s.insert_queue("default", vec![], vec!["default".into()], None, now);
        s
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn task(&self, id: &str) -> Result<&Task> {
        self.tasks
            .get(id)
            .ok_or_else(|| ApiError::invalid_task_id(id, &self.identity.company))
    }

    fn task_mut(&mut self, id: &str) -> Result<&mut Task> {
        let company = self.identity.company.clone();
        self.tasks
            .get_mut(id)
            .ok_or_else(|| ApiError::invalid_task_id(id, &company))
    }

    fn check_project(&self, project: Option<&str>) -> Result<()> {
        match project {
            Some(p) if !p.is_empty() && !self.projects.contains_key(p) => {
                Err(ApiError::invalid_project_id(p))
            }
            _ => Ok(()),
        }
    }

    /// `bll/task/utils.py` `ChangeStatusRequest.execute`: checks the state machine unless forced (the same status
    /// is always allowed), sets status, reason and message, bumps `status_changed`, `last_update` and
    /// `last_change`. Dates such as `started`/`completed` are the calling endpoint's business, as on the server.
    fn change_status(
        &mut self,
        id: &str,
        new: TaskStatus,
        force: bool,
        reason: Option<String>,
        message: Option<String>,
        now: Ts,
    ) -> Result<Object> {
        let t = self.task_mut(id)?;
        if !force && !can_transition(t.status, new) {
            return Err(ApiError::invalid_task_status(
                t.status.as_str(),
                new.as_str(),
            ));
        }
        t.status = new;
        t.status_reason = reason.unwrap_or_default();
        t.status_message = message.unwrap_or_default();
        t.status_changed = now;
        t.last_update = now;
        t.last_change = now;
        if new == TaskStatus::Queued {
            t.system_tags.retain(|s| s != "development");
        }
        Ok(status_fields(t))
    }

    /// `TaskBLL.set_last_update` (pings, event batches): the liveness stamp, plus `active_duration` of a running
    /// task (what `workers.get_all` reports as `running_time`).
    fn touch_task(&mut self, id: &str, now: Ts) -> bool {
        let Some(t) = self.tasks.get_mut(id) else {
            return false;
        };
        if let (TaskStatus::InProgress, Some(started)) = (t.status, t.started) {
            t.active_duration = Some((now.0 - started.0).max(0) as f64 / 1000.0);
        }
        t.last_update = now;
        t.last_change = now;
        true
    }

    /// `queue_bll.py` `_update_task_status_on_removal_from_queue`: tasks whose `execution.queue` is `queue` go
    /// back to their pre-enqueue status (or created), forced, with `reason`; their `execution.queue` and
    /// `enqueue_status` are cleared. Returns the ids it reverted.
    fn revert_removed_tasks(
        &mut self,
        task_ids: &[String],
        queue: &str,
        reason: &str,
        now: Ts,
    ) -> Vec<String> {
        let mut reverted = Vec::new();
        for id in task_ids {
            let Some(t) = self.tasks.get(id) else {
                continue;
            };
            if t.execution_queue() != Some(queue) || reverted.contains(id) {
                continue;
            }
            let back = t.enqueue_status.unwrap_or(TaskStatus::Created);
            if self
                .change_status(id, back, true, Some(reason.to_owned()), None, now)
                .is_ok()
                && let Some(t) = self.tasks.get_mut(id)
            {
                t.enqueue_status = None;
                t.execution.remove("queue");
                reverted.push(id.clone());
            }
        }
        reverted
    }

    /// `services/tasks.conf` `non_responsive_tasks_watchdog`: running tasks with no update for `threshold_secs`
    /// are stopped with "Forced stop (non-responsive)". The server sweeps every `watch_interval_sec`; the
    /// emulator's server sweeps before every call, which a client cannot tell apart. Returns how many stopped.
    pub fn stop_non_responsive_tasks(&mut self, now: Ts, threshold_secs: i64) -> usize {
        let stale: Vec<String> = self
            .tasks
            .values()
            .filter(|t| t.status == TaskStatus::InProgress)
            .filter(|t| t.last_update.plus_secs(threshold_secs) < now)
            .map(|t| t.id.clone())
            .collect();
        let reason = "Forced stop (non-responsive)".to_owned();
        for id in &stale {
            let _ = self.change_status(
                id,
                TaskStatus::Stopped,
                true,
                Some(reason.clone()),
                Some(reason.clone()),
                now,
            );
        }
        stale.len()
    }

    fn insert_queue(
        &mut self,
        name: &str,
        tags: Vec<String>,
        system_tags: Vec<String>,
        display_name: Option<String>,
        now: Ts,
    ) -> String {
        let id = new_id();
        let seq = self.seq();
        self.queues.insert(
            id.clone(),
            Queue {
                id: id.clone(),
                name: name.to_owned(),
                display_name,
                user: self.identity.user.clone(),
                company: self.identity.company.clone(),
                created: now,
                last_update: now,
                tags,
                system_tags,
                entries: vec![],
                metadata: Map::new(),
                resources: None,
                seq,
            },
        );
        id
    }

    fn queue(&self, id: &str) -> Result<&Queue> {
        self.queues
            .get(id)
            .ok_or_else(|| ApiError::invalid_queue_id(id, &self.identity.company))
    }

    fn queue_mut(&mut self, id: &str) -> Result<&mut Queue> {
        let company = self.identity.company.clone();
        self.queues
            .get_mut(id)
            .ok_or_else(|| ApiError::invalid_queue_id(id, &company))
    }

    fn default_queue(&self) -> Result<&Queue> {
        let mut defaults = self
            .queues
            .values()
            .filter(|q| q.system_tags.iter().any(|t| t == "default"));
        match (defaults.next(), defaults.next()) {
            (None, _) => Err(ApiError::no_default_queue()),
            (Some(_), Some(_)) => Err(ApiError::multiple_default_queues()),
            (Some(q), None) => Ok(q),
        }
    }

    /// `TaskBLL.dequeue(silent_fail=True)`: a queued task leaves its execution queue; anything else is a no-op.
    fn leave_execution_queue(&mut self, id: &str) {
        let Some(t) = self.tasks.get(id) else { return };
        if t.status != TaskStatus::Queued {
            return;
        }
        if let Some(q) = t.execution_queue().map(str::to_owned)
            && let Some(q) = self.queues.get_mut(&q)
        {
            q.entries.retain(|e| e.task != id);
        }
    }

    /// Removes the task from every queue; returns how many entries went.
    fn remove_from_all_queues(&mut self, task: &str) -> usize {
        let mut removed = 0;
        for q in self.queues.values_mut() {
            let before = q.entries.len();
            q.entries.retain(|e| e.task != task);
            removed += before - q.entries.len();
        }
        removed
    }
}
