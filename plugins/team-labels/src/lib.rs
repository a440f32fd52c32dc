//! `team-labels` queue policy: labels, annotations and env per queue, plus labels derived from the task.
//!
//! Static `labels`, `annotations` and `env` are checked at load time (a label that Kubernetes would refuse is a
//! config error naming it). Derived labels (`userLabel`, `projectLabel`, `tagLabels`) come from the task's user,
//! project and tags and are sanitised into valid label values: at most 63 characters, `[A-Za-z0-9._-]`, starting and
//! ending with a letter or digit (`Alice Smith` becomes `Alice-Smith`). The agent's own labels (`clearml-task-id`,
//! `clearml-agent*`) and env (`CLEARML_*`) can be neither configured nor overwritten.

use std::collections::BTreeMap;

use policy_kit::{Level, Logger, Policy, PolicyError, Task, config_from_value, object_entry};
use serde::Deserialize;
use serde_json::{Value, json};

/// The policy type exported as the component.
pub struct TeamLabels;

/// One env var to set on the task container.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

/// A label taken from a tag: the first tag starting with `tagPrefix` sets `label` to the rest of the tag.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TagLabel {
    pub tag_prefix: String,
    pub label: String,
}

/// The policy config (camelCase keys; unknown keys are an error).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Labels set on every pod of the queue.
    pub labels: BTreeMap<String, String>,
    /// Annotations set on every pod of the queue.
    pub annotations: BTreeMap<String, String>,
    /// Env vars set (by name) on the task container.
    pub env: Vec<EnvVar>,
    /// Label that receives the task's user (sanitised).
    pub user_label: Option<String>,
    /// Label that receives the task's project (sanitised).
    pub project_label: Option<String>,
    /// Labels taken from tags such as `team=vision`.
    pub tag_labels: Vec<TagLabel>,
}

/// Longest label value (and label name) Kubernetes accepts.
const MAX_LABEL: usize = 63;

fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Why `value` is not a valid label value, if it is not.
fn label_value_problem(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        None
    } else if value.len() > MAX_LABEL {
        Some("longer than 63 characters")
    } else if !value.chars().all(is_label_char) {
        Some("only letters, digits, '-', '_' and '.' are allowed")
    } else if !value.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !value.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        Some("must start and end with a letter or digit")
    } else {
        None
    }
}

/// Why `key` is not a valid label or annotation key (`[prefix/]name`), if it is not.
fn key_problem(key: &str) -> Option<&'static str> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let dns = prefix.len() <= 253
            && prefix.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            });
        if !dns {
            return Some("the prefix before '/' must be a lowercase DNS name");
        }
    }
    if name.is_empty() {
        return Some("the name must not be empty");
    }
    label_value_problem(name)
}

/// Turn any text into a valid label value: runs of other characters become one '-', the ends are trimmed to a
/// letter or digit and the result is cut to 63 characters. Deterministic, so the same user always gets one label.
pub fn sanitise_label_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut replaced = false;
    for c in raw.chars() {
        if is_label_char(c) {
            out.push(c);
            replaced = false;
        } else if !replaced {
            out.push('-');
            replaced = true;
        }
    }
    let trim = |s: &str| {
        s.trim_matches(|c: char| !c.is_ascii_alphanumeric())
            .to_owned()
    };
    let out = trim(&out);
    // Every char left is ASCII, so cutting at a byte index is safe.
    if out.len() > MAX_LABEL {
        trim(&out[..MAX_LABEL])
    } else {
        out
    }
}

fn invalid(message: String) -> PolicyError {
    PolicyError::InvalidConfig(message)
}

fn check_label_key(path: &str, key: &str) -> Result<(), PolicyError> {
    if pod_template::is_agent_label(key) {
        return Err(invalid(format!(
            "{path}: `{key}` is the agent's own label and cannot be set by a policy"
        )));
    }
    match key_problem(key) {
        Some(problem) => Err(invalid(format!(
            "{path}: `{key}` is not a valid label key: {problem}"
        ))),
        None => Ok(()),
    }
}

