//! Values-shaped pod template (the `basePodTemplate` / `templateOverrides` shape of the ClearML Enterprise chart)
//! mapped onto a Kubernetes `v1/Pod`. Compiles for the host and for `wasm32-wasip2` (the template-overrides plugin),
//! so the agent's base render and a queue's overrides go through the same code.
//!
//! # Start here
//! - [`Template::from_value`] parses and normalises a template (`deny_unknown_fields`, camelCase; errors name the
//!   key and its path). [`Template`] also implements `Deserialize`, for embedding in a config struct.
//! - [`apply`] renders a template onto a pod with a [`MergeStrategy`]:
//!   - [`MergeStrategy::Replace`] (the chart's semantics, default): every field present in the template replaces the
//!     pod's field; fields absent from the template are left as they are (inherited).
//!   - [`MergeStrategy::Deep`] (opt-in): maps are merged key by key, lists of named objects are merged by `name`
//!     (`volumeMounts` by `mountPath`, as Kubernetes' strategic merge does), other lists and scalars are replaced.
//! - [`merge_templates`] combines `basePodTemplate` and `templateOverrides` at template level with the same rules.
//!
//! # Where each field goes
//! Pod-level fields go to `metadata` or `spec`; container-level fields (`resources`, `env`, `volumeMounts`,
//! `containerSecurityContext`, ...) go to **the task container**: the container named [`TASK_CONTAINER_NAME`] if
//! the pod has one, otherwise the first container (see [`task_container_index`]). Sidecars are never touched.
//!
//! # What the agent owns
//! Neither strategy drops or changes what the agent itself put on the pod: labels for which [`is_agent_label`] holds
//! (`clearml-task-id`, `clearml-agent*`) and env vars for which [`is_agent_env`] holds (`CLEARML_*`) are kept, and
//! win over a template entry of the same name. The Enterprise chart behaves the same way: its overrides replace the
//! *template's* labels and env, and the agent adds its own afterwards.
//!
//! # Example: the doc's `blue` queue
//! ```
//! use pod_template::{apply, MergeStrategy, Template};
//! use serde_json::json;
//!
//! // The host renders `basePodTemplate` onto its own pod (agent labels, the task container) ...
//! let base = Template::from_value(
//!     &json!({"labels": {"team": "red"}, "resources": {"limits": {"memory": "1Gi"}}}),
//!     "agentk8sglue.basePodTemplate",
//! )?;
//! let mut pod = json!({
//!     "metadata": {"labels": {"clearml-task-id": "abc"}},
//!     "spec": {"containers": [{"name": "clearml-task", "image": "python:3.11"}]}
//! });
//! apply(&mut pod, &base, MergeStrategy::Replace)?;
//! // ... and the template-overrides plugin applies the queue's overrides with the same code.
//! let blue = Template::from_value(&json!({"labels": {"team": "blue"}}), "agentk8sglue.queues.blue.templateOverrides")?;
//! apply(&mut pod, &blue, MergeStrategy::Replace)?;
//! assert_eq!(pod["metadata"]["labels"], json!({"clearml-task-id": "abc", "team": "blue"}));
//! assert_eq!(pod["spec"]["containers"][0]["resources"]["limits"]["memory"], "1Gi");
//! # Ok::<(), pod_template::Error>(())
//! ```
//!
//! The plugin's config, built by the host from a queue's values, is
//! `{"templateOverrides": <queues.<q>.templateOverrides>, "mergeStrategy": "replace" | "deep"}`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Name the host gives the container that runs the ClearML task. Container-level fields target it.
pub const TASK_CONTAINER_NAME: &str = "clearml-task";

/// Labels the agent sets on every pod and that templates and policies must not overwrite or drop.
pub const AGENT_LABELS: &[&str] = &[
    "clearml-task-id",
    "clearml-agent-queue",
    "clearml-agent-queue-name",
];

/// Any label starting with this prefix belongs to the agent (`clearml-agent-queue`, `clearml-agent-instance`, ...).
pub const AGENT_LABEL_PREFIX: &str = "clearml-agent";

