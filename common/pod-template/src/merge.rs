//! Rendering a [`Template`] onto a pod ([`apply`]) and combining templates ([`merge_templates`], [`deep_merge`]),
//! always keeping what the agent owns (its labels and `CLEARML_*` env vars).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::fields::{Target, lookup};
use crate::{
    AGENT_ENV_PREFIX, AGENT_LABEL_PREFIX, AGENT_LABELS, Error, MergeStrategy, TASK_CONTAINER_NAME,
    Template,
};

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
