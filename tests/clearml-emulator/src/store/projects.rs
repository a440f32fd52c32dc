//! `projects.*`: create, list, get.

use serde_json::{Value, json};

use super::*;

impl Store {
    /// `projects.create`: `{id}`. The name must be unique (400/801) and at least 3 characters (400/800).
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

    /// `projects.get_all`: `{projects}` in creation order; `hidden` projects need `search_hidden` or `id`.
    pub fn projects_get_all(&self, r: rq::ProjectGetAll) -> Result<Value> {
        let re = r.name.as_deref().map(compile_regex).transpose()?;
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

    /// `projects.get_by_id`: `{project}`; an unknown id is 400/401.
    pub fn projects_get_by_id(&self, r: rq::ProjectGetById) -> Result<Value> {
        let p = self
            .projects
            .get(&r.project)
            .ok_or_else(|| ApiError::invalid_project_id(&r.project))?;
        Ok(json!({ "project": p }))
    }
}
