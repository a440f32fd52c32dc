//! `workers.*`: register, status reports, listing (clearml-server `services/workers.py`, `bll/workers/__init__.py`);
//! workers expire like the server's Redis entries. Also the enterprise `workers.cluster_report` /
//! `cluster_unregister`, with the body clearml-agent sends.

use serde_json::{Value, json};

use super::*;

/// `apiserver.workers.default_timeout`: seconds a worker lives without a report unless it registered otherwise.
const DEFAULT_WORKER_TIMEOUT_SECS: i64 = 600;
/// `workers.get_all`'s default `last_seen` (`apimodels/workers.py` `GetAllRequest`).
const DEFAULT_LAST_SEEN_SECS: i64 = 3600;

/// Worker tag filter (Redis sets on the server): plain entries select workers having any of them; `-x` excludes.
fn tags_match(filter: &[String], tags: &[String]) -> bool {
    let (excl, incl): (Vec<&String>, Vec<&String>) =
        filter.iter().partition(|t| t.starts_with('-'));
    let excluded = excl.iter().any(|t| tags.iter().any(|x| x == &t[1..]));
    let included = incl.is_empty() || incl.iter().any(|t| tags.contains(t));
    included && !excluded
}

impl Store {
    fn purge_workers(&mut self, now: Ts) {
        self.workers.retain(|_, w| !w.expired(now));
    }

    fn new_worker(&self, id: &str, timeout: i64, now: Ts) -> Worker {
        Worker {
            id: id.to_owned(),
            user: self.identity.user.clone(),
            company: self.identity.company.clone(),
            ip: "127.0.0.1".into(),
            register_time: now,
            last_activity_time: now,
            last_report_time: None,
            timeout,
            queues: vec![],
            tags: vec![],
            system_tags: vec![],
            task: None,
            queue: None,
            machine_stats: None,
        }
    }

    /// `workers.register`: a fresh entry (re-registering resets it). Every queue must exist (701 naming the
    /// unknown ones); `resources` are recorded on those queues. A missing or zero `timeout` is the default; a
    /// negative one is 400/1002.
    pub fn workers_register(&mut self, r: rq::WorkerRegister, now: Ts) -> Result<Value> {
        self.purge_workers(now);
        let timeout = match r.timeout {
            None | Some(0) => DEFAULT_WORKER_TIMEOUT_SECS,
            Some(t) if t < 0 => {
                return Err(ApiError::new(
                    400,
                    1002,
                    format!(
                        "Worker registration failed (invalid timeout): timeout={t}, worker={}",
                        r.worker
                    ),
                ));
            }
            Some(t) => t,
        };
        let unknown: Vec<&String> = r
            .queues
            .iter()
            .filter(|q| !self.queues.contains_key(*q))
            .collect();
        if !unknown.is_empty() {
            return Err(ApiError::new(
                400,
                701,
                format!("Invalid queue id: ids={unknown:?}"),
            ));
        }
        if let Some(res) = &r.resources {
            for q in &r.queues {
                if let Some(q) = self.queues.get_mut(q) {
                    q.resources = Some(json!(res));
                }
            }
        }
        let mut w = self.new_worker(&r.worker, timeout, now);
        w.queues = r.queues;
        w.tags = r.tags;
        w.system_tags = r.system_tags;
        self.workers.insert(r.worker, w);
        Ok(json!({}))
    }

    /// `workers.unregister`: with the server's default `auto_unregister: true`, an unknown worker is not an error.
    pub fn workers_unregister(&mut self, r: rq::WorkerId) -> Result<Value> {
        self.workers.remove(&r.worker);
        Ok(json!({}))
    }

