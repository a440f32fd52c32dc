//! `workers.*` request bodies.

use serde::Deserialize;
use serde_json::Value;

use super::{one_or_many, opt_string};

/// `apimodels/workers.py` `Resources` (`workers.register`, schema 2.34).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
pub struct Resources {
    /// The schema's `cpu_usage`, recorded on the worker's queues as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_usage: Option<f64>,
    /// The schema's `gpu_usage`, recorded on the worker's queues as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_usage: Option<f64>,
}

/// `workers.register`.
#[derive(Debug, Deserialize)]
pub struct WorkerRegister {
    /// The worker id; registering again starts its entry afresh.
    pub worker: String,
    /// Seconds it lives without a report: absent or 0 gives 600, a negative value is 400/1002.
    #[serde(default)]
    pub timeout: Option<i64>,
    /// Ids of the queues it serves; each must exist (400/701 naming the unknown ones).
    #[serde(default, deserialize_with = "one_or_many")]
    pub queues: Vec<String>,
    /// Worker tags.
    #[serde(default, deserialize_with = "one_or_many")]
    pub tags: Vec<String>,
    /// System tags.
    #[serde(default, deserialize_with = "one_or_many")]
    pub system_tags: Vec<String>,
    /// Recorded on each of its queues.
    #[serde(default)]
    pub resources: Option<Resources>,
}

/// A body that names only a worker (`workers.unregister`).
#[derive(Debug, Deserialize)]
pub struct WorkerId {
    /// The worker id; an unknown one is not an error.
    pub worker: String,
}

/// `workers.status_report`.
#[derive(Debug, Deserialize)]
pub struct StatusReport {
    /// The worker id; an unknown one is registered on the fly with the default timeout.
    pub worker: String,
    /// Required: milliseconds since the epoch, as clearml-agent sends them (not stored).
    pub timestamp: i64,
    /// The task it runs; it must exist (400/101). Absent clears it.
    #[serde(default, deserialize_with = "opt_string")]
    pub task: Option<String>,
    /// The queue that task came from (not checked); absent clears it.
    #[serde(default, deserialize_with = "opt_string")]
    pub queue: Option<String>,
    /// Replaces its queues when given non-empty.
    #[serde(default)]
    pub queues: Option<Vec<String>>,
    /// Kept as sent, when given.
    #[serde(default)]
    pub machine_stats: Option<Value>,
    /// Replaces its tags, when given.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// `workers.get_all` filters.
#[derive(Debug, Deserialize, Default)]
pub struct WorkerGetAll {
    /// Only workers active in the last this many seconds: default 3600, 0 for every live worker, at least 1 otherwise.
    #[serde(default)]
    pub last_seen: Option<i64>,
    /// Workers with any of these tags; `-x` excludes those tagged `x`.
    #[serde(default, deserialize_with = "one_or_many")]
    pub tags: Vec<String>,
}

/// The body clearml-agent's `ResourceMonitor.send_cluster_report` posts (`helper/resource_monitor.py`, 3.0.3). The
/// enterprise schema is not public: what the real agent always sends is required, typed as it sends it.
#[derive(Debug, Deserialize)]
pub struct ClusterReport {
    /// The reporting worker id.
    pub worker: String,
    /// The cluster key (400/12 when blank); the last report per key is kept.
    pub key: String,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// Seconds until the report expires (clearml-agent: twice its report interval); kept, not enforced.
    #[serde(default)]
    pub timeout: Option<i64>,
    /// clearml-agent's `partial` flag, kept as sent.
    #[serde(default)]
    pub partial: bool,
    /// The resource groups the capacity belongs to (`<cluster>:<group>`).
    #[serde(default)]
    pub resource_groups: Vec<String>,
    /// The capacity limits.
    #[serde(default)]
    pub properties: ClusterProperties,
}

/// `properties` of a cluster report: capacity limits, each only when set.
#[derive(Debug, Default, Deserialize, serde::Serialize, Clone, PartialEq, Eq)]
pub struct ClusterProperties {
    /// Most CPUs the cluster gives tasks at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cpus: Option<u64>,
    /// Most GPUs the cluster gives tasks at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_gpus: Option<u64>,
    /// Most workers (for a k8s glue, task pods) the cluster runs at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_workers: Option<u64>,
}

/// `workers.cluster_unregister` as clearml-agent sends it: only the cluster key.
#[derive(Debug, Deserialize)]
pub struct ClusterUnregister {
    /// The cluster key whose report is dropped.
    pub key: String,
}