/// Env vars starting with this prefix are the agent's (ClearML connection, worker id, task id).
pub const AGENT_ENV_PREFIX: &str = "CLEARML_";

/// Errors from parsing a template or applying it to a pod.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The template has a key that is not part of the values shape.
    #[error("unknown key `{key}` at {path} (known keys: {known})")]
    UnknownKey {
        /// Where the key was found, e.g. `agentk8sglue.queues.red.templateOverrides`.
        path: String,
        /// The offending key.
        key: String,
        /// The keys allowed at that place, comma-separated, so the user can spot a typo.
        known: String,
    },
    /// A value has the wrong JSON type.
    #[error("{path}: expected {expected}, found {found}")]
    InvalidType {
        /// Full path of the value, e.g. `templateOverrides.resources.limits.memory`.
        path: String,
        /// What the values shape wants there.
        expected: &'static str,
        /// What was given (JSON type name).
        found: &'static str,
    },
    /// The pod given to [`apply`] cannot carry the template (not an object, no containers, ...).
    #[error("invalid pod: {0}")]
    InvalidPod(String),
}

/// How a template's fields combine with what is already there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeStrategy {
    /// Each field present replaces the existing field as a whole (the Enterprise chart's `templateOverrides`).
    #[default]
    Replace,
    /// Maps are merged recursively and lists of named objects are merged by name.
    Deep,
}

/// Where a template field lands in the pod.
#[derive(Debug, Clone, Copy)]
enum Target {
    Metadata(&'static str),
    Spec(&'static str),
    Container(&'static str),
}

/// The JSON shape a field must have; also drives normalisation (numbers to strings where Kubernetes wants strings).
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Map of string values (labels, annotations, nodeSelector); scalars are turned into strings.
    StringMap,
    /// `{limits, requests, claims}`; quantities given as YAML numbers (`nvidia.com/gpu: 1`) become strings.
    Resources,
    /// List of `{name, value|valueFrom}`; scalar values become strings.
    Env,
    /// List of objects that each have a string `name`.
    NamedList,
    /// Any list.
    List,
    /// Any object.
    Object,
    String,
    Bool,
    Integer,
}

/// One key of the values shape.
struct Field {
    key: &'static str,
    target: Target,
    kind: Kind,
}

const fn field(key: &'static str, target: Target, kind: Kind) -> Field {
    Field { key, target, kind }
}

/// The values shape: every key `basePodTemplate` / `templateOverrides` accepts, and where it goes. The chart's
/// `fileMounts` is not here: it needs a Secret next to the pod, which a pod template cannot create.
const FIELDS: &[Field] = &[
    field("labels", Target::Metadata("labels"), Kind::StringMap),
    field(
        "annotations",
        Target::Metadata("annotations"),
        Kind::StringMap,
    ),
    field(
        "nodeSelector",
        Target::Spec("nodeSelector"),
        Kind::StringMap,
    ),
    field("tolerations", Target::Spec("tolerations"), Kind::List),
    field("affinity", Target::Spec("affinity"), Kind::Object),
    field(
        "topologySpreadConstraints",
        Target::Spec("topologySpreadConstraints"),
        Kind::List,
    ),
    field(
        "initContainers",
        Target::Spec("initContainers"),
        Kind::NamedList,
    ),
    field("volumes", Target::Spec("volumes"), Kind::NamedList),
    field(
        "priorityClassName",
        Target::Spec("priorityClassName"),
        Kind::String,
    ),
    field(
        "podSecurityContext",
        Target::Spec("securityContext"),
        Kind::Object,
    ),
    field("schedulerName", Target::Spec("schedulerName"), Kind::String),
    field(
        "runtimeClassName",
        Target::Spec("runtimeClassName"),
        Kind::String,
    ),
    field("hostAliases", Target::Spec("hostAliases"), Kind::List),
    field(
        "imagePullSecrets",
        Target::Spec("imagePullSecrets"),
        Kind::NamedList,
    ),
    field(
        "serviceAccountName",
        Target::Spec("serviceAccountName"),
        Kind::String,
    ),
    field("hostNetwork", Target::Spec("hostNetwork"), Kind::Bool),
    field("hostPID", Target::Spec("hostPID"), Kind::Bool),
    field("hostIPC", Target::Spec("hostIPC"), Kind::Bool),
    field("dnsPolicy", Target::Spec("dnsPolicy"), Kind::String),
    field("dnsConfig", Target::Spec("dnsConfig"), Kind::Object),
    field(
        "enableServiceLinks",
        Target::Spec("enableServiceLinks"),
        Kind::Bool,
    ),
    field(
        "terminationGracePeriodSeconds",
        Target::Spec("terminationGracePeriodSeconds"),
        Kind::Integer,
    ),
    field(
        "activeDeadlineSeconds",
        Target::Spec("activeDeadlineSeconds"),
        Kind::Integer,
    ),
    field("resources", Target::Container("resources"), Kind::Resources),
    field("env", Target::Container("env"), Kind::Env),
    field("envFrom", Target::Container("envFrom"), Kind::List),
    field(
        "volumeMounts",
        Target::Container("volumeMounts"),
        Kind::List,
    ),
    field(
        "containerSecurityContext",
        Target::Container("securityContext"),
        Kind::Object,
    ),
    field(
        "imagePullPolicy",
        Target::Container("imagePullPolicy"),
        Kind::String,
    ),
    field("ports", Target::Container("ports"), Kind::List),
    field("workingDir", Target::Container("workingDir"), Kind::String),
];

const RESOURCE_KEYS: &[&str] = &["limits", "requests", "claims"];

fn lookup(key: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.key == key)
}

/// Every key a template accepts, in the order of the values shape.
pub fn known_keys() -> impl Iterator<Item = &'static str> {
    FIELDS.iter().map(|f| f.key)
}

