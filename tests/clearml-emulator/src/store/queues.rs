//! `queues.*`: create, list, pop, add/remove/move entries, clear, delete, metadata. Rules from clearml-server
//! `services/queues.py` and `bll/queue/queue_bll.py`.

use serde_json::{Map, Value, json};

use super::*;

impl Store {
    /// `queues.create`: `{id}`. The name must be unique (400/801) and at least 3 characters (400/800).
    pub fn queues_create(&mut self, r: rq::QueueCreate, now: Ts) -> Result<Value> {
        min_len("name", &r.name)?;
        if self.queues.values().any(|q| q.name == r.name) {
            return Err(ApiError::not_unique(format!("name={}", r.name)));
        }
        let id = self.insert_queue(&r.name, r.tags, r.system_tags, r.display_name, now);
        if let Some(items) = r.metadata
            && let Some(q) = self.queues.get_mut(&id)
        {
            q.metadata = metadata_map(items.into_values());
        }
        Ok(json!({ "id": id }))
    }

    /// `queues.get_all`: `{queues}` in creation order, filtered and paged (at most 500 per page). Queues tagged
    /// [`HIDDEN_QUEUE_TAG`] need `search_hidden`, `id` or `name`.
    pub fn queues_get_all(&self, r: rq::QueueGetAll) -> Result<Value> {
        let re = r.name.as_deref().map(compile_regex).transpose()?;
        let show_hidden = r.search_hidden || !r.id.is_empty() || r.name.is_some();
        let (ids, tags, system_tags) = (
            ListFilter::compile("id", &r.id)?,
            ListFilter::compile("tags", &r.tags)?,
            ListFilter::compile("system_tags", &r.system_tags)?,
        );
        fn strs(v: &[String]) -> Vec<&str> {
            v.iter().map(String::as_str).collect()
        }
        let mut out: Vec<&Queue> = self
            .queues
            .values()
            .filter(|q| ids.matches(&[q.id.as_str()]))
            .filter(|q| re.as_ref().is_none_or(|re| re.is_match(&q.name)))
            .filter(|q| tags.matches(&strs(&q.tags)))
            .filter(|q| system_tags.matches(&strs(&q.system_tags)))
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

    /// `queues.get_by_id`: `{queue}`; an unknown id (or a queue name) is 400/701.
    pub fn queues_get_by_id(&self, r: rq::QueueGetById) -> Result<Value> {
        Ok(json!({ "queue": self.queue(&r.queue)?.to_wire(r.max_task_entries) }))
    }

    /// `queues.get_default`: `{id, name}` of the one queue tagged `default`; none is 400/707, several 400/708.
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

    /// `queues.add_task`: appends the task (`{added: 1}`) without checking it or changing its status; a task
    /// already in the queue is 400/706. Sets `execution.queue` unless `update_execution_queue: false`.
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

    /// `queue_bll.py` `get_queue_with_task`: the lookup of `remove_task` and `move_task_*`, which answers 703
    /// (not 701) for an unknown queue as for a task that is not in it.
    fn queue_with_task(&mut self, queue: &str, task: &str) -> Result<&mut Queue> {
        match self.queues.get_mut(queue) {
            Some(q) if q.entries.iter().any(|e| e.task == task) => Ok(q),
            _ => Err(ApiError::task_not_queued(queue, task)),
        }
    }

    /// `queues.remove_task`; with `update_task_status` the task reverts as on `clear_queue` (if this queue is its
    /// execution queue), with reason `Task was removed from the queue <id>`.
    pub fn queues_remove_task(&mut self, r: rq::QueueTask, now: Ts) -> Result<Value> {
        let q = self.queue_with_task(&r.queue, &r.task)?;
        let before = q.entries.len();
        q.entries.retain(|e| e.task != r.task);
        let removed = before - q.entries.len();
        q.last_update = now;
        if r.update_task_status {
            let reason = format!("Task was removed from the queue {}", r.queue);
            self.revert_removed_tasks(std::slice::from_ref(&r.task), &r.queue, &reason, now);
        }
        Ok(json!({ "removed": removed }))
    }

    /// Moves a task within its queue; `count` is relative (forward = towards the head), clamped to the ends.
    pub fn queues_move(&mut self, r: rq::QueueTask, to: Move) -> Result<Value> {
        let q = self.queue_with_task(&r.queue, &r.task)?;
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

    /// `queues.peek_task`: the head's task id, `null` for an empty queue.
    pub fn queues_peek_task(&self, r: rq::QueueId) -> Result<Value> {
        let q = self.queue(&r.queue)?;
        Ok(json!({ "task": q.entries.first().map(|e| e.task.clone()) }))
    }

    /// `queues.get_num_entries`: `{num}`, the queue's length.
    pub fn queues_get_num_entries(&self, r: rq::QueueId) -> Result<Value> {
        Ok(json!({ "num": self.queue(&r.queue)?.entries.len() }))
    }

    /// `queues.clear_queue`: empties the queue; its tasks revert to their pre-enqueue status (reason
    /// `Queue <id> was cleared`). Answers the ids of the tasks it reverted.
    pub fn queues_clear(&mut self, r: rq::QueueId, now: Ts) -> Result<Value> {
        let q = self.queue_mut(&r.queue)?;
        let tasks: Vec<String> = q.entries.drain(..).map(|e| e.task).collect();
        q.last_update = now;
        let reason = format!("Queue {} was cleared", r.queue);
        let reverted = self.revert_removed_tasks(&tasks, &r.queue, &reason, now);
        Ok(json!({ "removed_tasks": reverted }))
    }

    /// `queues.delete`: a non-empty queue needs `force` (702); its tasks then revert (reason
    /// `Queue <id> was deleted`).
    pub fn queues_delete(&mut self, r: rq::QueueDelete, now: Ts) -> Result<Value> {
        let q = self.queue(&r.queue)?;
        if !r.force && !q.entries.is_empty() {
            return Err(ApiError::queue_not_empty(&q.id, q.entries.len()));
        }
        let tasks: Vec<String> = q.entries.iter().map(|e| e.task.clone()).collect();
        let reason = format!("Queue {} was deleted", r.queue);
        self.revert_removed_tasks(&tasks, &r.queue, &reason, now);
        self.queues.remove(&r.queue);
        Ok(json!({ "deleted": 1 }))
    }

    /// `queues.update`: replaces the given fields (a new name must be unique and at least 3 characters);
    /// `{updated, fields}`.
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
        if let Some(items) = r.metadata {
            q.metadata = metadata_map(items.into_values());
            fields.insert("metadata".into(), Value::Object(q.metadata.clone()));
        }
        q.last_update = now;
        Ok(json!({ "updated": 1, "fields": fields }))
    }

    /// `queues.add_or_update_metadata`: adds or replaces items by key (all of them first dropped with
    /// `replace_metadata`); an empty list is 400/12.
    pub fn queues_add_or_update_metadata(
        &mut self,
        r: rq::QueueMetadata,
        now: Ts,
    ) -> Result<Value> {
        if r.metadata.is_empty() {
            return Err(ApiError::validation(
                "metadata: Value is too short: minimum 1 item",
            ));
        }
        let q = self.queue_mut(&r.queue)?;
        if r.replace_metadata {
            q.metadata.clear();
        }
        q.metadata.extend(metadata_map(r.metadata));
        q.last_update = now;
        Ok(json!({ "updated": 1 }))
    }
}

/// `bll/model/metadata.py` `metadata_from_api`: items keyed by their own `key`.
fn metadata_map(items: impl IntoIterator<Item = rq::MetadataItem>) -> Object {
    items
        .into_iter()
        .map(|item| (item.key.clone(), json!(item)))
        .collect()
}

/// Where `queues.move_task_*` puts the task.
#[derive(Debug, Clone, Copy)]
pub enum Move {
    /// `move_task_to_front`: to the head, popped next.
    Front,
    /// `move_task_to_back`: to the tail.
    Back,
    /// `move_task_forward`: `count` places towards the head.
    Forward,
    /// `move_task_backward`: `count` places towards the tail.
    Backward,
}
