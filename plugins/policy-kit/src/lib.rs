//! Shared plumbing for the default queue policies in `plugins/`.
//!
//! # Start here
//! A plugin implements [`Policy`]: parse its config once ([`Policy::parse_config`], usually via [`config_from_value`])
//! and transform a pod as a `serde_json::Value` ([`Policy::transform`]). That logic is plain Rust, so it is unit
//! tested natively with `cargo test`. [`export_policy!`] turns the type into a WebAssembly component for the
//! `clearml:queue-policy@0.1.0` world (only on `wasm32`), and the `testing` feature runs a plugin's golden
//! `cases/` natively, the same files the host's `policy test` harness runs against the built component.

#![warn(missing_docs)]

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

pub mod arena;
#[cfg(feature = "testing")]
pub mod testing;

/// Every plugin's allocator in its component: see [`arena`]. A plugin that wants another one turns off the default
/// `arena` feature of `policy-kit`.
#[cfg(all(
    target_arch = "wasm32",
    not(target_feature = "atomics"),
    feature = "arena"
))]
#[global_allocator]
static ALLOCATOR: arena::GlobalArena = arena::GlobalArena::new();

/// Why a policy did not return a pod; mirrors the WIT `policy-error` variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyError {
    /// The task must not run as requested; shown to the ML user, so it says what to change.
    Reject(String),
    /// The queue's policy config is wrong; names the offending key.
    InvalidConfig(String),
    /// A bug or unexpected input; an operator should look.
    Internal(String),
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reject(m) => write!(f, "rejected: {m}"),
            Self::InvalidConfig(m) => write!(f, "invalid config: {m}"),
            Self::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for PolicyError {}

/// Severity of a log line; mirrors the WIT `log-level` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Detail for whoever debugs the policy.
    Debug,
    /// A decision worth recording (a label set, a value clamped).
    Info,
    /// Something the operator should look at.
    Warn,
    /// The policy failed.
    Error,
}

/// Where a policy's log lines go: the host's `log` import in a component, a vector in native tests.
pub trait Logger {
    /// Record one message.
    fn log(&mut self, level: Level, message: &str);
}

/// A logger that keeps every line, for tests.
#[derive(Debug, Default)]
pub struct VecLogger(pub Vec<(Level, String)>);

impl Logger for VecLogger {
    fn log(&mut self, level: Level, message: &str) {
        self.0.push((level, message.to_owned()));
    }
}

/// What the host knows about the task; a plain mirror of the WIT `task` record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Task {
    /// ClearML task id.
    pub id: String,
    /// Task name.
    pub name: String,
    /// Project name, when known.
    pub project: Option<String>,
    /// Owner, when known.
    pub user: Option<String>,
    /// Queue id the task was pulled from.
    pub queue_id: String,
    /// Queue name (the key under `agentk8sglue.queues`).
    pub queue_name: String,
    /// Tags and system tags.
    pub tags: Vec<String>,
    /// Requested container image.
    pub image: Option<String>,
    /// `"<section>/<name>" -> value`, in the host's order.
    pub properties: Vec<(String, String)>,
}

impl Task {
    /// The value of the first of `keys` the task has as a property, with the key that matched.
    pub fn first_property<'a>(&'a self, keys: &'a [String]) -> Option<(&'a str, &'a str)> {
        keys.iter().find_map(|key| {
            self.properties
                .iter()
                .find(|(k, _)| k == key)
                .map(|(k, v)| (k.as_str(), v.as_str()))
        })
    }

    /// The rest of the first tag that starts with `prefix` (`gpus=` on tag `gpus=2` gives `2`), with the tag.
    pub fn tag_value<'a>(&'a self, prefix: &str) -> Option<(&'a str, &'a str)> {
        if prefix.is_empty() {
            return None;
        }
        self.tags
            .iter()
            .find_map(|t| t.strip_prefix(prefix).map(|rest| (t.as_str(), rest)))
    }

    /// True when the task carries exactly this tag.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
}