/// A parsed, normalised values-shaped template. Only the keys the user wrote are present: an absent key means
/// "inherit", which is what makes the chart's override semantics work.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Template {
    fields: BTreeMap<String, Value>,
}

impl Template {
    /// Parse a template from JSON. `path` names where it came from (e.g. `agentk8sglue.basePodTemplate`) so errors
    /// point at the exact key. `null` is the empty template. Keys whose value is `null` are treated as absent, as
    /// Helm's `default` does.
    pub fn from_value(value: &Value, path: &str) -> Result<Self, Error> {
        let object = match value {
            Value::Null => return Ok(Self::default()),
            Value::Object(object) => object,
            other => return Err(invalid(path, "a map of pod template fields", other)),
        };
        let mut fields = BTreeMap::new();
        for (key, value) in object {
            let field = lookup(key).ok_or_else(|| Error::UnknownKey {
                path: path.to_owned(),
                key: key.clone(),
                known: known_keys().collect::<Vec<_>>().join(", "),
            })?;
            if value.is_null() {
                continue;
            }
            let field_path = join(path, key);
            fields.insert(key.clone(), normalise(field.kind, value, &field_path)?);
        }
        Ok(Self { fields })
    }

    /// The normalised value of a key, if the template sets it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.get(key)
    }

    /// True when the template sets nothing (`{}`, the chart's "does not override").
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The keys this template sets, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(String::as_str)
    }

    /// The template as a JSON object (the normalised values shape).
    pub fn to_value(&self) -> Value {
        Value::Object(
            self.fields
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_value(&value, "template").map_err(serde::de::Error::custom)
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

fn invalid(path: &str, expected: &'static str, found: &Value) -> Error {
    Error::InvalidType {
        path: path.to_owned(),
        expected,
        found: type_name(found),
    }
}

/// A YAML scalar where Kubernetes wants a string: `1` -> `"1"`, `true` -> `"true"`.
fn scalar_string(value: &Value, path: &str, expected: &'static str) -> Result<Value, Error> {
    match value {
        Value::String(_) => Ok(value.clone()),
        Value::Number(n) => Ok(Value::String(n.to_string())),
        Value::Bool(b) => Ok(Value::String(b.to_string())),
        other => Err(invalid(path, expected, other)),
    }
}

fn string_map(value: &Value, path: &str, expected: &'static str) -> Result<Value, Error> {
    let object = value
        .as_object()
        .ok_or_else(|| invalid(path, "a map", value))?;
    let mut out = Map::new();
    for (key, value) in object {
        out.insert(
            key.clone(),
            scalar_string(value, &join(path, key), expected)?,
        );
    }
    Ok(Value::Object(out))
}

fn normalise(kind: Kind, value: &Value, path: &str) -> Result<Value, Error> {
    match kind {
        Kind::StringMap => string_map(value, path, "a string"),
        Kind::Resources => {
            let object = value
                .as_object()
                .ok_or_else(|| invalid(path, "a map with limits/requests", value))?;
            let mut out = Map::new();
            for (key, value) in object {
                let sub = join(path, key);
                let normalised = match key.as_str() {
                    "limits" | "requests" => {
                        string_map(value, &sub, "a quantity (e.g. 2, 500m, 1Gi)")?
                    }
                    "claims" => value
                        .as_array()
                        .map(|_| value.clone())
                        .ok_or_else(|| invalid(&sub, "a list", value))?,
                    _ => {
                        return Err(Error::UnknownKey {
                            path: path.to_owned(),
                            key: key.clone(),
                            known: RESOURCE_KEYS.join(", "),
                        });
                    }
                };
                out.insert(key.clone(), normalised);
            }
            Ok(Value::Object(out))
        }
        Kind::Env => {
            let items = value
                .as_array()
                .ok_or_else(|| invalid(path, "a list of {name, value}", value))?;
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{path}[{i}]");
                let object = item
                    .as_object()
                    .ok_or_else(|| invalid(&item_path, "a map with `name`", item))?;
                named(object, &item_path)?;
                let mut object = object.clone();
                if let Some(v) = object.get("value").filter(|v| !v.is_null()) {
                    let v = scalar_string(v, &join(&item_path, "value"), "a string")?;
                    object.insert("value".to_owned(), v);
                }
                out.push(Value::Object(object));
            }
            Ok(Value::Array(out))
        }
        Kind::NamedList => {
            let items = value
                .as_array()
                .ok_or_else(|| invalid(path, "a list", value))?;
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{path}[{i}]");
                let object = item
                    .as_object()
                    .ok_or_else(|| invalid(&item_path, "a map with `name`", item))?;
                named(object, &item_path)?;
            }
            Ok(value.clone())
        }
        Kind::List => value
            .as_array()
            .map(|_| value.clone())
            .ok_or_else(|| invalid(path, "a list", value)),
        Kind::Object => value
            .as_object()
            .map(|_| value.clone())
            .ok_or_else(|| invalid(path, "a map", value)),
        Kind::String => value
            .as_str()
            .map(|_| value.clone())
            .ok_or_else(|| invalid(path, "a string", value)),
        Kind::Bool => value
            .as_bool()
            .map(|_| value.clone())
            .ok_or_else(|| invalid(path, "true or false", value)),
        Kind::Integer => value
            .as_i64()
            .map(|_| value.clone())
            .ok_or_else(|| invalid(path, "a whole number", value)),
    }
}

