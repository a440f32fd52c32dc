//! The simulator's inputs: the nodes it plays and how it is configured, and the errors of bad inputs.

use std::{collections::BTreeMap, time::Duration};

use regex::Regex;

use crate::quantity::{self, QuantityError};

/// Extended resource name for GPUs.
pub const GPU: &str = "nvidia.com/gpu";

/// Errors in simulator inputs (node specs, annotations).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    /// A resource quantity does not parse.
    #[error("resource {resource}: {source}")]
    Quantity {
        /// Resource name.
        resource: String,
        /// Parse error.
        #[source]
        source: QuantityError,
    },
    /// A node spec string is malformed.
    #[error("invalid node spec {spec:?}: {reason}")]
    NodeSpec {
        /// The spec.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// An annotation value is not understood.
    #[error("annotation {key}={value:?}: {reason}")]
    Annotation {
        /// Annotation key.
        key: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// One simulated node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// Node name.
    pub name: String,
    /// Allocatable resources in milli-units, by resource name (`cpu`, `memory`, `pods`, `nvidia.com/gpu`, ...).
    pub allocatable: BTreeMap<String, i128>,
    /// Node labels (beyond the standard ones the simulator adds).
    pub labels: BTreeMap<String, String>,
}

impl NodeSpec {
    /// A node with `cpu` cores, `memory` (a quantity) and `gpus` GPUs, and room for 110 pods.
    pub fn new(name: &str, cpu: &str, memory: &str, gpus: u32) -> Result<Self, DecideError> {
        let mut allocatable = BTreeMap::new();
        for (resource, q) in [("cpu", cpu), ("memory", memory), ("pods", "110")] {
            allocatable.insert(resource.to_owned(), parse(resource, q)?);
        }
        if gpus > 0 {
            allocatable.insert(GPU.to_owned(), i128::from(gpus) * 1000);
        }
        Ok(Self {
            name: name.to_owned(),
            allocatable,
            labels: BTreeMap::new(),
        })
    }

    /// Add a label.
    #[must_use]
    pub fn with_label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Parse `name=gpu-0,cpu=8,memory=32Gi,gpu=2,label.k=v` (cpu/memory default 8 and 32Gi, gpu 0).
    pub fn parse(spec: &str) -> Result<Self, DecideError> {
        let err = |reason: String| DecideError::NodeSpec {
            spec: spec.to_owned(),
            reason,
        };
        let mut fields = BTreeMap::new();
        let mut labels = BTreeMap::new();
        for part in spec.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| err(format!("{part:?} is not key=value")))?;
            if let Some(label) = k.strip_prefix("label.") {
                labels.insert(label.to_owned(), v.to_owned());
            } else {
                fields.insert(k, v);
            }
        }
        let name = fields
            .remove("name")
            .ok_or_else(|| err("missing name=".into()))?;
        let gpus = match fields.remove("gpu") {
            Some(g) => g.parse::<u32>().map_err(|e| err(format!("gpu: {e}")))?,
            None => 0,
        };
        let cpu = fields.remove("cpu").unwrap_or("8");
        let memory = fields.remove("memory").unwrap_or("32Gi");
        if let Some(k) = fields.keys().next() {
            return Err(err(format!(
                "unknown key {k:?} (name, cpu, memory, gpu, label.<k>)"
            )));
        }
        let mut node = Self::new(name, cpu, memory, gpus)?;
        node.labels = labels;
        Ok(node)
    }

    /// The allocatable resources as Kubernetes quantities (for the Node status).
    pub fn allocatable_quantities(&self) -> BTreeMap<String, String> {
        self.allocatable
            .iter()
            .map(|(k, v)| {
                // Memory in bytes reads better without the milli scale.
                let q = if k == "memory" {
                    (v / 1000).to_string()
                } else {
                    quantity::format_milli(*v)
                };
                (k.clone(), q)
            })
            .collect()
    }
}

/// What the simulator is configured with.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The simulated nodes.
    pub nodes: Vec<NodeSpec>,
    /// Run time of a pod without a [`crate::RUN_SECONDS_ANNOTATION`].
    pub default_run: Duration,
    /// Images matching this never pull (`ErrImagePull`, then `ImagePullBackOff`).
    pub image_pull_error: Option<Regex>,
    /// Play the stock in-pod `clearml-agent execute` in pods labelled `clearml-task-id` (`None`: off).
    pub in_pod_agent: Option<InPodAgent>,
    /// Write the scheduler's and kubelet's Events (off saves a few API calls per pod, e.g. in benchmarks).
    pub events: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            default_run: Duration::ZERO,
            image_pull_error: None,
            in_pod_agent: None,
            events: true,
        }
    }
}

/// How the simulated in-pod agent behaves (see [`crate::in_pod`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InPodAgent {
    /// How often a running task's status is read to notice an abort (the real agent: every 5 s,
    /// `CLEARML_AGENT_QUEUE_POLL_FREQ_SEC`).
    pub abort_poll: Duration,
    /// How often the running agent sends `workers.status_report` for its task (the real agent's resource monitor;
    /// the server sees from it that a worker runs the task, so an abort becomes `stopping` for it to act on).
    pub status_report: Duration,
    /// Retries of transient ClearML failures per call (a container's agent retries too).
    pub max_retries: usize,
}

impl Default for InPodAgent {
    fn default() -> Self {
        Self {
            abort_poll: Duration::from_secs(5),
            status_report: Duration::from_secs(30),
            max_retries: 5,
        }
    }
}

pub(crate) fn parse(resource: &str, q: &str) -> Result<i128, DecideError> {
    quantity::parse_milli(q).map_err(|source| DecideError::Quantity {
        resource: resource.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_specs_parse() {
        let n = NodeSpec::parse("name=gpu-1,cpu=4,memory=16Gi,gpu=8,label.pool=a100").unwrap();
        assert_eq!(n.name, "gpu-1");
        assert_eq!(n.allocatable[GPU], 8000);
        assert_eq!(n.allocatable["cpu"], 4000);
        assert_eq!(n.labels["pool"], "a100");
        assert_eq!(
            n.allocatable_quantities()["memory"],
            (16u64 << 30).to_string()
        );
        assert!(NodeSpec::parse("cpu=4").is_err());
        assert!(NodeSpec::parse("name=x,colour=red").is_err());
    }
}
