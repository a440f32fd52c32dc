//! The task lifecycle: status calls (`started`, `stopped`, `failed`, `completed`, `stop`, `stop_many`, `reset`,
//! ...) and moving a task in and out of queues (`enqueue`, `dequeue`). Rules from clearml-server
//! `services/tasks.py` and `bll/task/task_operations.py`.

use serde_json::{Value, json};

use super::*;

impl Store {
    /// `set_task_status_from_call`: one status change; `completed` is stamped by the calls that end a run.
    fn status_call(&mut self, r: rq::StatusChange, new: TaskStatus, now: Ts) -> Result<Value> {
        let mut fields = self.change_status(
            &r.task,
            new,
            r.force,
            r.status_reason,
            r.status_message,
            now,
        )?;
        if matches!(
            new,
            TaskStatus::Stopped | TaskStatus::Failed | TaskStatus::Completed
        ) {
            self.task_mut(&r.task)?.completed = Some(now);
            fields.insert("completed".into(), json!(now));
        }
        Ok(json!({ "updated": 1, "fields": fields }))
    }

    /// `tasks.started` (services/tasks.py `started`): the only call that sets `started`. A task already running
    /// keeps its earlier `started` (`min__started`); otherwise `completed` and `active_duration` are cleared.
    pub fn tasks_started(&mut self, r: rq::StatusChange, now: Ts) -> Result<Value> {
        let t = self.task(&r.task)?;
        let keep = t.status == TaskStatus::InProgress && t.started.is_some();
        let task = r.task.clone();
        let mut fields = self.change_status(
            &task,
            TaskStatus::InProgress,
            r.force,
            r.status_reason,
            r.status_message,
            now,
        )?;
        let t = self.task_mut(&task)?;
        if keep {
            t.started = t.started.min(Some(now));
        } else {
            t.started = Some(now);
            t.completed = None;
            t.active_duration = None;
            fields.insert("started".into(), json!(now));
        }
        Ok(json!({ "updated": 1, "started": 1, "fields": fields }))
    }

    /// `tasks.stopped`: → stopped (what a worker calls once it has aborted a task), stamps `completed`.
    pub fn tasks_stopped(&mut self, r: rq::StatusChange, now: Ts) -> Result<Value> {
        self.status_call(r, TaskStatus::Stopped, now)
    }

    /// `tasks.failed`: → failed, stamps `completed`.
    pub fn tasks_failed(&mut self, r: rq::StatusChange, now: Ts) -> Result<Value> {
        self.status_call(r, TaskStatus::Failed, now)
    }

    /// `tasks.completed`: → completed, stamps `completed`; with `publish` (2.20) then → published, answering
    /// `published: 1`.
    pub fn tasks_completed(&mut self, r: rq::StatusChange, now: Ts) -> Result<Value> {
        let publish = r.publish;
        let task = r.task.clone();
        let mut v = self.status_call(r, TaskStatus::Completed, now)?;
        if publish {
            let fields =
                self.change_status(&task, TaskStatus::Published, false, None, None, now)?;
            v["fields"]["status"] = json!(fields.get("status"));
            v["published"] = json!(1);
        }
        Ok(v)
    }

    /// `tasks.publish`: → published (read-only from then on).
    pub fn tasks_publish(&mut self, r: rq::StatusChange, now: Ts) -> Result<Value> {
        self.status_call(r, TaskStatus::Published, now)
    }

    /// `tasks.close`: → closed.
    pub fn tasks_close(&mut self, r: rq::StatusChange, now: Ts) -> Result<Value> {
        self.status_call(r, TaskStatus::Closed, now)
    }

    /// `tasks.stop` (task_operations.py `stop_task`). A queued task leaves its execution queue and stops; a
    /// `development` task, or one with no live worker (no `last_worker`, or no update for
    /// `task_update_timeout`, 600 s), stops at once with `Stopped by <user>` (a requested message is ignored);
    /// otherwise the status stays, `status_message` becomes `stopping` (the status change still bumps
    /// `status_changed` and `last_update`) and the worker is expected to call `tasks.stopped`. Neither path sets
    /// `completed`.
    pub fn tasks_stop(&mut self, r: rq::StatusChange, now: Ts) -> Result<Value> {
        let fields = self.stop_one(&r.task, r.force, r.status_reason, now)?;
        Ok(json!({ "updated": 1, "fields": fields }))
    }

    fn stop_one(
        &mut self,
        id: &str,
        force: bool,
        reason: Option<String>,
        now: Ts,
    ) -> Result<Object> {
        let user_name = self.identity.user_name.clone();
        let t = self.task(id)?;
        let queued = t.status == TaskStatus::Queued;
        let development = t.system_tags.iter().any(|s| s == "development");
        let run_by_worker = t.last_worker.as_ref().is_some_and(|w| !w.is_empty())
            && now.0 - t.last_update.0 < TASK_UPDATE_TIMEOUT_SECS * 1000;
        let status = t.status;
        if queued || development || !run_by_worker {
            if queued {
                self.leave_execution_queue(id);
            }
            let message = Some(format!("Stopped by {user_name}"));
            self.change_status(id, TaskStatus::Stopped, force, reason, message, now)
        } else {
            self.change_status(id, status, force, reason, Some("stopping".into()), now)
        }
    }