    /// `workers.status_report` (`WorkerBLL.status_report`): an unknown worker is registered on the fly
    /// (`auto_register: true`). `queue` is replaced by every report (absent = none), `queues` only when given
    /// non-empty, and queue ids are not checked. A reported task must exist (400/101); it gets `last_worker`,
    /// `last_worker_report`, `last_update` and `last_change`.
    pub fn workers_status_report(&mut self, r: rq::StatusReport, now: Ts) -> Result<Value> {
        self.purge_workers(now);
        if let Some(task) = &r.task {
            let t = self.task_mut(task)?;
            t.last_worker = Some(r.worker.clone());
            t.last_worker_report = Some(now);
            t.last_update = now;
            t.last_change = now;
        }
        if !self.workers.contains_key(&r.worker) {
            let w = self.new_worker(&r.worker, DEFAULT_WORKER_TIMEOUT_SECS, now);
            self.workers.insert(r.worker.clone(), w);
        }
        let Some(w) = self.workers.get_mut(&r.worker) else {
            return Ok(json!({}));
        };
        w.last_activity_time = now;
        w.last_report_time = Some(now);
        w.task = r.task;
        w.queue = r.queue;
        if let Some(qs) = r.queues.filter(|qs| !qs.is_empty()) {
            w.queues = qs;
        }
        if let Some(tags) = r.tags {
            w.tags = tags;
        }
        if r.machine_stats.is_some() {
            w.machine_stats = r.machine_stats;
        }
        let _ = r.timestamp;
        Ok(json!({}))
    }

    /// `workers.get_all`: workers active in the last `last_seen` seconds (default 3600; `0` = every live
    /// worker; at least 1 s otherwise).
    pub fn workers_get_all(&mut self, r: rq::WorkerGetAll, now: Ts) -> Result<Value> {
        self.purge_workers(now);
        let last_seen = r.last_seen.unwrap_or(DEFAULT_LAST_SEEN_SECS);
        let docs: Vec<Value> = self
            .workers
            .values()
            .filter(|w| last_seen == 0 || w.last_activity_time.plus_secs(last_seen.max(1)) >= now)
            .filter(|w| r.tags.is_empty() || tags_match(&r.tags, &w.tags))
            .map(|w| self.worker_wire(w))
            .collect();
        Ok(json!({ "workers": docs }))
    }

    /// `WorkerBLL.get_all_with_projection`: queues with name, size and next task; `queue` only when it is one of
    /// `queues`; the task's `running_time` in milliseconds (`active_duration * 1000`, as of its last ping or
    /// event batch).
    fn worker_wire(&self, w: &Worker) -> Value {
        let queue_ref = |id: &str| {
            let q = self.queues.get(id);
            let next = q.and_then(|q| q.entries.first()).map(|e| {
                json!({ "id": e.task, "name": self.tasks.get(&e.task).map(|t| t.name.clone()) })
            });
            json!({
                "id": id,
                "name": q.map(|q| q.name.clone()),
                "display_name": q.and_then(|q| q.display_name.clone()),
                "num_tasks": q.map_or(0, |q| q.entries.len()),
                "next_task": next,
            })
        };
        let task = w.task.as_ref().map(|id| {
            let t = self.tasks.get(id);
            let running_ms = t
                .and_then(|t| t.active_duration)
                .map_or(0, |secs| (secs * 1000.0) as i64);
            json!({ "id": id, "name": t.map(|t| t.name.clone()), "running_time": running_ms })
        });
        let queue = w
            .queue
            .as_deref()
            .filter(|q| w.queues.iter().any(|x| x == q))
            .map(queue_ref);
        json!({
            "id": w.id,
            "user": { "id": w.user, "name": self.identity.user_name },
            "company": { "id": w.company, "name": self.identity.company_name },
            "ip": w.ip,
            "register_time": w.register_time,
            "register_timeout": w.timeout,
            "last_activity_time": w.last_activity_time,
            "last_report_time": w.last_report_time,
            "task": task,
            "queue": queue,
            "queues": w.queues.iter().map(|q| queue_ref(q)).collect::<Vec<_>>(),
            "tags": w.tags,
            "system_tags": w.system_tags,
        })
    }

    /// Enterprise `workers.cluster_report`: the last report per cluster key is kept (tests read it back).
    pub fn workers_cluster_report(&mut self, r: rq::ClusterReport, now: Ts) -> Result<Value> {
        if r.key.trim().is_empty() {
            return Err(ApiError::validation("key must not be empty"));
        }
        let report = json!({
            "worker": r.worker,
            "key": r.key,
            "timestamp": r.timestamp,
            "timeout": r.timeout,
            "partial": r.partial,
            "resource_groups": r.resource_groups,
            "properties": r.properties,
            "received": now,
        });
        self.cluster_reports.insert(r.key, report);
        Ok(json!({}))
    }

    /// Enterprise `workers.cluster_unregister {key}`.
    pub fn workers_cluster_unregister(&mut self, r: rq::ClusterUnregister) -> Result<Value> {
        self.cluster_reports.remove(&r.key);
        Ok(json!({}))
    }
}
