//! The driver's own ClearML calls, made the way the SDK makes them: create a project and tasks, enqueue them by
//! queue id, read them back.

use clearml_api::{Client, ClientConfig, Enqueue, QueuesGetAll};
use serde_json::{Value, json};

/// A ClearML call of the driver failed.
#[derive(Debug, thiserror::Error)]
pub enum ClearmlError {
    /// The API answered with an error, or could not be reached.
    #[error("ClearML {call}: {source}")]
    Api {
        /// What the driver was doing.
        call: String,
        /// Why it failed.
        #[source]
        source: clearml_api::Error,
    },
    /// A queue the driver enqueues on does not exist (the agent creates its queues at start-up).
    #[error("queue {0:?} does not exist")]
    NoQueue(String),
}

/// A task to create: what an ML user would set in the SDK.
#[derive(Debug, Clone, Default)]
pub struct NewTask {
    /// Task name.
    pub name: String,
    /// `container.image` (empty: the queue's or agent's default).
    pub image: Option<String>,
    /// Hyperparameters `(section, name, value)`, e.g. `("k8s", "gpus", "2")`.
    pub hyperparams: Vec<(String, String, String)>,
    /// Tags.
    pub tags: Vec<String>,
}

/// The driver's ClearML client (on the emulator's uncounted listener).
pub struct Clearml {
    client: Client,
}

impl Clearml {
    /// Log in at `url` with the driver's credentials.
    pub fn new(url: &str) -> Result<Self, ClearmlError> {
        let client = Client::new(ClientConfig::new(url, crate::ACCESS_KEY, crate::SECRET_KEY))
            .map_err(|source| api("building the client", source))?;
        Ok(Self { client })
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The id of project `name`, created if missing.
    pub async fn project(&self, name: &str) -> Result<String, ClearmlError> {
        #[derive(serde::Deserialize)]
        struct Projects {
            projects: Vec<Value>,
        }
        let found: Projects = self
            .client
            .call("projects.get_all", &json!({"name": format!("^{name}$")}))
            .await
            .map_err(|source| api("projects.get_all", source))?;
        if let Some(id) = found.projects.first().and_then(|p| p["id"].as_str()) {
            return Ok(id.to_string());
        }
        let created: Created = self
            .client
            .call(
                "projects.create",
                &json!({"name": name, "description": "clearml-k8s-agent driver"}),
            )
            .await
            .map_err(|source| api("projects.create", source))?;
        Ok(created.id)
    }

    /// Create `task` (status `created`) in `project`; returns its id.
    pub async fn create_task(&self, project: &str, task: &NewTask) -> Result<String, ClearmlError> {
        let mut body =
            json!({"name": task.name, "type": "training", "project": project, "tags": task.tags});
        if let Some(image) = &task.image {
            body["container"] = json!({"image": image});
        }
        if !task.hyperparams.is_empty() {
            let mut sections = serde_json::Map::new();
            for (section, name, value) in &task.hyperparams {
                let entry = sections.entry(section.clone()).or_insert_with(|| json!({}));
                entry[name] = json!({"section": section, "name": name, "value": value});
            }
            body["hyperparams"] = Value::Object(sections);
        }
        let created: Created = self
            .client
            .call("tasks.create", &body)
            .await
            .map_err(|source| api(&format!("tasks.create {}", task.name), source))?;
        Ok(created.id)
    }

    /// The id of queue `name` (exact name).
    pub async fn queue_id(&self, name: &str) -> Result<String, ClearmlError> {
        let found = self
            .client
            .queues_get_all(&QueuesGetAll {
                name: Some(format!("^{}$", regex_escape(name))),
                ..QueuesGetAll::default()
            })
            .await
            .map_err(|source| api("queues.get_all", source))?;
        found
            .into_iter()
            .find(|q| q.name == name)
            .map(|q| q.id)
            .ok_or_else(|| ClearmlError::NoQueue(name.to_string()))
    }

    /// Enqueue `task` on queue `queue_id`.
    pub async fn enqueue(&self, task: &str, queue_id: &str) -> Result<(), ClearmlError> {
        self.client
            .tasks_enqueue(&Enqueue {
                task: task.to_string(),
                queue: Some(queue_id.to_string()),
                ..Enqueue::default()
            })
            .await
            .map_err(|source| api(&format!("tasks.enqueue {task}"), source))?;
        Ok(())
    }

    /// Task `id` as the server has it now.
    pub async fn task(&self, id: &str) -> Result<clearml_api::Task, ClearmlError> {
        self.client
            .tasks_get_by_id(id)
            .await
            .map_err(|source| api(&format!("tasks.get_by_id {id}"), source))
    }
}

#[derive(serde::Deserialize)]
struct Created {
    id: String,
}

fn api(call: &str, source: clearml_api::Error) -> ClearmlError {
    ClearmlError::Api {
        call: call.to_string(),
        source,
    }
}

/// Queue names are matched by regex on the server: escape what the regex would read as syntax.
fn regex_escape(name: &str) -> String {
    name.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn queue_names_are_escaped_for_the_server_regex() {
        assert_eq!(super::regex_escape("1xGPU"), "1xGPU");
        assert_eq!(super::regex_escape("a.b+c"), "a\\.b\\+c");
    }
}
