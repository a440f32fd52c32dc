//! The demo's data (`examples/demo/tasks.yaml` against `examples/demo/values.yaml`): the tasks to enqueue and what
//! each must end as, checked against the values' queues before anything starts.

use std::path::Path;

/// The demo data is unreadable or inconsistent.
#[derive(Debug, thiserror::Error)]
pub enum DemoDataError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid YAML of the expected shape.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: serde_yaml::Error,
    },
    /// A task names a queue the values do not have, or expects a status a task cannot end in.
    #[error("{path}: task {task}: {problem}")]
    Task {
        /// The tasks file.
        path: String,
        /// The task's name.
        task: String,
        /// What is wrong.
        problem: String,
    },
}

/// One line of `tasks.yaml`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoTask {
    /// Task name.
    pub name: String,
    /// Queue name (a key of `agentk8sglue.queues`).
    pub queue: String,
    /// The task's container image.
    #[serde(default)]
    pub image: Option<String>,
    /// Hyperparameter `k8s/gpus`.
    #[serde(default)]
    pub gpus: Option<u32>,
    /// The final ClearML status it must reach: `completed` or `failed`.
    pub expect: String,
    /// Why it ends that way (for the reader of the data file).
    #[serde(default)]
    pub why: Option<String>,
}

/// Statuses a demo task may be expected to end in.
pub const FINAL_STATUSES: [&str; 3] = ["completed", "failed", "stopped"];

/// Read `tasks` and check each against the queues of `values`.
pub fn load(tasks: &Path, values_file: &Path) -> Result<Vec<DemoTask>, DemoDataError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| DemoDataError::Read {
            path: path.display().to_string(),
            source,
        })
    };
    let parse_err = |path: &Path| {
        let path = path.display().to_string();
        move |source| DemoDataError::Parse { path, source }
    };
    let list: Vec<DemoTask> = serde_yaml::from_str(&read(tasks)?).map_err(parse_err(tasks))?;
    let values: serde_yaml::Value =
        serde_yaml::from_str(&read(values_file)?).map_err(parse_err(values_file))?;
    let queues = values
        .get("agentk8sglue")
        .and_then(|g| g.get("queues"))
        .and_then(serde_yaml::Value::as_mapping);
    for task in &list {
        let problem = |problem: String| DemoDataError::Task {
            path: tasks.display().to_string(),
            task: task.name.clone(),
            problem,
        };
        if !queues.is_some_and(|q| q.contains_key(task.queue.as_str())) {
            return Err(problem(format!(
                "queue {} is not in agentk8sglue.queues of {}",
                task.queue,
                values_file.display()
            )));
        }
        if !FINAL_STATUSES.contains(&task.expect.as_str()) {
            return Err(problem(format!(
                "expect: {} is not a final status ({})",
                task.expect,
                FINAL_STATUSES.join(", ")
            )));
        }
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_dir() -> std::path::PathBuf {
        cache_paths::package_dir(cache_paths::process_env, env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/demo")
    }

    #[test]
    fn the_committed_demo_data_is_consistent_and_shows_each_outcome() {
        let dir = demo_dir();
        let tasks = load(&dir.join("tasks.yaml"), &dir.join("values.yaml")).unwrap();
        let expect = |status: &str| tasks.iter().filter(|t| t.expect == status).count();
        assert!(expect("completed") >= 3, "some tasks complete");
        assert!(
            expect("failed") >= 2,
            "one rejected by a guardrail, one failing on its exit code"
        );
        for queue in [
            "red", "blue", "green", "1xGPU", "2xGPU", "research", "flaky",
        ] {
            assert!(tasks.iter().any(|t| t.queue == queue), "a task on {queue}");
        }
    }

    #[test]
    fn a_task_on_an_unknown_queue_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let tasks = dir.path().join("tasks.yaml");
        std::fs::write(&tasks, "- {name: t1, queue: purple, expect: completed}\n").unwrap();
        let values = dir.path().join("values.yaml");
        std::fs::write(&values, "agentk8sglue:\n  queues:\n    red: {}\n").unwrap();
        let err = load(&tasks, &values).unwrap_err().to_string();
        assert!(
            err.contains("task t1: queue purple is not in agentk8sglue.queues"),
            "{err}"
        );
        std::fs::write(&tasks, "- {name: t2, queue: red, expect: done}\n").unwrap();
        let err = load(&tasks, &values).unwrap_err().to_string();
        assert!(
            err.contains("task t2: expect: done is not a final status"),
            "{err}"
        );
    }
}
