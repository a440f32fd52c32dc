//! `gpu-sizing` queue policy: how many GPUs a task gets, and what comes with them.
//!
//! The GPU count is, in order: the task's property (`k8s/gpus`, or user property `k8s-gpus`), the task's tag
//! (`gpus=2`), the queue's `gpus`. Above `maxGpus` the task is rejected with a message the ML user can act on (or,
//! with `overMax: clamp`, given the maximum). The count is set as the GPU resource's limit (and request, when the
//! pod already requests it: Kubernetes needs both equal) on the task container only; `cpuPerGpu` / `memoryPerGpu`
//! scale CPU and memory with it; `gpuTypes` add node selectors and tolerations per GPU model, picked by the task's
//! `k8s/gpu-type` property or `gpu-type=` tag or the queue's `defaultGpuType`. See the README for every key.

use std::collections::BTreeMap;

use policy_kit::{Level, Logger, Policy, PolicyError, Task, config_from_value, object_entry};
use serde::Deserialize;
use serde_json::{Map, Value, json};

mod quantity;

pub use quantity::Quantity;

/// The policy type exported as the component.
pub struct GpuSizing;

/// What to do with a request above the maximum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverMax {
    /// Fail the task with a message saying what the queue allows.
    #[default]
    Reject,
    /// Run it with the maximum, and log it.
    Clamp,
}

/// One GPU model the queue can schedule onto.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct GpuType {
    /// Resource name for this model (e.g. a MIG profile `nvidia.com/mig-1g.10gb`); default: the queue's.
    pub resource_name: Option<String>,
    /// Added to the pod's `spec.nodeSelector`.
    pub node_selector: BTreeMap<String, String>,
    /// Appended to the pod's `spec.tolerations` (exact duplicates skipped).
    pub tolerations: Vec<Map<String, Value>>,
    /// Maximum GPUs per task on this model; default: the queue's `maxGpus`.
    pub max_gpus: Option<u32>,
}

/// The policy config (camelCase keys; unknown keys are an error).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// GPUs for a task that asks for none; absent: such tasks are left as the template made them.
    pub gpus: Option<u32>,
    /// Extended resource to set.
    pub resource_name: String,
    /// Largest request a task may make.
    pub max_gpus: Option<u32>,
    /// Reject or clamp above `maxGpus`.
    pub over_max: OverMax,
    /// Task properties (`section/name`) holding a GPU count, first match wins.
    pub task_properties: Vec<String>,
    /// Tag prefix holding a GPU count (`gpus=` matches tag `gpus=2`); empty disables tags.
    pub task_tag_prefix: String,
    /// CPU request per GPU (e.g. `4` or `3500m`).
    pub cpu_per_gpu: Option<Quantity>,
    /// Memory request and limit per GPU (e.g. `16Gi`).
    pub memory_per_gpu: Option<Quantity>,
    /// GPU models by name.
    pub gpu_types: BTreeMap<String, GpuType>,
    /// GPU model for tasks that name none.
    pub default_gpu_type: Option<String>,
    /// Task properties naming a GPU model, first match wins.
    pub gpu_type_properties: Vec<String>,
    /// Tag prefix naming a GPU model (`gpu-type=a100`).
    pub gpu_type_tag_prefix: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            gpus: None,
            resource_name: "nvidia.com/gpu".to_owned(),
            max_gpus: None,
            over_max: OverMax::Reject,
            task_properties: vec!["k8s/gpus".to_owned(), "properties/k8s-gpus".to_owned()],
            task_tag_prefix: "gpus=".to_owned(),
            cpu_per_gpu: None,
            memory_per_gpu: None,
            gpu_types: BTreeMap::new(),
            default_gpu_type: None,
            gpu_type_properties: vec![
                "k8s/gpu-type".to_owned(),
                "properties/k8s-gpu-type".to_owned(),
            ],
            gpu_type_tag_prefix: "gpu-type=".to_owned(),
        }
    }
}

fn invalid(message: String) -> PolicyError {
    PolicyError::InvalidConfig(message)
}