fn named(object: &Map<String, Value>, path: &str) -> Result<(), Error> {
    match object.get("name") {
        Some(Value::String(_)) => Ok(()),
        Some(other) => Err(invalid(&join(path, "name"), "a string", other)),
        None => Err(Error::InvalidType {
            path: join(path, "name"),
            expected: "a string",
            found: "nothing",
        }),
    }
}

/// True for labels the agent owns: the fixed [`AGENT_LABELS`] and anything starting with [`AGENT_LABEL_PREFIX`].
pub fn is_agent_label(key: &str) -> bool {
    AGENT_LABELS.contains(&key) || key.starts_with(AGENT_LABEL_PREFIX)
}

/// True for env vars the agent owns (ClearML connection and identity: `CLEARML_*`).
pub fn is_agent_env(name: &str) -> bool {
    name.starts_with(AGENT_ENV_PREFIX)
}

/// Index of the task container in `pod.spec.containers`: the one named [`TASK_CONTAINER_NAME`], else the first.
/// `None` when the pod has no containers.
pub fn task_container_index(pod: &Value) -> Option<usize> {
    let containers = pod.pointer("/spec/containers")?.as_array()?;
    if containers.is_empty() {
        return None;
    }
    Some(
        containers
            .iter()
            .position(|c| c.get("name").and_then(Value::as_str) == Some(TASK_CONTAINER_NAME))
            .unwrap_or(0),
    )
}