/// One queue policy: config parsing plus a pure pod transform.
pub trait Policy {
    /// The parsed configuration, checked once at load time (`validate-config`) and again per evaluation.
    type Config;

    /// Parse and check the config. `null` (a queue that gives none) arrives as [`Value::Null`].
    fn parse_config(config: &Value) -> Result<Self::Config, PolicyError>;

    /// True for a policy that only accepts or rejects pods and never changes one (`transform` returns the pod it was
    /// given, or an error): the component then hands back the pod's JSON exactly as it came instead of serialising
    /// it again. Debug builds (the native tests of the golden cases) check the promise. Default: false.
    const INSPECTS_ONLY: bool = false;

    /// True when `transform` would return the pod unchanged for this config and task, so the pod need not be
    /// parsed and re-serialised at all (a queue without overrides, a task that asks for no GPUs). Default: false.
    fn leaves_pod_unchanged(_config: &Self::Config, _task: &Task) -> bool {
        false
    }

    /// Return the new pod for `task`. Must be deterministic.
    fn transform(
        pod: Value,
        task: &Task,
        config: &Self::Config,
        log: &mut dyn Logger,
    ) -> Result<Value, PolicyError>;
}

/// Deserialize a config struct from JSON, reporting the offending key with its path (`config.gpuTypes.a100: unknown
/// field ...`). `null` is read as `{}`, so a queue without config gets the struct's defaults.
pub fn config_from_value<T: DeserializeOwned>(config: &Value) -> Result<T, PolicyError> {
    let empty = Value::Object(serde_json::Map::new());
    let config = match config {
        Value::Null => &empty,
        Value::Object(_) => config,
        // serde would read a list into a struct field by field (`[4]` as `maxGpus: 4`): refuse it plainly.
        other => {
            let found = match other {
                Value::Array(_) => "a list",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                _ => "a boolean",
            };
            return Err(PolicyError::InvalidConfig(format!(
                "config: expected a map of settings, found {found}"
            )));
        }
    };
    serde_path_to_error::deserialize(config).map_err(|err| {
        let path = err.path().to_string();
        let at = if path == "." {
            "config".to_owned()
        } else {
            format!("config.{path}")
        };
        PolicyError::InvalidConfig(format!("{at}: {}", err.inner()))
    })
}

/// Parse a config given as a JSON string (what crosses the WIT boundary) with `P`'s rules.
pub fn parse_config_str<P: Policy>(config: &str) -> Result<P::Config, PolicyError> {
    let value: Value = serde_json::from_str(config)
        .map_err(|e| PolicyError::InvalidConfig(format!("config is not valid JSON: {e}")))?;
    P::parse_config(&value)
}

/// The whole evaluation with JSON strings in and out: parse config and pod, transform, serialise.
pub fn transform_str<P: Policy>(
    pod: &str,
    task: &Task,
    config: &str,
    log: &mut dyn Logger,
) -> Result<String, PolicyError> {
    let config = parse_config_str::<P>(config)?;
    if P::leaves_pod_unchanged(&config, task) {
        return Ok(pod.to_owned());
    }
    let input = pod;
    let pod: Value = serde_json::from_str(input)
        .map_err(|e| PolicyError::Internal(format!("the pod is not valid JSON: {e}")))?;
    if P::INSPECTS_ONLY {
        #[cfg(debug_assertions)]
        let before = pod.clone();
        let after = P::transform(pod, task, &config, log)?;
        #[cfg(debug_assertions)]
        if after != before {
            return Err(PolicyError::Internal(
                "the policy declares INSPECTS_ONLY but changed the pod".to_owned(),
            ));
        }
        drop(after);
        return Ok(input.to_owned());
    }
    let pod = P::transform(pod, task, &config, log)?;
    serde_json::to_string(&pod)
        .map_err(|e| PolicyError::Internal(format!("cannot serialise the pod: {e}")))
}