/// An extended resource name: `<domain>/<name>`, as the device plugins register them.
fn check_resource_name(key: &str, name: &str) -> Result<(), PolicyError> {
    let ok = name.split_once('/').is_some_and(|(domain, rest)| {
        !domain.is_empty()
            && !rest.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'))
    });
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "{key}: `{name}` is not an extended resource name like nvidia.com/gpu"
        )))
    }
}

impl Config {
    fn check(&self) -> Result<(), PolicyError> {
        check_resource_name("resourceName", &self.resource_name)?;
        if let (Some(gpus), Some(max)) = (self.gpus, self.max_gpus)
            && gpus > max
        {
            return Err(invalid(format!("gpus: {gpus} is above maxGpus ({max})")));
        }
        for (name, t) in &self.gpu_types {
            if let Some(r) = &t.resource_name {
                check_resource_name(&format!("gpuTypes.{name}.resourceName"), r)?;
            }
        }
        if let Some(default) = &self.default_gpu_type
            && !self.gpu_types.contains_key(default)
        {
            return Err(invalid(format!(
                "defaultGpuType: `{default}` is not one of gpuTypes ({})",
                self.type_names()
            )));
        }
        Ok(())
    }

    fn type_names(&self) -> String {
        if self.gpu_types.is_empty() {
            "none configured".to_owned()
        } else {
            self.gpu_types
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

/// Where a task's request came from, for messages.
fn source(kind: &str, key: &str) -> String {
    format!("{kind} `{key}`")
}

/// The GPU count the task asks for: `(count, where it came from)`, or `None` when it asks for nothing.
fn requested_gpus(task: &Task, config: &Config) -> Result<Option<(u32, String)>, PolicyError> {
    let found = task
        .first_property(&config.task_properties)
        .map(|(k, v)| (v, source("property", k)))
        .or_else(|| {
            task.tag_value(&config.task_tag_prefix)
                .map(|(tag, v)| (v, source("tag", tag)))
        });
    let Some((raw, from)) = found else {
        return Ok(config
            .gpus
            .map(|n| (n, "the queue's `gpus` setting".to_owned())));
    };
    match raw.trim().parse::<u32>() {
        Ok(n) => Ok(Some((n, from))),
        Err(_) => Err(PolicyError::Reject(format!(
            "{from} is `{raw}`, which is not a number of GPUs: set it to a whole number such as 1 or 2"
        ))),
    }
}

fn selected_type<'a>(
    task: &'a Task,
    config: &'a Config,
) -> Result<Option<(&'a str, &'a GpuType)>, PolicyError> {
    let found = task
        .first_property(&config.gpu_type_properties)
        .map(|(k, v)| (v.trim(), source("property", k)))
        .or_else(|| {
            task.tag_value(&config.gpu_type_tag_prefix)
                .map(|(tag, v)| (v.trim(), source("tag", tag)))
        });
    match found {
        Some((name, from)) => match config.gpu_types.get_key_value(name) {
            Some((name, t)) => Ok(Some((name.as_str(), t))),
            None => Err(PolicyError::Reject(format!(
                "{from} asks for GPU type `{name}`, but queue `{}` offers: {}",
                task.queue_name,
                config.type_names()
            ))),
        },
        None => Ok(config
            .default_gpu_type
            .as_deref()
            .and_then(|name| config.gpu_types.get_key_value(name))
            .map(|(name, t)| (name.as_str(), t))),
    }
}

impl Policy for GpuSizing {
    type Config = Config;

    fn parse_config(config: &Value) -> Result<Config, PolicyError> {
        let config: Config = config_from_value(config)?;
        config.check()?;
        Ok(config)
    }

    fn leaves_pod_unchanged(config: &Config, task: &Task) -> bool {
        // No property, no tag, no queue default: nothing to size. (A malformed request is not "unchanged": it must
        // reach `transform` to be rejected.)
        config.gpus.is_none()
            && task.first_property(&config.task_properties).is_none()
            && task.tag_value(&config.task_tag_prefix).is_none()
    }

    fn transform(
        mut pod: Value,
        task: &Task,
        config: &Config,
        log: &mut dyn Logger,
    ) -> Result<Value, PolicyError> {
        let Some((mut gpus, from)) = requested_gpus(task, config)? else {
            return Ok(pod);
        };
        let gpu_type = if gpus > 0 {
            selected_type(task, config)?
        } else {
            None
        };
        let max = gpu_type.and_then(|(_, t)| t.max_gpus).or(config.max_gpus);
        if let Some(max) = max
            && gpus > max
        {
            match config.over_max {
                OverMax::Reject => {
                    return Err(PolicyError::Reject(format!(
                        "the task asks for {gpus} GPUs ({from}), but queue `{}` allows at most {max} per task: \
                         ask for {max} or fewer, or enqueue it on a queue with more GPUs per node",
                        task.queue_name
                    )));
                }
                OverMax::Clamp => {
                    log.log(
                        Level::Warn,
                        &format!("{from} asks for {gpus} GPUs; clamped to the queue maximum {max}"),
                    );
                    gpus = max;
                }
            }
        }
        let resource = gpu_type
            .and_then(|(_, t)| t.resource_name.as_deref())
            .unwrap_or(&config.resource_name);

        let container = pod_template::task_container_mut(&mut pod)
            .ok_or_else(|| PolicyError::Internal("the pod has no containers".to_owned()))?;
        let resources = object_entry(container, "resources")?;
        if gpus == 0 {
            // A CPU-only run: drop the GPU the template may have set, on limits and requests alike.
            for side in ["limits", "requests"] {
                if let Some(map) = resources.get_mut(side).and_then(Value::as_object_mut) {
                    map.remove(resource);
                }
            }
            resources.retain(|_, v| v.as_object().is_none_or(|m| !m.is_empty()));
            if resources.is_empty() {
                container.remove("resources");
            }
        } else {
            let count = Value::String(gpus.to_string());
            object_entry(resources, "limits")?.insert(resource.to_owned(), count.clone());
            // Extended resources may omit requests (they default to limits), but when given they must be equal.
            if let Some(requests) = resources.get_mut("requests").and_then(Value::as_object_mut)
                && requests.contains_key(resource)
            {
                requests.insert(resource.to_owned(), count);
            }
            if let Some(cpu) = &config.cpu_per_gpu {
                let cpu = Value::String(cpu.times(gpus).to_string());
                object_entry(resources, "requests")?.insert("cpu".to_owned(), cpu.clone());
                // Keep a CPU limit the template set from falling below the new request (an invalid pod).
                if let Some(limits) = resources.get_mut("limits").and_then(Value::as_object_mut)
                    && limits.contains_key("cpu")
                {
                    limits.insert("cpu".to_owned(), cpu);
                }
            }
            if let Some(memory) = &config.memory_per_gpu {
                let memory = Value::String(memory.times(gpus).to_string());
                object_entry(resources, "requests")?.insert("memory".to_owned(), memory.clone());
                object_entry(resources, "limits")?.insert("memory".to_owned(), memory);
            }
        }

        if let Some((name, t)) = gpu_type {
            let spec = pod
                .get_mut("spec")
                .and_then(Value::as_object_mut)
                .ok_or_else(|| PolicyError::Internal("the pod has no spec".to_owned()))?;
            if !t.node_selector.is_empty() {
                let selector = object_entry(spec, "nodeSelector")?;
                for (k, v) in &t.node_selector {
                    selector.insert(k.clone(), Value::String(v.clone()));
                }
            }
            if !t.tolerations.is_empty() {
                let slot = spec.entry("tolerations").or_insert_with(|| json!([]));
                if slot.is_null() {
                    *slot = json!([]);
                }
                let list = slot.as_array_mut().ok_or_else(|| {
                    PolicyError::Internal("pod field `tolerations` is not a list".to_owned())
                })?;
                for toleration in &t.tolerations {
                    let toleration = Value::Object(toleration.clone());
                    if !list.contains(&toleration) {
                        list.push(toleration);
                    }
                }
            }
            log.log(
                Level::Debug,
                &format!("{gpus} x {resource} on GPU type {name} ({from})"),
            );
        } else {
            log.log(Level::Debug, &format!("{gpus} x {resource} ({from})"));
        }
        Ok(pod)
    }
}

policy_kit::export_policy!(GpuSizing);

#[cfg(test)]
mod tests;
