//! The server's state and its rules, without HTTP: each method is one endpoint's behaviour on typed requests, with
//! "now" passed in so tests can pick the clock. The dispatcher (`endpoints.rs`) decodes bodies and wraps results.
//!
//! One [`Store`] holds the whole state; each service's endpoints live in their own module (`projects`, `tasks`,
//! `lifecycle` for status changes and enqueue/dequeue, `queues`, `workers`). The lookups and the status change
//! they share stay here.

use std::collections::BTreeMap;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::model::{Object, Project, Queue, QueueEntry, Task, Worker, project_fields};
use crate::requests as rq;
use crate::status::{TaskStatus, can_transition};
use crate::time::Ts;

mod lifecycle;
mod projects;
mod queues;
mod tasks;
mod workers;

pub use queues::Move;

#[cfg(test)]
mod tests;

/// The identity every call runs as: the emulator has one user in one company, the owner of the configured keys.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub user_name: String,
    pub company: String,
    pub company_name: String,
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
/// A worker with no report for this long does not count as live for `tasks.stop`.
const LIVE_WORKER_SECS: i64 = 600;
const MAX_PAGE_SIZE: u64 = 500;
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
    #[serde(skip)]
    pub identity: Identity,
    #[serde(default)]
    pub projects: BTreeMap<String, Project>,
    #[serde(default)]
    pub tasks: BTreeMap<String, Task>,
    #[serde(default)]
    pub queues: BTreeMap<String, Queue>,
    #[serde(default)]
    pub workers: BTreeMap<String, Worker>,
    #[serde(default)]
    next_seq: u64,
}

type Result<T, E = ApiError> = std::result::Result<T, E>;

fn new_id() -> String {
    format!("{:032x}", fastrand::u128(..))
}

fn compile(pattern: &str) -> Result<Regex> {
    Regex::new(pattern)
        .map_err(|e| ApiError::new(400, 21, format!("Malformed regular expression ({e})")))
}

/// Tag filter: plain entries select documents having any of them; `-x` entries exclude documents having `x`.
fn tags_match(filter: &[String], tags: &[String]) -> bool {
    let (excl, incl): (Vec<&String>, Vec<&String>) =
        filter.iter().partition(|t| t.starts_with('-'));
    let excluded = excl.iter().any(|t| tags.iter().any(|x| x == &t[1..]));
    let included = incl.is_empty() || incl.iter().any(|t| tags.contains(t));
    included && !excluded
}

/// `max_size`: `queues.get_all` caps `page_size` at 500 (400/12 above); `tasks.get_all` has no cap.
fn paginate<T>(
    items: Vec<T>,
    page: Option<u64>,
    page_size: Option<u64>,
    max_size: Option<u64>,
) -> Result<Vec<T>> {
    let Some(size) = page_size else {
        return Ok(items);
    };
    if max_size.is_some_and(|max| size > max) {
        return Err(ApiError::validation(format!(
            "page_size must be at most {MAX_PAGE_SIZE}"
        )));
    }
    let start = page.unwrap_or(0).saturating_mul(size);
    let start = usize::try_from(start).unwrap_or(usize::MAX);
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    Ok(items.into_iter().skip(start).take(size).collect())
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
            next_seq: 0,
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

    /// The status change every status call makes: checks the state machine unless forced, stamps the dates.
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
        let mut fields = status_fields(t);
        match new {
            TaskStatus::InProgress => {
                t.started = Some(now);
                fields.insert("started".into(), json!(now));
            }
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Stopped => {
                t.completed = Some(now);
                fields.insert("completed".into(), json!(now));
            }
            _ => {}
        }
        Ok(fields)
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

fn cmp_json(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(std::cmp::Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        _ => std::cmp::Ordering::Equal,
    }
}