/// The map at `parent[key]`, created (or replacing a `null`) when absent: how plugins reach `metadata.labels`,
/// `resources.limits` and the like. A non-map value there is an internal error naming the field.
pub fn object_entry<'a>(
    parent: &'a mut serde_json::Map<String, Value>,
    key: &str,
) -> Result<&'a mut serde_json::Map<String, Value>, PolicyError> {
    let slot = parent
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    if slot.is_null() {
        *slot = Value::Object(serde_json::Map::new());
    }
    slot.as_object_mut()
        .ok_or_else(|| PolicyError::Internal(format!("pod field `{key}` is not an object")))
}

/// Path of a container for messages: `spec.containers[0] (clearml-task)`.
pub fn container_label(list: &str, index: usize, container: &Value) -> String {
    match container.get("name").and_then(Value::as_str) {
        Some(name) => format!("spec.{list}[{index}] ({name})"),
        None => format!("spec.{list}[{index}]"),
    }
}

/// The WIT bindings of the `clearml:queue-policy@0.1.0` world, generated once here (only on `wasm32`). The path
/// is relative to this crate, so a plugin finds the WIT through its `policy-kit` dependency wherever the plugin
/// itself lives (one folder deeper, or outside the repository with `policy-kit` as a path or git dependency).
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/0.1.0",
        world: "queue-policy",
        pub_export_macro: true,
        export_macro_name: "export_queue_policy",
        default_bindings_module: "policy_kit::bindings",
    });
}