/// The task container, mutable (see [`task_container_index`]).
pub fn task_container_mut(pod: &mut Value) -> Option<&mut Map<String, Value>> {
    let index = task_container_index(pod)?;
    pod.pointer_mut("/spec/containers")?
        .as_array_mut()?
        .get_mut(index)?
        .as_object_mut()
}

/// The object at `key` inside `parent`, created when missing (or when it held `null`).
fn child_object<'a>(
    parent: &'a mut Map<String, Value>,
    key: &str,
) -> Result<&'a mut Map<String, Value>, Error> {
    let slot = parent
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
        .ok_or_else(|| Error::InvalidPod(format!("`{key}` is not an object")))
}

/// Render `template` onto `pod` (a `v1/Pod` as JSON) with `strategy`. Fields absent from the template are left as
/// they are. Agent-owned labels and env vars survive a replace (see the crate docs).
pub fn apply(pod: &mut Value, template: &Template, strategy: MergeStrategy) -> Result<(), Error> {
    if template.is_empty() {
        return Ok(());
    }
    let needs_container = template
        .keys()
        .any(|k| matches!(lookup(k), Some(f) if matches!(f.target, Target::Container(_))));
    let container_index = if needs_container {
        Some(task_container_index(pod).ok_or_else(|| {
            Error::InvalidPod("the pod has no containers to apply container fields to".to_owned())
        })?)
    } else {
        None
    };
    let pod = pod
        .as_object_mut()
        .ok_or_else(|| Error::InvalidPod("not a JSON object".to_owned()))?;
    for (key, value) in &template.fields {
        let Some(field) = lookup(key) else { continue };
        let (parent, name) = match field.target {
            Target::Metadata(name) => (child_object(pod, "metadata")?, name),
            Target::Spec(name) => (child_object(pod, "spec")?, name),
            Target::Container(name) => {
                let spec = child_object(pod, "spec")?;
                let containers = spec
                    .get_mut("containers")
                    .and_then(Value::as_array_mut)
                    .ok_or_else(|| {
                        Error::InvalidPod("`spec.containers` is not a list".to_owned())
                    })?;
                let container = container_index
                    .and_then(|i| containers.get_mut(i))
                    .and_then(Value::as_object_mut)
                    .ok_or_else(|| {
                        Error::InvalidPod("the task container is not an object".to_owned())
                    })?;
                (container, name)
            }
        };
        let current = parent.remove(name).unwrap_or(Value::Null);
        let merged = match strategy {
            MergeStrategy::Replace => replace_keeping_agent(key, &current, value),
            MergeStrategy::Deep => {
                let merged = deep_merge(name, current.clone(), value);
                restore_agent_entries(key, &current, merged)
            }
        };
        if !is_empty(&merged) {
            parent.insert(name.to_owned(), merged);
        }
    }
    Ok(())
}

