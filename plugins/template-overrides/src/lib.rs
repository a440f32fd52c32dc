//! `template-overrides` queue policy: the ClearML Enterprise chart's `agentk8sglue.queues.<queue>.templateOverrides`.
//!
//! Each top-level field present in the queue's `templateOverrides` (values shape: `labels`, `resources`, `env`,
//! `nodeSelector`, ...) replaces the base pod's field; absent fields are inherited from `basePodTemplate`. With
//! `mergeStrategy: deep`, maps are merged and lists are merged by `name` instead. The values-shape -> Pod mapping is
//! `pod-template`, the same crate the host renders `basePodTemplate` with, so the two can never disagree.
//!
//! Config (JSON; `null` means no overrides):
//! ```yaml
//! templateOverrides: { labels: { team: blue } }   # the queue's templateOverrides, unchanged
//! mergeStrategy: replace                          # or deep
//! ```

use pod_template::{MergeStrategy, Template};
use policy_kit::{Level, Logger, Policy, PolicyError, Task};
use serde_json::Value;

/// The policy type exported as the component.
pub struct TemplateOverrides;

/// Parsed config.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The queue's overrides, normalised.
    pub overrides: Template,
    /// How they combine with the base pod.
    pub strategy: MergeStrategy,
}

const KEYS: &[&str] = &["templateOverrides", "mergeStrategy"];

impl Policy for TemplateOverrides {
    type Config = Config;

    fn parse_config(config: &Value) -> Result<Config, PolicyError> {
        let empty = serde_json::Map::new();
        let object = match config {
            Value::Null => &empty,
            Value::Object(o) => o,
            _ => {
                return Err(PolicyError::InvalidConfig(
                    "config: expected a map with `templateOverrides`".into(),
                ));
            }
        };
        if let Some(key) = object.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(PolicyError::InvalidConfig(format!(
                "config: unknown key `{key}` (known keys: {})",
                KEYS.join(", ")
            )));
        }
        let overrides = Template::from_value(
            object.get("templateOverrides").unwrap_or(&Value::Null),
            "templateOverrides",
        )
        .map_err(|e| PolicyError::InvalidConfig(e.to_string()))?;
        let strategy = match object.get("mergeStrategy") {
            None | Some(Value::Null) => MergeStrategy::Replace,
            Some(Value::String(s)) if s == "replace" => MergeStrategy::Replace,
            Some(Value::String(s)) if s == "deep" => MergeStrategy::Deep,
            Some(other) => {
                return Err(PolicyError::InvalidConfig(format!(
                    "mergeStrategy: expected `replace` or `deep`, found {other}"
                )));
            }
        };
        Ok(Config {
            overrides,
            strategy,
        })
    }

    fn leaves_pod_unchanged(config: &Config, _task: &Task) -> bool {
        config.overrides.is_empty()
    }

    fn transform(
        mut pod: Value,
        task: &Task,
        config: &Config,
        log: &mut dyn Logger,
    ) -> Result<Value, PolicyError> {
        pod_template::apply(&mut pod, &config.overrides, config.strategy)
            .map_err(|e| PolicyError::Internal(format!("cannot apply templateOverrides: {e}")))?;
        if !config.overrides.is_empty() {
            let fields: Vec<&str> = config.overrides.keys().collect();
            log.log(
                Level::Debug,
                &format!(
                    "queue {}: {} {}",
                    task.queue_name,
                    config.strategy,
                    fields.join(", ")
                ),
            );
        }
        Ok(pod)
    }
}

policy_kit::export_policy!(TemplateOverrides);

#[cfg(test)]
mod tests {
    use policy_kit::VecLogger;
    use serde_json::json;

    use super::*;

    fn run(pod: Value, config: Value) -> Result<Value, PolicyError> {
        let config = TemplateOverrides::parse_config(&config)?;
        TemplateOverrides::transform(pod, &Task::default(), &config, &mut VecLogger::default())
    }

    #[test]
    fn null_config_changes_nothing() {
        let pod = json!({"spec": {"containers": [{"name": "c"}]}});
        assert_eq!(run(pod.clone(), Value::Null).unwrap(), pod);
    }

    #[test]
    fn config_errors_name_the_key() {
        let err = TemplateOverrides::parse_config(&json!({"templateOverride": {}})).unwrap_err();
        assert!(
            err.to_string().contains("unknown key `templateOverride`"),
            "{err}"
        );
        let err = TemplateOverrides::parse_config(&json!({"templateOverrides": {"lables": {}}}))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown key `lables` at templateOverrides"),
            "{err}"
        );
        let err = TemplateOverrides::parse_config(&json!({"mergeStrategy": "merge"})).unwrap_err();
        assert!(err.to_string().contains("mergeStrategy"), "{err}");
    }

    #[test]
    fn pod_without_containers_is_an_internal_error() {
        let err = run(
            json!({"spec": {}}),
            json!({"templateOverrides": {"env": []}}),
        )
        .unwrap_err();
        assert!(matches!(err, PolicyError::Internal(_)), "{err}");
    }
}