/// Export `$policy` (a type implementing [`Policy`]) as the component's `policy` interface. Expands to nothing
/// off `wasm32`, so the crate still builds and tests natively. The plugin needs no `wit-bindgen` dependency and no
/// path to the WIT: the bindings are [`policy-kit`'s own](bindings).
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        #[cfg(target_arch = "wasm32")]
        mod component {
            use super::*;

            use $crate::bindings::clearml::queue_policy::types as wit_types;
            use $crate::bindings::exports::clearml::queue_policy::policy::Guest;

            struct HostLogger;

            impl $crate::Logger for HostLogger {
                fn log(&mut self, level: $crate::Level, message: &str) {
                    let level = match level {
                        $crate::Level::Debug => wit_types::LogLevel::Debug,
                        $crate::Level::Info => wit_types::LogLevel::Info,
                        $crate::Level::Warn => wit_types::LogLevel::Warn,
                        $crate::Level::Error => wit_types::LogLevel::Error,
                    };
                    $crate::bindings::clearml::queue_policy::host::log(level, message);
                }
            }

            fn to_wit(err: $crate::PolicyError) -> wit_types::PolicyError {
                match err {
                    $crate::PolicyError::Reject(m) => wit_types::PolicyError::Reject(m),
                    $crate::PolicyError::InvalidConfig(m) => wit_types::PolicyError::InvalidConfig(m),
                    $crate::PolicyError::Internal(m) => wit_types::PolicyError::Internal(m),
                }
            }

            struct Component;

            impl Guest for Component {
                fn validate_config(config: String) -> Result<(), wit_types::PolicyError> {
                    $crate::parse_config_str::<$policy>(&config).map(|_| ()).map_err(to_wit)
                }

                fn transform(
                    pod: String,
                    task: wit_types::Task,
                    config: String,
                ) -> Result<String, wit_types::PolicyError> {
                    let task = $crate::Task {
                        id: task.id,
                        name: task.name,
                        project: task.project,
                        user: task.user,
                        queue_id: task.queue_id,
                        queue_name: task.queue_name,
                        tags: task.tags,
                        image: task.image,
                        properties: task.properties,
                    };
                    $crate::transform_str::<$policy>(&pod, &task, &config, &mut HostLogger).map_err(to_wit)
                }
            }

            $crate::bindings::export_queue_policy!(Component with_types_in $crate::bindings);
        }
    };
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields, rename_all = "camelCase")]
    struct Inner {
        node_selector: std::collections::BTreeMap<String, String>,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields, rename_all = "camelCase")]
    struct Sample {
        max_gpus: Option<u32>,
        types: std::collections::BTreeMap<String, Inner>,
    }

    #[test]
    fn config_errors_carry_the_path() {
        let err = config_from_value::<Sample>(&json!({"maxGpu": 1})).unwrap_err();
        assert!(
            matches!(&err, PolicyError::InvalidConfig(m) if m.starts_with("config.maxGpu: unknown field `maxGpu`")),
            "{err}"
        );
        let err =
            config_from_value::<Sample>(&json!({"types": {"a100": {"nodeSelector": {"x": 1}}}}))
                .unwrap_err();
        assert!(
            matches!(&err, PolicyError::InvalidConfig(m) if m.starts_with("config.types.a100.nodeSelector.x:")),
            "{err}"
        );
        let err = config_from_value::<Sample>(&json!([1])).unwrap_err();
        assert!(
            matches!(&err, PolicyError::InvalidConfig(m) if m.starts_with("config: ")),
            "{err}"
        );
        assert_eq!(
            config_from_value::<Sample>(&Value::Null).unwrap(),
            Sample::default()
        );
    }

    #[test]
    fn task_lookups() {
        let task = Task {
            tags: vec!["resnet".into(), "gpus=2".into(), "gpus=3".into()],
            properties: vec![
                ("properties/k8s-gpus".into(), "4".into()),
                ("k8s/gpus".into(), "1".into()),
            ],
            ..Task::default()
        };
        let keys = vec!["k8s/gpus".to_owned(), "properties/k8s-gpus".to_owned()];
        // The first key in the caller's order wins, not the first property in the task's order.
        assert_eq!(task.first_property(&keys), Some(("k8s/gpus", "1")));
        assert_eq!(task.tag_value("gpus="), Some(("gpus=2", "2")));
        assert_eq!(task.tag_value(""), None);
        assert!(task.has_tag("resnet") && !task.has_tag("gpus"));
    }

    #[test]
    fn string_boundary_errors() {
        struct Echo;
        impl Policy for Echo {
            type Config = ();
            fn parse_config(_: &Value) -> Result<(), PolicyError> {
                Ok(())
            }
            fn transform(
                pod: Value,
                _: &Task,
                _: &(),
                _: &mut dyn Logger,
            ) -> Result<Value, PolicyError> {
                Ok(pod)
            }
        }
        let mut log = VecLogger::default();
        assert!(matches!(
            parse_config_str::<Echo>("{"),
            Err(PolicyError::InvalidConfig(_))
        ));
        assert!(matches!(
            transform_str::<Echo>("not json", &Task::default(), "null", &mut log),
            Err(PolicyError::Internal(_))
        ));
        assert_eq!(
            transform_str::<Echo>("{\"a\":1}", &Task::default(), "null", &mut log).unwrap(),
            "{\"a\":1}"
        );
        // An inspecting policy hands the input back byte for byte, and may not change the pod.
        struct Inspect;
        impl Policy for Inspect {
            const INSPECTS_ONLY: bool = true;
            type Config = bool;
            fn parse_config(config: &Value) -> Result<bool, PolicyError> {
                Ok(config.as_bool().unwrap_or_default())
            }
            fn transform(
                mut pod: Value,
                _: &Task,
                change: &bool,
                _: &mut dyn Logger,
            ) -> Result<Value, PolicyError> {
                if *change {
                    pod["changed"] = Value::Bool(true);
                }
                Ok(pod)
            }
        }
        let spaced = "{ \"a\" : 1 }";
        assert_eq!(
            transform_str::<Inspect>(spaced, &Task::default(), "false", &mut log).unwrap(),
            spaced
        );
        assert!(matches!(
            transform_str::<Inspect>(spaced, &Task::default(), "true", &mut log),
            Err(PolicyError::Internal(m)) if m.contains("INSPECTS_ONLY")
        ));
        assert_eq!(
            container_label("containers", 0, &json!({"name": "c"})),
            "spec.containers[0] (c)"
        );
    }
}