/// A replace that keeps what the agent owns: agent labels and env vars from `current` survive, and win over
/// template entries with the same key.
fn replace_keeping_agent(key: &str, current: &Value, value: &Value) -> Value {
    match (key, current, value) {
        ("labels", Value::Object(current), Value::Object(new)) => {
            let mut out = new.clone();
            for (k, v) in current.iter().filter(|(k, _)| is_agent_label(k)) {
                out.insert(k.clone(), v.clone());
            }
            Value::Object(out)
        }
        ("env", Value::Array(current), Value::Array(new)) => {
            let agent: Vec<&Value> = current
                .iter()
                .filter(|e| env_name(e).is_some_and(is_agent_env))
                .collect();
            let agent_names: BTreeSet<&str> = agent.iter().filter_map(|e| env_name(e)).collect();
            let mut out: Vec<Value> = new
                .iter()
                .filter(|e| !env_name(e).is_some_and(|n| agent_names.contains(n)))
                .cloned()
                .collect();
            out.extend(agent.into_iter().cloned());
            Value::Array(out)
        }
        _ => value.clone(),
    }
}

/// After a deep merge, put back the agent's labels and env vars exactly as they were: a template may add to them
/// but never change them.
fn restore_agent_entries(key: &str, current: &Value, mut merged: Value) -> Value {
    match (key, current, &mut merged) {
        ("labels", Value::Object(current), Value::Object(out)) => {
            for (k, v) in current.iter().filter(|(k, _)| is_agent_label(k)) {
                out.insert(k.clone(), v.clone());
            }
        }
        ("env", Value::Array(current), Value::Array(out)) => {
            for original in current
                .iter()
                .filter(|e| env_name(e).is_some_and(is_agent_env))
            {
                if let Some(slot) = out.iter_mut().find(|e| env_name(e) == env_name(original)) {
                    *slot = original.clone();
                }
            }
        }
        _ => {}
    }
    merged
}

fn env_name(entry: &Value) -> Option<&str> {
    entry.get("name").and_then(Value::as_str)
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// The key that identifies an item of the list stored under `field`, for a deep merge. Kubernetes merges
/// `volumeMounts` by `mountPath` (a volume may be mounted twice); everything else we merge is keyed by `name`.
fn merge_key(field: &str) -> &'static str {
    if field == "volumeMounts" {
        "mountPath"
    } else {
        "name"
    }
}

/// Deep merge `new` into `current`: maps key by key, lists of keyed objects item by item (new items appended in
/// order), anything else replaced by `new`.
pub fn deep_merge(field: &str, current: Value, new: &Value) -> Value {
    match (current, new) {
        (Value::Object(mut current), Value::Object(new)) => {
            for (k, v) in new {
                let old = current.remove(k).unwrap_or(Value::Null);
                current.insert(k.clone(), deep_merge(k, old, v));
            }
            Value::Object(current)
        }
        (Value::Array(current), Value::Array(new)) => {
            let key = merge_key(field);
            let keyed = |items: &[Value]| {
                items
                    .iter()
                    .all(|i| i.get(key).and_then(Value::as_str).is_some())
            };
            if !(keyed(&current) && keyed(new)) {
                return Value::Array(new.clone());
            }
            let mut out = current;
            for item in new {
                let id = item.get(key).and_then(Value::as_str);
                match out
                    .iter_mut()
                    .find(|o| o.get(key).and_then(Value::as_str) == id)
                {
                    Some(existing) => {
                        let old = std::mem::take(existing);
                        *existing = deep_merge(field, old, item);
                    }
                    None => out.push(item.clone()),
                }
            }
            Value::Array(out)
        }
        (_, new) => new.clone(),
    }
}

/// Combine a base template with a queue's overrides at template level: with [`MergeStrategy::Replace`] each key of
/// `overrides` replaces the base's; with [`MergeStrategy::Deep`] the two are deep-merged per key.
pub fn merge_templates(base: &Template, overrides: &Template, strategy: MergeStrategy) -> Template {
    let mut fields = base.fields.clone();
    for (key, value) in &overrides.fields {
        let merged = match (strategy, fields.remove(key)) {
            (MergeStrategy::Deep, Some(old)) => deep_merge(key, old, value),
            _ => value.clone(),
        };
        fields.insert(key.clone(), merged);
    }
    Template { fields }
}

impl fmt::Display for MergeStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Replace => "replace",
            Self::Deep => "deep",
        })
    }
}

#[cfg(test)]
mod tests;