impl Config {
    fn check(&self) -> Result<(), PolicyError> {
        for (key, value) in &self.labels {
            check_label_key(&format!("labels.{key}"), key)?;
            if let Some(problem) = label_value_problem(value) {
                return Err(invalid(format!(
                    "labels.{key}: `{value}` is not a valid label value: {problem}"
                )));
            }
        }
        for key in self.annotations.keys() {
            if let Some(problem) = key_problem(key) {
                return Err(invalid(format!(
                    "annotations.{key}: not a valid annotation key: {problem}"
                )));
            }
        }
        for (i, var) in self.env.iter().enumerate() {
            if pod_template::is_agent_env(&var.name) {
                return Err(invalid(format!(
                    "env[{i}].name: `{}` is reserved for the agent (CLEARML_*)",
                    var.name
                )));
            }
            if var.name.is_empty() || var.name.contains('=') {
                return Err(invalid(format!(
                    "env[{i}].name: `{}` is not a valid env var name",
                    var.name
                )));
            }
        }
        if let Some(key) = &self.user_label {
            check_label_key("userLabel", key)?;
        }
        if let Some(key) = &self.project_label {
            check_label_key("projectLabel", key)?;
        }
        for (i, rule) in self.tag_labels.iter().enumerate() {
            check_label_key(&format!("tagLabels[{i}].label"), &rule.label)?;
            if rule.tag_prefix.is_empty() {
                return Err(invalid(format!(
                    "tagLabels[{i}].tagPrefix: must not be empty"
                )));
            }
        }
        Ok(())
    }
}

/// The derived labels for `task`, sanitised; empty results are skipped (and logged).
fn derived_labels(task: &Task, config: &Config, log: &mut dyn Logger) -> Vec<(String, String)> {
    let mut sources: Vec<(&str, &str, String)> = Vec::new();
    if let (Some(key), Some(user)) = (&config.user_label, &task.user) {
        sources.push((key, user, "user".to_owned()));
    }
    if let (Some(key), Some(project)) = (&config.project_label, &task.project) {
        sources.push((key, project, "project".to_owned()));
    }
    for rule in &config.tag_labels {
        if let Some((tag, rest)) = task.tag_value(&rule.tag_prefix) {
            sources.push((&rule.label, rest, format!("tag `{tag}`")));
        }
    }
    let mut out = Vec::new();
    for (key, raw, from) in sources {
        let value = sanitise_label_value(raw);
        if value.is_empty() {
            log.log(
                Level::Warn,
                &format!("label {key}: {from} `{raw}` has no usable characters; label not set"),
            );
            continue;
        }
        if value != raw {
            log.log(
                Level::Info,
                &format!("label {key}: {from} `{raw}` sanitised to `{value}`"),
            );
        }
        out.push((key.to_owned(), value));
    }
    out
}

impl Policy for TeamLabels {
    type Config = Config;

    fn parse_config(config: &Value) -> Result<Config, PolicyError> {
        let config: Config = config_from_value(config)?;
        config.check()?;
        Ok(config)
    }

    fn leaves_pod_unchanged(config: &Config, _task: &Task) -> bool {
        *config == Config::default()
    }

