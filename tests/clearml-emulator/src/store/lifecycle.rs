//! The task lifecycle: status calls (`started`, `stopped`, `failed`, `completed`, `stop`, `reset`, ...) and
//! moving a task in and out of queues (`enqueue`, `dequeue`).

use serde_json::{Map, Value, json};

use super::*;

impl Store {
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
}
