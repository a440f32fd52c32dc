//! The server's state and its rules, without HTTP: each method is one endpoint's behaviour on typed requests, with
//! "now" passed in so tests can pick the clock. The dispatcher (`endpoints.rs`) decodes bodies and wraps results.

use std::collections::BTreeMap;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::model::{Object, Project, Queue, QueueEntry, Task, Worker, project_fields};
use crate::requests as rq;
use crate::status::{TaskStatus, can_transition};
use crate::time::Ts;

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

    // === projects ===

    pub fn projects_create(&mut self, r: rq::ProjectCreate, now: Ts) -> Result<Value> {
        min_len("name", &r.name)?;
        if self.projects.values().any(|p| p.name == r.name) {
            return Err(ApiError::not_unique(format!("name={}", r.name)));
        }
        let id = new_id();
        let basename = r.name.rsplit('/').next().unwrap_or(&r.name).to_owned();
        self.projects.insert(
            id.clone(),
            Project {
                id: id.clone(),
                name: r.name,
                basename,
                description: r.description.unwrap_or_default(),
                tags: r.tags,
                system_tags: r.system_tags,
                user: self.identity.user.clone(),
                company: self.identity.company.clone(),
                created: now,
                last_update: now,
            },
        );
        Ok(json!({ "id": id }))
    }

    pub fn projects_get_all(&self, r: rq::ProjectGetAll) -> Result<Value> {
        let re = r.name.as_deref().map(compile).transpose()?;
        let mut out: Vec<&Project> = self
            .projects
            .values()
            .filter(|p| r.id.is_empty() || r.id.contains(&p.id))
            .filter(|p| re.as_ref().is_none_or(|re| re.is_match(&p.name)))
            .filter(|p| {
                r.search_hidden || !r.id.is_empty() || !p.system_tags.iter().any(|t| t == "hidden")
            })
            .collect();
        out.sort_by_key(|p| p.created);
        let docs: Vec<Value> = out
            .into_iter()
            .map(|p| {
                project_fields(
                    &serde_json::to_value(p).unwrap_or(Value::Null),
                    &r.only_fields,
                )
            })
            .collect();
        Ok(json!({ "projects": docs }))
    }

    pub fn projects_get_by_id(&self, r: rq::ProjectGetById) -> Result<Value> {
        let p = self
            .projects
            .get(&r.project)
            .ok_or_else(|| ApiError::invalid_project_id(&r.project))?;
        Ok(json!({ "project": p }))
    }

    // === tasks ===

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

    pub fn tasks_create(&mut self, r: rq::TaskCreate, now: Ts) -> Result<Value> {
        min_len("name", &r.name)?;
        if !TASK_TYPES.contains(&r.task_type.as_str()) {
            return Err(ApiError::validation(format!(
                "Value must be one of {TASK_TYPES:?}: type={}",
                r.task_type
            )));
        }
        self.check_project(r.project.as_deref())?;
        let id = new_id();
        let seq = self.seq();
        let task = Task {
            id: id.clone(),
            name: r.name,
            task_type: r.task_type,
            user: self.identity.user.clone(),
            company: self.identity.company.clone(),
            project: r.project.filter(|p| !p.is_empty()),
            parent: r.parent.filter(|p| !p.is_empty()),
            comment: r.comment.unwrap_or_default(),
            status: TaskStatus::Created,
            status_reason: String::new(),
            status_message: String::new(),
            status_changed: now,
            created: now,
            started: None,
            completed: None,
            last_update: now,
            last_change: now,
            last_worker: None,
            last_worker_report: None,
            tags: r.tags,
            system_tags: r.system_tags,
            execution: r.execution.unwrap_or_default(),
            container: r.container.unwrap_or_default(),
            script: r.script,
            hyperparams: r.hyperparams.unwrap_or_default(),
            configuration: r.configuration.unwrap_or_default(),
            runtime: r.runtime.unwrap_or_default(),
            models: r.models,
            output: r.output_dest.map(|d| json!({ "destination": d })),
            enqueue_status: None,
            seq,
        };
        self.tasks.insert(id.clone(), task);
        Ok(json!({ "id": id }))
    }

    pub fn tasks_get_by_id(&self, r: rq::TaskId) -> Result<Value> {
        Ok(json!({ "task": self.task(&r.task)?.to_wire() }))
    }

    pub fn tasks_get_all(&self, r: rq::TaskGetAll) -> Result<Value> {
        let re = r.name.as_deref().map(compile).transpose()?;
        let mut out: Vec<&Task> = self
            .tasks
            .values()
            .filter(|t| r.id.is_empty() || r.id.contains(&t.id))
            .filter(|t| re.as_ref().is_none_or(|re| re.is_match(&t.name)))
            .filter(|t| r.status.is_empty() || r.status.iter().any(|s| s == t.status.as_str()))
            .filter(|t| {
                r.project.is_empty() || t.project.as_ref().is_some_and(|p| r.project.contains(p))
            })
            .filter(|t| r.user.is_empty() || r.user.contains(&t.user))
            .filter(|t| r.task_type.is_empty() || r.task_type.contains(&t.task_type))
            .filter(|t| tags_match(&r.tags, &t.tags))
            .filter(|t| tags_match(&r.system_tags, &t.system_tags))
            .filter(|t| r.parent.is_none() || t.parent == r.parent)
            .filter(|t| {
                r.execution_queue.is_empty()
                    || t.execution_queue()
                        .is_some_and(|q| r.execution_queue.iter().any(|x| x == q))
            })
            .filter(|t| {
                r.search_hidden || !r.id.is_empty() || !t.system_tags.iter().any(|x| x == "hidden")
            })
            .collect();
        out.sort_by_key(|t| t.seq);
        // Serialise once; sorting compares the wire documents (dates are ISO strings, so they sort correctly).
        let mut docs: Vec<Value> = out.into_iter().map(Task::to_wire).collect();
        for key in r.order_by.iter().rev() {
            let (desc, field) = key
                .strip_prefix('-')
                .map_or((false, key.as_str()), |f| (true, f));
            let field = field.trim_start_matches('+');
            // Stable sort: earlier keys end up primary because they are applied last.
            docs.sort_by(|a, b| {
                let ord = cmp_json(a.get(field), b.get(field));
                if desc { ord.reverse() } else { ord }
            });
        }
        let docs: Vec<Value> = paginate(docs, r.page, r.page_size, None)?
            .iter()
            .map(|d| project_fields(d, &r.only_fields))
            .collect();
        Ok(json!({ "tasks": docs }))
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

    fn status_call(&mut self, r: rq::StatusChange, new: TaskStatus, now: Ts) -> Result<Value> {
        let fields = self.change_status(
            &r.task,
            new,
            r.force,
            r.status_reason,
            r.status_message,
            now,
        )?;
        Ok(json!({ "updated": 1, "fields": fields }))
    }

    pub fn tasks_started(&mut self, r: rq::StatusChange, now: Ts) -> Result<Value> {
        let mut v = self.status_call(r, TaskStatus::InProgress, now)?;
        v["started"] = json!(1);
        Ok(v)
    }

    pub fn tasks_stopped(&mut self, r: rq::StatusChange, now: Ts) -> Result<Value> {
        self.status_call(r, TaskStatus::Stopped, now)
    }

    pub fn tasks_failed(&mut self, r: rq::StatusChange, now: Ts) -> Result<Value> {
        self.status_call(r, TaskStatus::Failed, now)
    }

    pub fn tasks_completed(&mut self, r: rq::StatusChange, now: Ts) -> Result<Value> {
        let publish = r.publish;
        let task = r.task.clone();
        let mut v = self.status_call(r, TaskStatus::Completed, now)?;
        if publish {
            let fields =
                self.change_status(&task, TaskStatus::Published, false, None, None, now)?;
            v["fields"] = Value::Object(fields);
            v["published"] = json!(1);
        }
        Ok(v)
    }

    pub fn tasks_publish(&mut self, r: rq::StatusChange, now: Ts) -> Result<Value> {
        self.status_call(r, TaskStatus::Published, now)
    }

    pub fn tasks_close(&mut self, r: rq::StatusChange, now: Ts) -> Result<Value> {
        self.status_call(r, TaskStatus::Closed, now)
    }

    /// `tasks.stop` (abort): queued tasks leave their queue and stop; tasks with no live worker (or in development)
    /// stop at once; otherwise the worker is asked to stop via `status_message: "stopping"`.
    pub fn tasks_stop(&mut self, r: rq::StatusChange, now: Ts) -> Result<Value> {
        let user_name = self.identity.user_name.clone();
        let t = self.task(&r.task)?.clone();
        if t.status == TaskStatus::Queued {
            self.remove_from_all_queues(&t.id);
        }
        let development = t.system_tags.iter().any(|s| s == "development");
        let worker_live = t.last_worker.as_ref().is_some_and(|w| !w.is_empty())
            && t.last_update.plus_secs(LIVE_WORKER_SECS) >= now;
        let fields = if t.status == TaskStatus::Queued || development || !worker_live {
            // The server ignores a requested status_message here.
            let message = Some(format!("Stopped by {user_name}"));
            self.change_status(
                &t.id,
                TaskStatus::Stopped,
                r.force,
                r.status_reason,
                message,
                now,
            )?
        } else {
            let status = t.status;
            if !r.force && !can_transition(status, TaskStatus::Stopped) {
                return Err(ApiError::invalid_task_status(status.as_str(), "stopped"));
            }
            let tm = self.task_mut(&t.id)?;
            tm.status_message = "stopping".into();
            tm.status_reason = r.status_reason.unwrap_or_default();
            tm.last_update = now;
            status_fields(tm)
        };
        Ok(json!({ "updated": 1, "fields": fields }))
    }

    /// `tasks.reset`: back to a draft. Dequeues, clears the run (worker, dates, runtime, `execution.queue`); the
    /// status change itself follows the state machine unless forced (published → created needs force).
    pub fn tasks_reset(&mut self, r: rq::StatusChange, now: Ts) -> Result<Value> {
        let status = self.task(&r.task)?.status;
        if !r.force && !can_transition(status, TaskStatus::Created) {
            return Err(ApiError::invalid_task_status(status.as_str(), "created"));
        }
        let dequeued = self.remove_from_all_queues(&r.task);
        let reset = Some("reset".to_owned());
        let fields = self.change_status(
            &r.task,
            TaskStatus::Created,
            true,
            reset.clone(),
            reset,
            now,
        )?;
        let tm = self.task_mut(&r.task)?;
        tm.last_worker = None;
        tm.last_worker_report = None;
        tm.started = None;
        tm.completed = None;
        tm.runtime.clear();
        tm.execution.remove("queue");
        tm.enqueue_status = None;
        let mut v = json!({ "updated": 1, "fields": fields, "deleted_models": 0 });
        if dequeued > 0 {
            v["dequeued"] = json!({ "removed": dequeued });
        }
        Ok(v)
    }

    pub fn tasks_edit(&mut self, r: rq::TaskEdit, now: Ts) -> Result<Value> {
        if let Some(name) = &r.name {
            min_len("name", name)?;
        }
        self.check_project(r.project.as_deref())?;
        let t = self.task_mut(&r.task)?;
        if !r.force && t.status != TaskStatus::Created {
            return Err(ApiError::new(
                400,
                110,
                format!("Invalid task status: expected=created, status={}", t.status),
            ));
        }
        let mut fields = Map::new();
        macro_rules! set {
            ($field:ident, $key:literal, $value:expr) => {{
                let v = $value;
                fields.insert($key.into(), json!(v));
                t.$field = v;
            }};
        }
        if let Some(v) = r.name {
            set!(name, "name", v);
        }
        if let Some(v) = r.task_type {
            set!(task_type, "type", v);
        }
        if let Some(v) = r.tags {
            set!(tags, "tags", v);
        }
        if let Some(v) = r.system_tags {
            set!(system_tags, "system_tags", v);
        }
        if let Some(v) = r.comment {
            set!(comment, "comment", v);
        }
        if let Some(v) = r.parent {
            set!(parent, "parent", Some(v).filter(|p| !p.is_empty()));
        }
        if let Some(v) = r.project {
            set!(project, "project", Some(v).filter(|p| !p.is_empty()));
        }
        // script and execution are merged one level deep; the rest are replaced whole (clearml-server's edit).
        if let Some(v) = r.execution {
            t.execution.extend(v);
            fields.insert("execution".into(), Value::Object(t.execution.clone()));
        }
        if let Some(v) = r.script {
            let merged = match (t.script.take(), v) {
                (Some(Value::Object(mut old)), Value::Object(new)) => {
                    old.extend(new);
                    Value::Object(old)
                }
                (_, new) => new,
            };
            set!(script, "script", Some(merged));
        }
        if let Some(v) = r.container {
            set!(container, "container", v);
        }
        if let Some(v) = r.hyperparams {
            set!(hyperparams, "hyperparams", v);
        }
        if let Some(v) = r.configuration {
            set!(configuration, "configuration", v);
        }
        if let Some(v) = r.runtime {
            set!(runtime, "runtime", v);
        }
        if let Some(v) = r.models {
            set!(models, "models", Some(v));
        }
        if let Some(s) = r.status.as_deref() {
            let status = TaskStatus::parse(s)
                .ok_or_else(|| ApiError::validation(format!("invalid status: status={s}")))?;
            set!(status, "status", status);
        }
        t.last_update = now;
        t.last_change = now;
        fields.insert("last_update".into(), json!(now));
        fields.insert("last_change".into(), json!(now));
        Ok(json!({ "updated": 1, "fields": fields }))
    }

    /// `tasks.update`: plain field updates, status included, with no state-machine check.
    pub fn tasks_update(&mut self, r: rq::TaskUpdate, now: Ts) -> Result<Value> {
        self.check_project(r.project.as_deref())?;
        let status = match r.status.as_deref() {
            Some(s) => Some(
                TaskStatus::parse(s)
                    .ok_or_else(|| ApiError::validation(format!("invalid status: status={s}")))?,
            ),
            None => None,
        };
        let t = self.task_mut(&r.task)?;
        let mut fields = Map::new();
        if let Some(v) = r.name {
            fields.insert("name".into(), json!(v));
            t.name = v;
        }
        if let Some(v) = r.tags {
            fields.insert("tags".into(), json!(v));
            t.tags = v;
        }
        if let Some(v) = r.system_tags {
            fields.insert("system_tags".into(), json!(v));
            t.system_tags = v;
        }
        if let Some(v) = r.comment {
            fields.insert("comment".into(), json!(v));
            t.comment = v;
        }
        if let Some(v) = r.project {
            fields.insert("project".into(), json!(v));
            t.project = Some(v).filter(|p| !p.is_empty());
        }
        if let Some(v) = status {
            fields.insert("status".into(), json!(v));
            if t.status != v {
                t.status_changed = now;
            }
            t.status = v;
        }
        if let Some(v) = r.status_reason {
            fields.insert("status_reason".into(), json!(v));
            t.status_reason = v;
        }
        if let Some(v) = r.status_message {
            fields.insert("status_message".into(), json!(v));
            t.status_message = v;
        }
        t.last_update = now;
        fields.insert("last_update".into(), json!(now));
        Ok(json!({ "updated": 1, "fields": fields }))
    }

    pub fn tasks_ping(&mut self, r: rq::TaskId, now: Ts) -> Result<Value> {
        if let Some(t) = self.tasks.get_mut(&r.task) {
            t.last_update = now;
        }
        Ok(json!({}))
    }

    pub fn tasks_delete(&mut self, r: rq::StatusChange) -> Result<Value> {
        let t = self.task(&r.task)?;
        if !r.force && t.status == TaskStatus::InProgress {
            return Err(ApiError::new(
                400,
                112,
                format!("Task in progress (invalid task status): id={}", r.task),
            ));
        }
        self.remove_from_all_queues(&r.task);
        self.tasks.remove(&r.task);
        Ok(json!({ "deleted": 1, "updated_children": 0, "updated_models": 0, "events": {} }))
    }

    pub fn tasks_edit_hyper_params(&mut self, r: rq::EditHyperParams, now: Ts) -> Result<Value> {
        let t = self.task_mut(&r.task)?;
        // Only the `properties` section may change on a task that is no longer a draft (the glue writes
        // k8s-queue etc. there on queued tasks); anything else needs `force`, as on the server.
        let properties_only = r.hyperparams.iter().all(|h| h.section == "properties");
        if !r.force && !properties_only && t.status != TaskStatus::Created {
            return Err(ApiError::new(
                400,
                110,
                format!("Invalid task status: expected=created, status={}", t.status),
            ));
        }
        match r.replace_hyperparams.as_deref() {
            Some("all") => t.hyperparams.clear(),
            Some("section") => {
                for h in &r.hyperparams {
                    t.hyperparams.remove(&h.section);
                }
            }
            _ => {}
        }
        for h in r.hyperparams {
            let section = t
                .hyperparams
                .entry(h.section.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(sec) = section {
                let value = match h.value {
                    Some(Value::String(s)) => Value::String(s),
                    Some(Value::Null) | None => Value::String(String::new()),
                    Some(other) => Value::String(other.to_string()),
                };
                let mut p = json!({ "section": h.section, "name": h.name, "value": value });
                if let Some(ty) = h.param_type {
                    p["type"] = json!(ty);
                }
                if let Some(d) = h.description {
                    p["description"] = json!(d);
                }
                sec.insert(h.name, p);
            }
        }
        t.last_update = now;
        t.last_change = now;
        Ok(json!({ "updated": 1 }))
    }

    /// `tasks.enqueue`: status → queued (state machine unless forced), push, set `execution.queue`, leave every
    /// other queue. A failed push reverts the status.
    pub fn tasks_enqueue(&mut self, r: rq::Enqueue, now: Ts) -> Result<Value> {
        let queue_id = match (&r.queue, &r.queue_name) {
            (Some(_), Some(_)) => {
                return Err(ApiError::validation(
                    "Either queue id or queue name should be provided",
                ));
            }
            (Some(q), None) => q.clone(),
            (None, Some(name)) => match self.queues.values().find(|q| &q.name == name) {
                Some(q) => q.id.clone(),
                None => self.insert_queue(name, vec![], vec![], None, now),
            },
            (None, None) => self.default_queue()?.id.clone(),
        };
        let before = self.task(&r.task)?.clone();
        if !r.update_execution_queue
            && (before.status != TaskStatus::Queued || before.execution_queue().is_none())
        {
            return Err(ApiError::validation(
                "Cannot skip setting execution queue for a task that is not enqueued or does not have execution \
                 queue set",
            ));
        }
        // Unlike other status calls, enqueue refuses queued -> queued without force (the open-source server has
        // no same-state transition here; the glue stops a task before re-enqueueing it for that reason). Keeping
        // the execution queue (2.31) is the one re-enqueue of a queued task that is allowed.
        if !r.force && r.update_execution_queue && before.status == TaskStatus::Queued {
            return Err(ApiError::invalid_task_status("queued", "queued"));
        }
        let mut fields = self.change_status(
            &r.task,
            TaskStatus::Queued,
            r.force,
            r.status_reason,
            r.status_message,
            now,
        )?;
        {
            let t = self.task_mut(&r.task)?;
            t.enqueue_status = Some(before.status);
            t.system_tags.retain(|s| s != "development");
        }
        let company = self.identity.company.clone();
        let push = match self.queues.get_mut(&queue_id) {
            None => Err(ApiError::invalid_queue_id(&queue_id, &company)),
            Some(q) if q.entries.iter().any(|e| e.task == r.task) => {
                Err(ApiError::task_already_queued(&queue_id, &r.task))
            }
            Some(q) => {
                q.entries.push(QueueEntry {
                    task: r.task.clone(),
                    added: now,
                });
                q.last_update = now;
                Ok(())
            }
        };
        if let Err(e) = push {
            // Revert as the server does: previous status, forced, with its own reason, and no enqueue_status.
            let reason = Some("failed enqueueing".to_owned());
            self.change_status(&r.task, before.status, true, reason, None, now)?;
            if let Some(t) = self.tasks.get_mut(&r.task) {
                t.enqueue_status = None;
                t.started = before.started;
                t.completed = before.completed;
            }
            return Err(e);
        }
        if r.update_execution_queue {
            let t = self.task_mut(&r.task)?;
            t.execution.insert("queue".into(), json!(queue_id));
            fields.insert("execution.queue".into(), json!(queue_id));
        }
        for q in self.queues.values_mut().filter(|q| q.id != queue_id) {
            q.entries.retain(|e| e.task != r.task);
        }
        Ok(json!({ "queued": 1, "updated": 1, "fields": fields }))
    }

    /// `tasks.dequeue`: leave the execution queue (errors swallowed); a queued or running task reverts to
    /// `new_status`, else the status it had before enqueue, else created.
    pub fn tasks_dequeue(&mut self, r: rq::Dequeue, now: Ts) -> Result<Value> {
        let t = self.task(&r.task)?.clone();
        if r.remove_from_all_queues {
            self.remove_from_all_queues(&t.id);
        } else if let Some(q) = t.execution_queue().and_then(|q| self.queues.get_mut(q)) {
            q.entries.retain(|e| e.task != t.id);
        }
        let mut updated = 0;
        let mut fields = Map::new();
        if matches!(t.status, TaskStatus::Queued | TaskStatus::InProgress) {
            let new = match r.new_status.as_deref() {
                Some(s) => TaskStatus::parse(s).ok_or_else(|| {
                    ApiError::validation(format!("invalid status: new_status={s}"))
                })?,
                None => t.enqueue_status.unwrap_or(TaskStatus::Created),
            };
            fields =
                self.change_status(&t.id, new, true, r.status_reason, r.status_message, now)?;
            updated = 1;
        }
        Ok(json!({ "dequeued": 1, "updated": updated, "fields": fields }))
    }

    // === queues ===

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

    pub fn queues_create(&mut self, r: rq::QueueCreate, now: Ts) -> Result<Value> {
        min_len("name", &r.name)?;
        if self.queues.values().any(|q| q.name == r.name) {
            return Err(ApiError::not_unique(format!("name={}", r.name)));
        }
        let id = self.insert_queue(&r.name, r.tags, r.system_tags, r.display_name, now);
        if let Some(Value::Array(items)) = r.metadata
            && let Some(q) = self.queues.get_mut(&id)
        {
            for item in items {
                if let Some(key) = item.get("key").and_then(Value::as_str) {
                    q.metadata.insert(key.to_owned(), item.clone());
                }
            }
        }
        Ok(json!({ "id": id }))
    }

    pub fn queues_get_all(&self, r: rq::QueueGetAll) -> Result<Value> {
        let re = r.name.as_deref().map(compile).transpose()?;
        let show_hidden = r.search_hidden || !r.id.is_empty() || r.name.is_some();
        let mut out: Vec<&Queue> = self
            .queues
            .values()
            .filter(|q| r.id.is_empty() || r.id.contains(&q.id))
            .filter(|q| re.as_ref().is_none_or(|re| re.is_match(&q.name)))
            .filter(|q| tags_match(&r.tags, &q.tags))
            .filter(|q| tags_match(&r.system_tags, &q.system_tags))
            .filter(|q| show_hidden || !q.system_tags.iter().any(|t| t == HIDDEN_QUEUE_TAG))
            .collect();
        out.sort_by_key(|q| q.seq);
        let out = paginate(out, r.page, r.page_size, Some(MAX_PAGE_SIZE))?;
        let docs: Vec<Value> = out
            .into_iter()
            .map(|q| project_fields(&q.to_wire(r.max_task_entries), &r.only_fields))
            .collect();
        Ok(json!({ "queues": docs }))
    }

    pub fn queues_get_by_id(&self, r: rq::QueueGetById) -> Result<Value> {
        Ok(json!({ "queue": self.queue(&r.queue)?.to_wire(r.max_task_entries) }))
    }

    pub fn queues_get_default(&self) -> Result<Value> {
        let q = self.default_queue()?;
        Ok(json!({ "id": q.id, "name": q.name }))
    }

    /// Atomic pop of the head (the caller holds the store lock for the whole call). An empty queue, or a head
    /// that is not `task` when given, answers `{}`. The entry is returned even if its task no longer exists, as
    /// on the server.
    pub fn queues_get_next_task(&mut self, r: rq::GetNextTask, now: Ts) -> Result<Value> {
        let q = self.queue_mut(&r.queue)?;
        let Some(head) = q.entries.first() else {
            return Ok(json!({}));
        };
        if r.task.as_ref().is_some_and(|t| t != &head.task) {
            return Ok(json!({}));
        }
        let entry = q.entries.remove(0);
        q.last_update = now;
        let mut v = json!({ "entry": entry });
        if let Some(task) = self.tasks.get_mut(&entry.task) {
            // The server's race fix: a task aborted by an agent after it was queued again goes back to queued.
            if task.status == TaskStatus::Stopped {
                task.status = TaskStatus::Queued;
            }
            if r.get_task_info {
                v["task_info"] = json!({ "company": task.company, "user": task.user });
            }
        }
        Ok(v)
    }

    pub fn queues_add_task(&mut self, r: rq::QueueTask, now: Ts) -> Result<Value> {
        let q = self.queue_mut(&r.queue)?;
        if q.entries.iter().any(|e| e.task == r.task) {
            return Err(ApiError::task_already_queued(&r.queue, &r.task));
        }
        q.entries.push(QueueEntry {
            task: r.task.clone(),
            added: now,
        });
        q.last_update = now;
        if r.update_execution_queue
            && let Some(t) = self.tasks.get_mut(&r.task)
        {
            t.execution.insert("queue".into(), json!(r.queue));
        }
        Ok(json!({ "added": 1 }))
    }

    pub fn queues_remove_task(&mut self, r: rq::QueueTask, now: Ts) -> Result<Value> {
        let q = self.queue_mut(&r.queue)?;
        let before = q.entries.len();
        q.entries.retain(|e| e.task != r.task);
        let removed = before - q.entries.len();
        if removed == 0 {
            return Err(ApiError::task_not_queued(&r.queue, &r.task));
        }
        q.last_update = now;
        if r.update_task_status
            && let Some(t) = self.tasks.get(&r.task)
            && t.status == TaskStatus::Queued
        {
            let back = t.enqueue_status.unwrap_or(TaskStatus::Created);
            self.change_status(&r.task, back, true, None, None, now)?;
        }
        Ok(json!({ "removed": removed }))
    }

    /// Moves a task within its queue; `delta` is relative (negative = towards the head), `None` front/back.
    pub fn queues_move(&mut self, r: rq::QueueTask, to: Move) -> Result<Value> {
        let q = self.queue_mut(&r.queue)?;
        let pos = q
            .entries
            .iter()
            .position(|e| e.task == r.task)
            .ok_or_else(|| ApiError::task_not_queued(&r.queue, &r.task))?;
        let entry = q.entries.remove(pos);
        let last = q.entries.len();
        let count = r.count.unwrap_or(1).max(0);
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        let new_pos = match to {
            Move::Front => 0,
            Move::Back => last,
            Move::Forward => pos.saturating_sub(count),
            Move::Backward => pos.saturating_add(count).min(last),
        };
        q.entries.insert(new_pos, entry);
        Ok(json!({ "position": new_pos }))
    }

    pub fn queues_peek_task(&self, r: rq::QueueId) -> Result<Value> {
        let q = self.queue(&r.queue)?;
        Ok(match q.entries.first() {
            Some(e) => json!({ "task": e.task }),
            None => json!({}),
        })
    }

    pub fn queues_get_num_entries(&self, r: rq::QueueId) -> Result<Value> {
        Ok(json!({ "num": self.queue(&r.queue)?.entries.len() }))
    }

    pub fn queues_clear(&mut self, r: rq::QueueId, now: Ts) -> Result<Value> {
        let q = self.queue_mut(&r.queue)?;
        let removed: Vec<String> = q.entries.drain(..).map(|e| e.task).collect();
        q.last_update = now;
        Ok(json!({ "removed_tasks": removed }))
    }

    /// Deleting a non-empty queue needs `force`; its tasks then revert to their pre-enqueue status.
    pub fn queues_delete(&mut self, r: rq::QueueDelete, now: Ts) -> Result<Value> {
        let q = self.queue(&r.queue)?;
        if !r.force && !q.entries.is_empty() {
            return Err(ApiError::queue_not_empty(&q.id, q.entries.len()));
        }
        let tasks: Vec<String> = q.entries.iter().map(|e| e.task.clone()).collect();
        self.queues.remove(&r.queue);
        for id in tasks {
            let Some(back) = self
                .tasks
                .get(&id)
                .map(|t| t.enqueue_status.unwrap_or(TaskStatus::Created))
            else {
                continue;
            };
            let reason = Some("Queue was deleted".to_owned());
            self.change_status(&id, back, true, reason, None, now)?;
            if let Some(t) = self.tasks.get_mut(&id) {
                t.enqueue_status = None;
            }
        }
        Ok(json!({ "deleted": 1 }))
    }

    pub fn queues_update(&mut self, r: rq::QueueUpdate, now: Ts) -> Result<Value> {
        if let Some(name) = &r.name {
            min_len("name", name)?;
            if self
                .queues
                .values()
                .any(|q| &q.name == name && q.id != r.queue)
            {
                return Err(ApiError::not_unique(format!("name={name}")));
            }
        }
        let q = self.queue_mut(&r.queue)?;
        let mut fields = Map::new();
        if let Some(v) = r.name {
            fields.insert("name".into(), json!(v));
            q.name = v;
        }
        if let Some(v) = r.tags {
            fields.insert("tags".into(), json!(v));
            q.tags = v;
        }
        if let Some(v) = r.system_tags {
            fields.insert("system_tags".into(), json!(v));
            q.system_tags = v;
        }
        if let Some(v) = r.display_name {
            fields.insert("display_name".into(), json!(v));
            q.display_name = Some(v);
        }
        q.last_update = now;
        Ok(json!({ "updated": 1, "fields": fields }))
    }

    pub fn queues_add_or_update_metadata(
        &mut self,
        r: rq::QueueMetadata,
        now: Ts,
    ) -> Result<Value> {
        let q = self.queue_mut(&r.queue)?;
        if r.replace_metadata {
            q.metadata.clear();
        }
        for item in r.metadata {
            q.metadata.insert(
                item.key.clone(),
                json!({ "key": item.key, "type": item.item_type, "value": item.value }),
            );
        }
        q.last_update = now;
        Ok(json!({ "updated": 1 }))
    }

    // === workers ===

    fn purge_workers(&mut self, now: Ts) {
        self.workers.retain(|_, w| !w.expired(now));
    }

    fn check_queues(&self, queues: &[String]) -> Result<()> {
        queues.iter().try_for_each(|q| self.queue(q).map(|_| ()))
    }

    fn worker_entry(&mut self, id: &str, now: Ts) -> &mut Worker {
        let (user, company) = (self.identity.user.clone(), self.identity.company.clone());
        self.workers.entry(id.to_owned()).or_insert_with(|| Worker {
            id: id.to_owned(),
            user,
            company,
            ip: "127.0.0.1".into(),
            register_time: now,
            last_activity_time: now,
            last_report_time: None,
            timeout: 600,
            queues: vec![],
            tags: vec![],
            task: None,
            queue: None,
            machine_stats: None,
        })
    }

    pub fn workers_register(&mut self, r: rq::WorkerRegister, now: Ts) -> Result<Value> {
        self.purge_workers(now);
        self.check_queues(&r.queues)?;
        let w = self.worker_entry(&r.worker, now);
        w.timeout = r.timeout.unwrap_or(600).max(1);
        w.queues = r.queues;
        w.tags = r.tags;
        w.last_activity_time = now;
        Ok(json!({}))
    }

    pub fn workers_unregister(&mut self, r: rq::WorkerId) -> Result<Value> {
        self.workers.remove(&r.worker);
        Ok(json!({}))
    }

    pub fn workers_status_report(&mut self, r: rq::StatusReport, now: Ts) -> Result<Value> {
        self.purge_workers(now);
        if let Some(task) = &r.task {
            let t = self.task_mut(task)?;
            t.last_worker = Some(r.worker.clone());
            t.last_worker_report = Some(now);
            t.last_update = now;
        }
        if let Some(qs) = &r.queues {
            self.check_queues(qs)?;
        }
        let w = self.worker_entry(&r.worker, now);
        w.last_activity_time = now;
        w.last_report_time = Some(now);
        w.task = r.task;
        w.queue = r.queue;
        if let Some(qs) = r.queues {
            w.queues = qs;
        }
        if let Some(tags) = r.tags {
            w.tags = tags;
        }
        w.machine_stats = r.machine_stats;
        let _ = r.timestamp;
        Ok(json!({}))
    }

    pub fn workers_get_all(&mut self, r: rq::WorkerGetAll, now: Ts) -> Result<Value> {
        self.purge_workers(now);
        let last_seen = r.last_seen.unwrap_or(3600);
        let docs: Vec<Value> = self
            .workers
            .values()
            .filter(|w| w.last_activity_time.plus_secs(last_seen) >= now)
            .filter(|w| r.tags.is_empty() || tags_match(&r.tags, &w.tags))
            .map(|w| self.worker_wire(w, now))
            .collect();
        Ok(json!({ "workers": docs }))
    }

    fn worker_wire(&self, w: &Worker, now: Ts) -> Value {
        let queue_ref = |id: &str| {
            let q = self.queues.get(id);
            json!({
                "id": id,
                "name": q.map(|q| q.name.clone()),
                "num_tasks": q.map_or(0, |q| q.entries.len()),
            })
        };
        let task = w.task.as_ref().map(|id| {
            let t = self.tasks.get(id);
            let running = t
                .and_then(|t| t.started)
                .map_or(0, |s| (now.0 - s.0).max(0) / 1000);
            json!({ "id": id, "name": t.map(|t| t.name.clone()), "running_time": running })
        });
        json!({
            "id": w.id,
            "user": { "id": w.user, "name": self.identity.user_name },
            "company": { "id": w.company, "name": self.identity.company_name },
            "ip": w.ip,
            "register_time": w.register_time,
            "last_activity_time": w.last_activity_time,
            "last_report_time": w.last_report_time,
            "task": task,
            "queue": w.queue.as_deref().map(queue_ref),
            "queues": w.queues.iter().map(|q| queue_ref(q)).collect::<Vec<_>>(),
            "tags": w.tags,
        })
    }
}

/// Where `queues.move_task_*` puts the task.
#[derive(Debug, Clone, Copy)]
pub enum Move {
    Front,
    Back,
    Forward,
    Backward,
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

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Ts = Ts(1_700_000_000_000);

    fn store() -> Store {
        Store::new(Identity::default(), T0)
    }

    fn req<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    fn task(s: &mut Store, name: &str) -> String {
        let v = s.tasks_create(
            req(json!({"name": name, "type": "training", "system_tags": ["development"]})),
            T0,
        );
        v.unwrap()["id"].as_str().unwrap().to_owned()
    }

    fn queue(s: &mut Store, name: &str) -> String {
        s.queues_create(req(json!({ "name": name })), T0).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn entries(s: &Store, q: &str) -> Vec<String> {
        s.queues[q].entries.iter().map(|e| e.task.clone()).collect()
    }

    #[test]
    fn enqueue_moves_the_task_between_queues_and_dequeue_restores_status() {
        let mut s = store();
        let (a, b) = (queue(&mut s, "queue-a"), queue(&mut s, "queue-b"));
        let t = task(&mut s, "task");
        s.tasks_enqueue(req(json!({"task": t, "queue": a})), T0)
            .unwrap();
        assert_eq!(s.tasks[&t].status, TaskStatus::Queued);
        assert_eq!(s.tasks[&t].enqueue_status, Some(TaskStatus::Created));
        assert!(
            !s.tasks[&t].system_tags.contains(&"development".to_owned()),
            "enqueue drops the development tag"
        );
        s.tasks_enqueue(req(json!({"task": t, "queue": b, "force": true})), T0)
            .unwrap();
        assert_eq!(
            (entries(&s, &a), entries(&s, &b)),
            (vec![], vec![t.clone()])
        );
        assert_eq!(s.tasks[&t].execution_queue(), Some(b.as_str()));

        let err = s
            .tasks_enqueue(req(json!({"task": t, "queue": b, "force": true})), T0)
            .unwrap_err();
        assert_eq!((err.code, err.subcode), (400, 706));
        assert_eq!(s.tasks[&t].status, TaskStatus::Queued);

        let d = s.tasks_dequeue(req(json!({"task": t})), T0).unwrap();
        assert_eq!(d["updated"], json!(1));
        assert_eq!(
            s.tasks[&t].status,
            TaskStatus::Created,
            "back to the status before enqueue"
        );
        assert!(entries(&s, &b).is_empty());
        let d = s.tasks_dequeue(req(json!({"task": t})), T0).unwrap();
        assert_eq!(
            d["updated"],
            json!(0),
            "a task that is not queued keeps its status"
        );
    }

    #[test]
    fn re_enqueueing_a_queued_task_needs_force_unless_it_keeps_its_queue() {
        let mut s = store();
        let (a, b) = (queue(&mut s, "queue-a"), queue(&mut s, "queue-b"));
        let t = task(&mut s, "task");
        s.tasks_enqueue(req(json!({"task": t, "queue": a})), T0)
            .unwrap();
        let err = s
            .tasks_enqueue(req(json!({"task": t, "queue": b})), T0)
            .unwrap_err();
        assert_eq!((err.code, err.subcode), (400, 110));
        s.tasks_enqueue(
            req(json!({"task": t, "queue": b, "update_execution_queue": false})),
            T0,
        )
        .unwrap();
        assert_eq!(
            s.tasks[&t].execution_queue(),
            Some(a.as_str()),
            "the execution queue is kept"
        );
        assert_eq!(entries(&s, &b), vec![t.clone()]);
    }

    #[test]
    fn remove_task_can_revert_the_status() {
        let mut s = store();
        let q = queue(&mut s, "queue");
        let t = task(&mut s, "task");
        s.tasks_enqueue(req(json!({"task": t, "queue": q})), T0)
            .unwrap();
        s.queues_remove_task(
            req(json!({"queue": q, "task": t, "update_task_status": true})),
            T0,
        )
        .unwrap();
        assert_eq!(s.tasks[&t].status, TaskStatus::Created);
    }

    #[test]
    fn stop_depends_on_a_live_worker() {
        let mut s = store();
        let t = task(&mut s, "task");
        s.tasks.get_mut(&t).unwrap().system_tags.clear();
        s.tasks_started(req(json!({"task": t})), T0).unwrap();
        s.workers_status_report(req(json!({"worker": "w", "timestamp": 0, "task": t})), T0)
            .unwrap();
        s.tasks_stop(req(json!({"task": t})), T0.plus_secs(60))
            .unwrap();
        assert_eq!(s.tasks[&t].status, TaskStatus::InProgress);
        assert_eq!(s.tasks[&t].status_message, "stopping");
        // No update for more than 600 s (the "stopping" write above counts): the worker is gone.
        s.tasks_stop(req(json!({"task": t})), T0.plus_secs(60 + 601))
            .unwrap();
        assert_eq!(s.tasks[&t].status, TaskStatus::Stopped);
        assert_eq!(s.tasks[&t].status_message, "Stopped by emulator");
    }

    #[test]
    fn stop_on_a_development_task_is_immediate() {
        let mut s = store();
        let t = task(&mut s, "task");
        s.tasks_started(req(json!({"task": t})), T0).unwrap();
        s.workers_status_report(req(json!({"worker": "w", "timestamp": 0, "task": t})), T0)
            .unwrap();
        s.tasks_stop(req(json!({"task": t})), T0).unwrap();
        assert_eq!(s.tasks[&t].status, TaskStatus::Stopped);
    }

    #[test]
    fn get_next_task_pops_in_order_and_honours_the_head_check() {
        let mut s = store();
        let q = queue(&mut s, "queue");
        let (t1, t2) = (task(&mut s, "one"), task(&mut s, "two"));
        for t in [&t1, &t2] {
            s.tasks_enqueue(req(json!({"task": t, "queue": q})), T0)
                .unwrap();
        }
        assert_eq!(
            s.queues_get_next_task(req(json!({"queue": q, "task": t2})), T0)
                .unwrap(),
            json!({})
        );
        let v = s
            .queues_get_next_task(req(json!({"queue": q, "get_task_info": true})), T0)
            .unwrap();
        assert_eq!(v["entry"]["task"], json!(t1));
        assert_eq!(v["task_info"]["user"], json!(Identity::default().user));
        // A task stopped (not aborted) while queued stays in the queue and is re-queued when popped.
        s.tasks_stopped(req(json!({"task": t2})), T0).unwrap();
        let v = s
            .queues_get_next_task(req(json!({"queue": q})), T0)
            .unwrap();
        assert_eq!(v["entry"]["task"], json!(t2));
        assert_eq!(s.tasks[&t2].status, TaskStatus::Queued);
        assert_eq!(
            s.queues_get_next_task(req(json!({"queue": q})), T0)
                .unwrap(),
            json!({})
        );
    }

    #[test]
    fn entries_of_deleted_tasks_are_still_popped() {
        let mut s = store();
        let q = queue(&mut s, "queue");
        let t1 = task(&mut s, "one");
        s.queues_add_task(req(json!({"queue": q, "task": t1})), T0)
            .unwrap();
        s.tasks.remove(&t1);
        let v = s
            .queues_get_next_task(req(json!({"queue": q, "get_task_info": true})), T0)
            .unwrap();
        assert_eq!(v, json!({"entry": {"task": t1, "added": T0}}));
    }

    #[test]
    fn force_deleting_a_queue_reverts_its_tasks() {
        let mut s = store();
        let q = queue(&mut s, "queue");
        let t = task(&mut s, "task");
        s.tasks_enqueue(req(json!({"task": t, "queue": q})), T0)
            .unwrap();
        let err = s.queues_delete(req(json!({"queue": q})), T0).unwrap_err();
        assert_eq!((err.code, err.subcode), (400, 702));
        s.queues_delete(req(json!({"queue": q, "force": true})), T0)
            .unwrap();
        assert!(!s.queues.contains_key(&q));
        let task = &s.tasks[&t];
        assert_eq!(
            (task.status, task.status_reason.as_str()),
            (TaskStatus::Created, "Queue was deleted")
        );
    }

    #[test]
    fn edit_merges_execution_and_replaces_container() {
        let mut s = store();
        let t = task(&mut s, "task");
        s.tasks_edit(
            req(json!({"task": t, "execution": {"queue": "q1", "docker_cmd": "x"}})),
            T0,
        )
        .unwrap();
        s.tasks_edit(
            req(json!({"task": t, "execution": {"docker_cmd": "y"}, "container": {"image": "a"}})),
            T0,
        )
        .unwrap();
        s.tasks_edit(
            req(json!({"task": t, "container": {"arguments": "--ipc=host"}})),
            T0,
        )
        .unwrap();
        assert_eq!(
            s.tasks[&t].execution,
            req::<Object>(json!({"queue": "q1", "docker_cmd": "y"}))
        );
        assert_eq!(
            s.tasks[&t].container,
            req::<Object>(json!({"arguments": "--ipc=host"}))
        );
    }

    #[test]
    fn workers_expire_after_their_timeout() {
        let mut s = store();
        s.workers_register(req(json!({"worker": "w", "timeout": 10})), T0)
            .unwrap();
        let listed =
            |s: &mut Store, at| s.workers_get_all(req(json!({})), at).unwrap()["workers"].clone();
        assert_eq!(listed(&mut s, T0.plus_secs(5))[0]["id"], json!("w"));
        assert_eq!(listed(&mut s, T0.plus_secs(11)), json!([]));
    }

    #[test]
    fn hidden_tasks_and_queues_need_search_hidden() {
        let mut s = store();
        let t = task(&mut s, "task");
        s.tasks.get_mut(&t).unwrap().system_tags = vec!["hidden".into()];
        assert_eq!(
            s.tasks_get_all(req(json!({})),).unwrap()["tasks"],
            json!([])
        );
        assert_eq!(
            s.tasks_get_all(req(json!({"search_hidden": true})))
                .unwrap()["tasks"][0]["id"],
            json!(t)
        );
        assert_eq!(
            s.tasks_get_all(req(json!({"id": t}))).unwrap()["tasks"][0]["id"],
            json!(t)
        );
        s.queues_create(
            req(json!({"name": "k8s_scheduler", "system_tags": [HIDDEN_QUEUE_TAG]})),
            T0,
        )
        .unwrap();
        let names = |v: Value| {
            v["queues"]
                .as_array()
                .unwrap()
                .iter()
                .map(|q| q["name"].clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(s.queues_get_all(req(json!({}))).unwrap()),
            [json!("default")]
        );
        assert_eq!(
            names(s.queues_get_all(req(json!({"name": "k8s"}))).unwrap()),
            [json!("k8s_scheduler")]
        );
    }

    #[test]
    fn get_all_orders_and_pages() {
        let mut s = store();
        let ids: Vec<String> = ["bbb", "aaa", "ccc"]
            .iter()
            .map(|n| task(&mut s, n))
            .collect();
        let names = |v: Value| {
            v["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(s.tasks_get_all(req(json!({}))).unwrap()),
            ["bbb", "aaa", "ccc"],
            "creation order"
        );
        assert_eq!(
            names(
                s.tasks_get_all(req(json!({"order_by": ["-name"]})))
                    .unwrap()
            ),
            ["ccc", "bbb", "aaa"]
        );
        let page = s
            .tasks_get_all(req(
                json!({"order_by": ["name"], "page": 1, "page_size": 2}),
            ))
            .unwrap();
        assert_eq!(names(page), ["ccc"]);
        let only = s
            .tasks_get_all(req(json!({"id": [ids[0]], "only_fields": ["status"]})))
            .unwrap();
        assert_eq!(only["tasks"], json!([{"id": ids[0], "status": "created"}]));
        let err = s
            .queues_get_all(req(json!({"page_size": 501})))
            .unwrap_err();
        assert_eq!((err.code, err.subcode), (400, 12));
    }

    #[test]
    fn reset_clears_the_run() {
        let mut s = store();
        let q = queue(&mut s, "queue");
        let t = task(&mut s, "task");
        s.tasks_enqueue(req(json!({"task": t, "queue": q})), T0)
            .unwrap();
        s.tasks_started(req(json!({"task": t})), T0).unwrap();
        s.tasks_completed(req(json!({"task": t, "publish": true})), T0)
            .unwrap();
        assert_eq!(s.tasks[&t].status, TaskStatus::Published);
        let err = s.tasks_reset(req(json!({"task": t})), T0).unwrap_err();
        assert_eq!((err.code, err.subcode), (400, 110));
        s.tasks_reset(req(json!({"task": t, "force": true})), T0)
            .unwrap();
        let task = &s.tasks[&t];
        assert_eq!(
            (task.status, task.started, task.execution_queue()),
            (TaskStatus::Created, None, None)
        );
    }

    #[test]
    fn enqueue_by_name_creates_the_queue_and_default_needs_exactly_one() {
        let mut s = store();
        let t = task(&mut s, "task");
        s.tasks_enqueue(req(json!({"task": t, "queue_name": "fresh"})), T0)
            .unwrap();
        assert!(
            s.queues
                .values()
                .any(|q| q.name == "fresh" && q.entries.len() == 1)
        );
        let t2 = task(&mut s, "task2");
        s.tasks_enqueue(req(json!({"task": t2})), T0).unwrap();
        assert_eq!(
            s.tasks[&t2].execution_queue(),
            Some(s.queues_get_default().unwrap()["id"].as_str().unwrap())
        );
        queue(&mut s, "second-default");
        for q in s.queues.values_mut() {
            q.system_tags = vec!["default".into()];
        }
        assert_eq!(s.queues_get_default().unwrap_err().subcode, 708);
    }
}
