//! Workers: registration, the periodic status report and the Enterprise cluster report.

use serde::Serialize;
use serde_json::{Map, Value};

/// `workers.register`: announce a worker and the queues it serves; status reports keep it alive afterwards.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkerRegister {
    /// The worker id, unique per user; registering an existing id starts its entry afresh.
    pub worker: String,
    /// Seconds without a report after which the server forgets the worker (server default 600).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    /// Queue ids the worker listens on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<String>,
    /// Worker tags, shown in the UI and filterable in `workers.get_all`; on an open-source server the only place
    /// for extra capacity information.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// Machine statistics of a status report. Per-GPU values are arrays: the GPU count is their length (there is no
/// `gpu_count` field). Memory in MB.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MachineStats {
    /// CPU use per core, in percent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpu_usage: Vec<f64>,
    /// Utilisation per GPU, in percent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpu_usage: Vec<f64>,
    /// Free memory per GPU, MB.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpu_memory_free: Vec<f64>,
    /// Used memory per GPU, MB.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpu_memory_used: Vec<f64>,
    /// Temperature per GPU, °C.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpu_temperature: Vec<f64>,
    /// Host memory in use, MB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_used: Option<f64>,
    /// Host memory free, MB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_free: Option<f64>,
}

/// `workers.status_report`: the worker's heartbeat. Every report refreshes its `timeout`; an unknown worker is
/// registered on the fly.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusReport {
    /// The worker id.
    pub worker: String,
    /// Milliseconds since the epoch (what clearml-agent sends).
    pub timestamp: i64,
    /// The task the worker runs; absent clears it on the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The queue that task came from; absent clears it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Queue ids; absent keeps the registered ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queues: Option<Vec<String>>,
    /// Resource use at the time of the report, for the workers page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_stats: Option<MachineStats>,
    /// Worker tags; absent keeps the registered ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// Enterprise `workers.cluster_report`: capacity for the orchestration dashboard. Serialised as the body
/// clearml-agent 3.0.3 posts (`helper/resource_monitor.py` `send_cluster_report`): `worker`, `key`, `partial`,
/// `timestamp`, `timeout`, `resource_groups`, and the limits nested under `properties` (`max_gpus`, `max_cpus`,
/// `max_workers`, each only when set). Extra fields pass through at the top level because the enterprise schema is
/// not public.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterReport {
    /// The reporting worker id (`<cluster>:<name>`).
    pub worker: String,
    /// The cluster key the dashboard groups by (the worker id's first `:` part).
    pub key: String,
    /// The `partial` flag of clearml-agent's body, sent as is (`false` unless set); what the dashboard does with
    /// it is in the enterprise schema, which is not public.
    pub partial: bool,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// Seconds until the report expires (clearml-agent: twice its report interval).
    pub timeout: Option<u32>,
    /// The resource groups the capacity belongs to (`<cluster>:<group>`, see [`ClusterReport::new`]).
    pub resource_groups: Vec<String>,
    /// Most GPUs the cluster gives tasks at once (`properties.max_gpus`).
    pub max_gpus: Option<u32>,
    /// Most CPUs the cluster gives tasks at once (`properties.max_cpus`).
    pub max_cpus: Option<u32>,
    /// Most workers the cluster runs at once; for a k8s glue, task pods (`properties.max_workers`).
    pub max_workers: Option<u32>,
    /// Further top-level fields, sent as they are; the named fields above win over a key of the same name.
    pub extra: Map<String, Value>,
}

impl ClusterReport {
    /// A report for `worker_id` as clearml-agent builds it (`get_cluster_key_and_resource_group`): key = the id's
    /// first `:` part and resource group = its first two parts; an id with fewer than three parts gets the
    /// default cluster `onprem` and the group `onprem:<first part>`.
    pub fn new(worker_id: &str, timestamp_ms: i64) -> Self {
        let parts: Vec<&str> = worker_id.split(':').collect();
        let (key, group) = if parts.len() < 3 {
            ("onprem".to_owned(), format!("onprem:{}", parts[0]))
        } else {
            (parts[0].to_owned(), parts[..2].join(":"))
        };
        ClusterReport {
            worker: worker_id.to_owned(),
            key,
            timestamp: timestamp_ms,
            resource_groups: vec![group],
            ..Default::default()
        }
    }
}

impl Serialize for ClusterReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut body = self.extra.clone();
        let mut properties = Map::new();
        for (name, v) in [
            ("max_cpus", self.max_cpus),
            ("max_gpus", self.max_gpus),
            ("max_workers", self.max_workers),
        ] {
            if let Some(v) = v {
                properties.insert(name.into(), Value::from(v));
            }
        }
        body.insert("worker".into(), Value::from(self.worker.clone()));
        body.insert("partial".into(), Value::from(self.partial));
        body.insert("key".into(), Value::from(self.key.clone()));
        body.insert("timestamp".into(), Value::from(self.timestamp));
        if let Some(t) = self.timeout {
            body.insert("timeout".into(), Value::from(t));
        }
        body.insert(
            "resource_groups".into(),
            Value::from(self.resource_groups.clone()),
        );
        body.insert("properties".into(), Value::Object(properties));
        body.serialize(s)
    }
}
