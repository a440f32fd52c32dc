//! `tasks.*` documents: create, list, edit, update, delete, hyper-parameters.

use serde_json::{Map, Value, json};

use super::*;

impl Store {
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
}
