//! `workers.*`: register, status reports, listing; workers expire like the server's Redis entries.

use serde_json::{Value, json};

use super::*;

impl Store {
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
