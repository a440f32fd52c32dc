//! The policy's logic, free of WIT types: unit-tested natively, and compiled into the host's benchmark as the
//! "native Rust" baseline for the same transform.

use serde_json::{Map, Value};

/// The parts of the task this policy uses.
pub struct TaskInfo<'a> {
    /// ClearML task id.
    pub id: &'a str,
    /// Task owner.
    pub user: Option<&'a str>,
}

/// The parsed config.
#[derive(Debug, Default)]
pub struct Config {
    labels: Map<String, Value>,
    limits: Map<String, Value>,
    requests: Map<String, Value>,
    task_label: bool,
}

/// Labels the agent owns: a policy must never change them.
fn is_agent_label(key: &str) -> bool {
    key == "clearml-task-id" || key.starts_with("clearml-agent")
}

fn string_map(value: Option<&Value>, key: &str) -> Result<Map<String, Value>, String> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => {
            for (k, v) in map {
                if !(v.is_string() || v.is_number()) {
                    return Err(format!("`{key}.{k}` must be a string or a number"));
                }
            }
            Ok(map
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        Value::String(v.as_str().map_or_else(|| v.to_string(), str::to_string)),
                    )
                })
                .collect())
        }
        Some(_) => Err(format!("`{key}` must be a map")),
    }
}

/// Parse and check the config JSON; errors name the offending key.
pub fn parse_config(json: &str) -> Result<Config, String> {
    let value: Value =
        serde_json::from_str(json).map_err(|e| format!("config is not JSON: {e}"))?;
    let Value::Object(map) = value else {
        return if value.is_null() {
            Ok(Config::default())
        } else {
            Err("config must be a map".to_string())
        };
    };
    for key in map.keys() {
        if !matches!(key.as_str(), "labels" | "resources" | "taskLabel") {
            return Err(format!(
                "unknown key `{key}` (expected labels, resources, taskLabel)"
            ));
        }
    }
    let labels = string_map(map.get("labels"), "labels")?;
    if let Some(key) = labels.keys().find(|k| is_agent_label(k)) {
        return Err(format!(
            "`labels.{key}` is owned by the agent and cannot be set by a policy"
        ));
    }
    let (mut limits, mut requests) = (Map::new(), Map::new());
    match map.get("resources") {
        None | Some(Value::Null) => {}
        Some(Value::Object(resources)) => {
            for key in resources.keys() {
                if !matches!(key.as_str(), "limits" | "requests") {
                    return Err(format!(
                        "unknown key `resources.{key}` (expected limits, requests)"
                    ));
                }
            }
            limits = string_map(resources.get("limits"), "resources.limits")?;
            requests = string_map(resources.get("requests"), "resources.requests")?;
        }
        Some(_) => return Err("`resources` must be a map".to_string()),
    }
    let task_label = match map.get("taskLabel") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("`taskLabel` must be true or false".to_string()),
    };
    Ok(Config {
        labels,
        limits,
        requests,
        task_label,
    })
}

/// A valid label value from free text: at most 63 characters of `[A-Za-z0-9._-]`, starting and ending alphanumeric.
pub fn label_value(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    cleaned
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

fn object_at<'a>(value: &'a mut Value, key: &str) -> Result<&'a mut Map<String, Value>, String> {
    let Value::Object(parent) = value else {
        return Err(format!("expected a map around `{key}`"));
    };
    let child = parent
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()));
    if child.is_null() {
        *child = Value::Object(Map::new());
    }
    child
        .as_object_mut()
        .ok_or_else(|| format!("`{key}` is not a map"))
}

/// Apply the config to the pod.
pub fn transform(pod: &mut Value, task: &TaskInfo<'_>, config: &Config) -> Result<(), String> {
    let metadata = object_at(pod, "metadata")?;
    let labels = object_at_map(metadata, "labels")?;
    for (k, v) in &config.labels {
        labels.insert(k.clone(), v.clone());
    }
    if config.task_label
        && let Some(user) = task.user.map(label_value).filter(|u| !u.is_empty())
    {
        labels.insert("clearml-user".to_string(), Value::String(user));
    }
    if config.limits.is_empty() && config.requests.is_empty() {
        return Ok(());
    }
    let container = pod
        .pointer_mut("/spec/containers/0")
        .ok_or_else(|| format!("task {}: pod has no container to size", task.id))?;
    let resources = object_at(container, "resources")?;
    for (section, values) in [("limits", &config.limits), ("requests", &config.requests)] {
        if values.is_empty() {
            continue;
        }
        let target = object_at_map(resources, section)?;
        for (k, v) in values {
            target.insert(k.clone(), v.clone());
        }
    }
    Ok(())
}

fn object_at_map<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Result<&'a mut Map<String, Value>, String> {
    let child = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if child.is_null() {
        *child = Value::Object(Map::new());
    }
    child
        .as_object_mut()
        .ok_or_else(|| format!("`{key}` is not a map"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refuses_unknown_and_agent_owned_keys() {
        assert!(
            parse_config(r#"{"labelz": {}}"#)
                .unwrap_err()
                .contains("`labelz`")
        );
        assert!(
            parse_config(r#"{"labels": {"clearml-task-id": "x"}}"#)
                .unwrap_err()
                .contains("clearml-task-id")
        );
        assert!(parse_config("null").is_ok());
    }

    #[test]
    fn labels_and_sizes_the_first_container() {
        let mut pod =
            json!({"metadata": {}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let config = parse_config(
            r#"{"labels": {"team": "x"}, "resources": {"limits": {"cpu": 2}}, "taskLabel": true}"#,
        )
        .unwrap();
        transform(
            &mut pod,
            &TaskInfo {
                id: "t",
                user: Some("Jane Doe!"),
            },
            &config,
        )
        .unwrap();
        assert_eq!(
            pod["metadata"]["labels"],
            json!({"team": "x", "clearml-user": "Jane_Doe"})
        );
        assert_eq!(
            pod["spec"]["containers"][0]["resources"]["limits"]["cpu"],
            "2"
        );
        assert!(pod["spec"]["containers"][1].get("resources").is_none());
    }
}
