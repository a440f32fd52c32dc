//! `tasks.*` documents: create, list, edit, update, delete, hyper-parameters.

use serde_json::{Map, Value, json};

use super::*;

/// The values of one list field of a task, as a filter reads them (one for a scalar field, none when unset).
type FieldValues = fn(&Task) -> Vec<&str>;

impl Store {
    /// `tasks.create`: `{id}` of a new draft. The name needs 3 characters (400/800), the type must be one of the
    /// server's (400/12), the project must exist (400/401).
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
            active_duration: None,
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

    /// `tasks.get_by_id`: `{task}`, the whole document; an unknown id is 400/101.
    pub fn tasks_get_by_id(&self, r: rq::TaskId) -> Result<Value> {
        Ok(json!({ "task": self.task(&r.task)?.to_wire() }))
    }

    /// `tasks.get_all` (services/tasks.py `get_all` over `Task.get_all_query_options`): `id`, `user`, `tags`,
    /// `system_tags`, `type`, `status`, `project`, `parent` and `execution.queue` are list fields with the
    /// server's operators (`-x`, `__$not`, `__$all`, `null`); `name` is a regex; `hidden` tasks need
    /// `search_hidden` or `id`.
    pub fn tasks_get_all(&self, r: rq::TaskGetAll) -> Result<Value> {
        let re = r.name.as_deref().map(compile_regex).transpose()?;
        let list = |field: &str, q: &rq::ListQuery| -> Result<Option<ListFilter>> {
            if q.is_empty() {
                Ok(None)
            } else {
                ListFilter::compile(field, q).map(Some)
            }
        };
        let filters: Vec<(ListFilter, FieldValues)> = [
            (
                list("id", &r.id)?,
                (|t: &Task| vec![t.id.as_str()]) as fn(&Task) -> Vec<&str>,
            ),
            (list("user", &r.user)?, |t| vec![t.user.as_str()]),
            (list("tags", &r.tags)?, |t| {
                t.tags.iter().map(String::as_str).collect()
            }),
            (list("system_tags", &r.system_tags)?, |t| {
                t.system_tags.iter().map(String::as_str).collect()
            }),
            (list("type", &r.task_type)?, |t| vec![t.task_type.as_str()]),
            (list("status", &r.status)?, |t| vec![t.status.as_str()]),
            (list("project", &r.project)?, |t| {
                t.project.as_deref().into_iter().collect()
            }),
            (list("parent", &r.parent)?, |t| {
                t.parent.as_deref().into_iter().collect()
            }),
            (list("execution.queue", &r.execution_queue)?, |t| {
                t.execution_queue().into_iter().collect()
            }),
        ]
        .into_iter()
        .filter_map(|(f, get)| f.map(|f| (f, get)))
        .collect();
        let show_hidden = r.search_hidden || !r.id.is_empty();
        let mut out: Vec<&Task> = self
            .tasks
            .values()
            .filter(|t| re.as_ref().is_none_or(|re| re.is_match(&t.name)))
            .filter(|t| filters.iter().all(|(f, get)| f.matches(&get(t))))
            .filter(|t| show_hidden || !t.system_tags.iter().any(|x| x == "hidden"))
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

    /// `tasks.edit` (services/tasks.py `edit`): a draft only unless forced (400/110); `execution` and `script` are
    /// merged one level deep, the other fields replaced. Answers `{updated, fields}`.
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
        // services/tasks.py `edit`: only a change beyond the user-settable fields (name, comment, tags, project,
        // ...) counts as an update of the run (`last_update`); every edit is a `last_change`.
        let run_fields = r.task_type.is_some()
            || r.parent.is_some()
            || r.execution.is_some()
            || r.script.is_some()
            || r.container.is_some()
            || r.hyperparams.is_some()
            || r.configuration.is_some()
            || r.runtime.is_some()
            || r.models.is_some()
            || r.status.is_some();
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
        if run_fields {
            t.last_update = now;
            fields.insert("last_update".into(), json!(now));
        }
        t.last_change = now;
        fields.insert("last_change".into(), json!(now));
        Ok(json!({ "updated": 1, "fields": fields }))
    }

    /// `tasks.update` (services/tasks.py `update`): plain field updates, status included, with no state-machine
    /// check. It stamps `last_change` only: a status message written by a glue is not a sign of life of the run.
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
        t.last_change = now;
        fields.insert("last_change".into(), json!(now));
        Ok(json!({ "updated": 1, "fields": fields }))
    }

    /// `tasks.ping`: `TaskBLL.set_last_update` on the task; an unknown id is silently ignored.
    pub fn tasks_ping(&mut self, r: rq::TaskId, now: Ts) -> Result<Value> {
        self.touch_task(&r.task, now);
        Ok(json!({}))
    }

    /// `tasks.delete` (task_operations.py `delete_task`): anything but a draft (or an archived task) needs `force`
    /// (400/123); the task is dequeued from every queue first.
    pub fn tasks_delete(&mut self, r: rq::StatusChange) -> Result<Value> {
        let t = self.task(&r.task)?;
        let archived = t.system_tags.iter().any(|s| s == "archived");
        if !r.force && t.status != TaskStatus::Created && !archived {
            return Err(ApiError::new(
                400,
                123,
                format!(
                    "Task cannot be deleted (due to status, use force=True): task={}, expected=created, current={}",
                    r.task, t.status
                ),
            ));
        }
        self.remove_from_all_queues(&r.task);
        self.tasks.remove(&r.task);
        self.task_logs.remove(&r.task);
        Ok(
            json!({ "deleted": true, "updated_children": 0, "updated_models": 0, "deleted_models": 0, "urls": {} }),
        )
    }

    /// `tasks.set_requirements`: stored in `script.requirements`; a task with no `script` is 400/122.
    pub fn tasks_set_requirements(&mut self, r: rq::SetRequirements, now: Ts) -> Result<Value> {
        let t = self.task_mut(&r.task)?;
        let Some(Value::Object(script)) = t.script.as_mut() else {
            return Err(ApiError::new(
                400,
                122,
                format!(
                    "Task is missing expected fields (Task has no script field): task={}",
                    r.task
                ),
            ));
        };
        script.insert("requirements".into(), r.requirements.clone());
        t.last_update = now;
        t.last_change = now;
        Ok(json!({ "updated": 1, "fields": { "script.requirements": r.requirements } }))
    }

    /// `tasks.edit_hyper_params`: adds or replaces parameters (values stored as strings); `{updated: 1}`.
    pub fn tasks_edit_hyper_params(&mut self, r: rq::EditHyperParams, now: Ts) -> Result<Value> {
        let t = self.task_mut(&r.task)?;
        // bll/task/hyperparams.py: the `properties` section (any case) may change on a task that is no longer a
        // draft (the glue writes k8s-queue etc. there on queued tasks); anything else needs `force`. An edit of
        // properties only is not a sign of life: it leaves `last_update` alone.
        let mut r = r;
        for h in &mut r.hyperparams {
            if h.section.eq_ignore_ascii_case("properties") {
                h.section = "properties".into();
            }
        }
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
        if !properties_only {
            t.last_update = now;
        }
        t.last_change = now;
        Ok(json!({ "updated": 1 }))
    }
}