    /// `tasks.stop_many` (the web UI's abort; services/tasks.py `stop_many` + bll/util.py `run_batch_operation`):
    /// each id through `tasks.stop`; failures are collected as `{id, error: {codes, msg, data}}`, not raised.
    pub fn tasks_stop_many(&mut self, r: rq::StopMany, now: Ts) -> Result<Value> {
        let mut succeeded = Vec::new();
        let mut failed = Vec::new();
        for id in &r.ids {
            match self.stop_one(id, r.force, r.status_reason.clone(), now) {
                Ok(fields) => succeeded.push(json!({ "id": id, "updated": 1, "fields": fields })),
                Err(e) => failed.push(json!({
                    "id": id,
                    "error": { "codes": [e.code, e.subcode], "msg": e.msg, "data": {} },
                })),
            }
        }
        Ok(json!({ "succeeded": succeeded, "failed": failed }))
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
        tm.active_duration = None;
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

    /// `tasks.enqueue` (task_operations.py `enqueue_task`): status → queued through the state machine unless
    /// forced (queued → queued is a same-status change and allowed, except on a server older than that, see
    /// [`Store::enqueues_queued`]), push to the queue, set `execution.queue`
    /// unless `update_execution_queue: false`, leave every other queue. `enqueue_status` keeps the status to go
    /// back to: the current one, or for a task that is already queued the one it had before its first enqueue. A
    /// failed push (unknown queue 701, already in that queue 706) reverts the status, forced, with reason
    /// "failed enqueueing" and no `enqueue_status`.
    pub fn tasks_enqueue(&mut self, r: rq::Enqueue, now: Ts) -> Result<Value> {
        if r.queue.is_some() && r.queue_name.is_some() {
            return Err(ApiError::validation(
                "Either queue id or queue name should be provided",
            ));
        }
        let before = self.task(&r.task)?.clone();
        if !r.update_execution_queue
            && (before.status != TaskStatus::Queued || before.execution_queue().is_none())
        {
            return Err(ApiError::validation(
                "Cannot skip setting execution queue for a task that is not enqueued or does not have execution \
                 queue set",
            ));
        }
        let queue_id = match (&r.queue, &r.queue_name) {
            (Some(q), _) => q.clone(),
            (None, Some(name)) => match self.queues.values().find(|q| &q.name == name) {
                Some(q) => q.id.clone(),
                None => self.insert_queue(name, vec![], vec![], None, now),
            },
            (None, None) => self.default_queue()?.id.clone(),
        };
        if !self.enqueues_queued && !r.force && before.status == TaskStatus::Queued {
            return Err(ApiError::already_in_status(before.status.as_str()));
        }
        let enqueue_status = match (before.status, before.enqueue_status) {
            (TaskStatus::Queued, Some(s)) => s,
            (s, _) => s,
        };
        let mut fields = self.change_status(
            &r.task,
            TaskStatus::Queued,
            r.force,
            r.status_reason,
            r.status_message,
            now,
        )?;
        self.task_mut(&r.task)?.enqueue_status = Some(enqueue_status);
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
            let reason = Some("failed enqueueing".to_owned());
            self.change_status(&r.task, before.status, true, reason, None, now)?;
            if let Some(t) = self.tasks.get_mut(&r.task) {
                t.enqueue_status = None;
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

    /// `tasks.dequeue` (task_operations.py `dequeue_task` + task_bll.py `dequeue_and_change_status`). An unknown
    /// (or deleted) task is only purged from every queue: `{dequeued: 1, updated: 0}`. Otherwise a queued task
    /// leaves its execution queue (or every queue with `remove_from_all_queues`); a queued or running task then
    /// reverts, forced, to `new_status`, else its `enqueue_status`, else created, and `enqueue_status` is cleared.
    pub fn tasks_dequeue(&mut self, r: rq::Dequeue, now: Ts) -> Result<Value> {
        let new_status = match r.new_status.as_deref() {
            Some(s) => Some(
                TaskStatus::parse(s)
                    .ok_or_else(|| ApiError::validation(format!("Invalid task status: {s}")))?,
            ),
            None => None,
        };
        let Some(t) = self.tasks.get(&r.task).cloned() else {
            self.remove_from_all_queues(&r.task);
            return Ok(json!({ "dequeued": 1, "updated": 0 }));
        };
        self.leave_execution_queue(&t.id);
        if r.remove_from_all_queues {
            self.remove_from_all_queues(&t.id);
        }
        if !matches!(t.status, TaskStatus::Queued | TaskStatus::InProgress) {
            return Ok(json!({ "dequeued": 1, "updated": 0 }));
        }
        let new = new_status
            .or(t.enqueue_status)
            .unwrap_or(TaskStatus::Created);
        let fields =
            self.change_status(&t.id, new, true, r.status_reason, r.status_message, now)?;
        self.task_mut(&t.id)?.enqueue_status = None;
        Ok(json!({ "dequeued": 1, "updated": 1, "fields": fields }))
    }
}