    fn transform(
        mut pod: Value,
        task: &Task,
        config: &Config,
        log: &mut dyn Logger,
    ) -> Result<Value, PolicyError> {
        let derived = derived_labels(task, config, log);
        let root = pod
            .as_object_mut()
            .ok_or_else(|| PolicyError::Internal("the pod is not an object".to_owned()))?;
        let metadata = object_entry(root, "metadata")?;
        if !config.labels.is_empty() || !derived.is_empty() {
            let labels = object_entry(metadata, "labels")?;
            let statics = config.labels.iter().map(|(k, v)| (k.clone(), v.clone()));
            // Keys were checked at load time; the guard below keeps the agent's labels even if that changes.
            for (key, value) in statics
                .chain(derived)
                .filter(|(k, _)| !pod_template::is_agent_label(k))
            {
                labels.insert(key, Value::String(value));
            }
        }
        if !config.annotations.is_empty() {
            let annotations = object_entry(metadata, "annotations")?;
            for (key, value) in &config.annotations {
                annotations.insert(key.clone(), Value::String(value.clone()));
            }
        }
        if !config.env.is_empty() {
            let container = pod_template::task_container_mut(&mut pod)
                .ok_or_else(|| PolicyError::Internal("the pod has no containers".to_owned()))?;
            let slot = container.entry("env").or_insert_with(|| json!([]));
            if slot.is_null() {
                *slot = json!([]);
            }
            let env = slot.as_array_mut().ok_or_else(|| {
                PolicyError::Internal("the task container's env is not a list".to_owned())
            })?;
            for var in &config.env {
                let entry = json!({"name": var.name, "value": var.value});
                match env
                    .iter_mut()
                    .find(|e| e.get("name").and_then(Value::as_str) == Some(var.name.as_str()))
                {
                    Some(existing) => *existing = entry,
                    None => env.push(entry),
                }
            }
        }
        Ok(pod)
    }
}

policy_kit::export_policy!(TeamLabels);

#[cfg(test)]
mod tests {
    use policy_kit::VecLogger;

    use super::*;

    #[test]
    fn sanitises_label_values() {
        let long = "x".repeat(70);
        let cases = [
            ("Alice Smith", "Alice-Smith"),
            ("alice@example.com", "alice-example.com"),
            ("Vision / Classification (v2)", "Vision-Classification-v2"),
            ("  --weird--  ", "weird"),
            ("Zoë", "Zo"),
            ("日本", ""),
            (long.as_str(), &long[..63]),
        ];
        for (raw, want) in cases {
            let got = sanitise_label_value(raw);
            assert_eq!(got, want, "{raw}");
            assert!(label_value_problem(&got).is_none(), "{got}");
        }
        let cut = sanitise_label_value(&format!("{}-{}", "a".repeat(62), "b"));
        assert_eq!(cut, "a".repeat(62));
    }

    #[test]
    fn derived_labels_never_touch_agent_labels() {
        let err =
            TeamLabels::parse_config(&json!({"userLabel": "clearml-agent-user"})).unwrap_err();
        assert!(err.to_string().contains("agent's own label"), "{err}");
        let config = TeamLabels::parse_config(&json!({"userLabel": "owner"})).unwrap();
        let pod = json!({"metadata": {"labels": {"clearml-task-id": "t"}}, "spec": {"containers": [{"name": "c"}]}});
        let task = Task {
            user: Some("Bob".into()),
            ..Task::default()
        };
        let out = TeamLabels::transform(pod, &task, &config, &mut VecLogger::default()).unwrap();
        assert_eq!(
            out["metadata"]["labels"],
            json!({"clearml-task-id": "t", "owner": "Bob"})
        );
    }

    #[test]
    fn config_errors_name_the_key() {
        let cases = [
            (json!({"label": {}}), "unknown field `label`"),
            (
                json!({"labels": {"team": "Team Red"}}),
                "labels.team: `Team Red` is not a valid label value",
            ),
            (
                json!({"labels": {"Bad_Prefix/x": "a"}}),
                "labels.Bad_Prefix/x",
            ),
            (
                json!({"labels": {"clearml-task-id": "x"}}),
                "labels.clearml-task-id",
            ),
            (
                json!({"env": [{"name": "CLEARML_API_HOST", "value": "x"}]}),
                "env[0].name",
            ),
            (json!({"env": [{"name": "A"}]}), "config.env[0]"),
            (
                json!({"tagLabels": [{"tagPrefix": "team=", "label": "bad label"}]}),
                "tagLabels[0].label",
            ),
        ];
        for (config, want) in cases {
            let err = TeamLabels::parse_config(&config).unwrap_err();
            assert!(
                matches!(&err, PolicyError::InvalidConfig(m) if m.contains(want)),
                "{config}: {err}"
            );
        }
    }
}
