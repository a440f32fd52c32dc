//! The agent's configuration: the ClearML Enterprise agent chart's values file, parsed strictly.
//!
//! [`AgentConfig::from_yaml`] reads the Helm values shape (`clearml.*`, `agentk8sglue.*`, and the renamed chart's
//! `controlPlane.*` / `orchestratork8sglue.*` aliases). Unknown keys and wrong types are errors that name the full
//! path of the key; chart-only keys the agent does not use are accepted and ignored. Nothing here reads the process
//! environment: the binary passes the env-derived [`Overrides`] in.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use pod_template::Template;
use serde_json::Value;

mod error;
mod keys;
mod parse;
mod validate;
mod walk;

pub use error::ConfigError;

/// A secret string (a ClearML key or secret). Its `Debug` and `Display` never show the value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The value, for the one place that needs it (the login call, the Kubernetes Secret).
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// True when no value was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The ClearML API credentials the agent logs in with and hands to task pods (through a Kubernetes Secret).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// `clearml.agentk8sglueKey` (alias `controlPlane.apiKey`), overridden by env `CLEARML_API_ACCESS_KEY`.
    pub access_key: Secret,
    /// `clearml.agentk8sglueSecret` (alias `controlPlane.apiSecret`), overridden by env `CLEARML_API_SECRET_KEY`.
    pub secret_key: Secret,
}

/// Values taken from the environment by the binary, applied over the file's values.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `CLEARML_API_ACCESS_KEY`.
    pub access_key: Option<String>,
    /// `CLEARML_API_SECRET_KEY`.
    pub secret_key: Option<String>,
    /// `CLEARML_API_HOST`.
    pub api_host: Option<String>,
}

/// A queue's `queueSettings`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueSettings {
    /// At most this many pods of this queue exist at once (not counting finished ones).
    pub max_pods: Option<u32>,
    /// Image for tasks of this queue that name none.
    pub default_image: Option<String>,
    /// Keep the image's entrypoint: no command/args; the task id goes in env `CLEARML_TASK_ID`.
    pub use_image_entrypoint: bool,
}

/// One `policies` entry of a queue: a plugin name and its configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyBinding {
    /// A default plugin's name (`gpu-sizing`, ...) or a key of `agentk8sglue.plugins`.
    pub plugin: String,
    /// The plugin's config (JSON; `null` when none is given).
    pub config: Value,
}

/// One monitored queue, from `agentk8sglue.queues.<name>`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    /// The ClearML queue name (the key).
    pub name: String,
    /// `templateOverrides`, as written (the template-overrides plugin's input) ...
    pub template_overrides: Value,
    /// ... and parsed, so a bad override is reported at load time with its path.
    pub overrides: Template,
    /// `queueSettings`.
    pub settings: QueueSettings,
    /// `policies` (extension): run after template-overrides, in order.
    pub policies: Vec<PolicyBinding>,
}

/// An extra plugin from `agentk8sglue.plugins.<name>` (extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSource {
    /// Path of the component file.
    pub file: PathBuf,
    /// Pinned sha256 (hex) of the file; loading fails when it differs.
    pub sha256: Option<String>,
}

/// `agentk8sglue.taskWatchdog` (extension): what the agent does about a task whose pod runs while ClearML has heard
/// nothing from it (no ping, event or status report) for a while: a wedged process, or an in-pod agent cut off from
/// the server. Off unless `noUpdateMinutes` is set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskWatchdog {
    /// `noUpdateMinutes`: how long a running task may go without an update in ClearML (`None`: off).
    pub no_update: Option<Duration>,
    /// `failTask`: fail such a task (and delete its pod) rather than only say so in its status message.
    pub fail_task: bool,
}

/// The whole configuration `run` works from.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// ClearML credentials.
    pub credentials: Credentials,
    /// `agentk8sglue.apiServerUrlReference` (env `CLEARML_API_HOST` overrides).
    pub api_server_url: String,
    /// `agentk8sglue.webServerUrlReference`.
    pub web_server_url: Option<String>,
    /// `agentk8sglue.fileServerUrlReference`.
    pub file_server_url: Option<String>,
    /// `agentk8sglue.createQueues`: create monitored queues that do not exist.
    pub create_queues: bool,
    /// `agentk8sglue.dashboardReportMaxGpu`: GPUs reported to the enterprise dashboard.
    pub dashboard_report_max_gpu: Option<u32>,
    /// `agentk8sglue.defaultContainerImage`.
    pub default_container_image: String,
    /// `agentk8sglue.basePodTemplate`.
    pub base_pod_template: Template,
    /// `agentk8sglue.queues`, in the values' order: that order is the polling priority.
    pub queues: Vec<QueueConfig>,
    /// `agentk8sglue.maxPods`: at most this many task pods at once, over all queues.
    pub max_pods: Option<u32>,
    /// `agentk8sglue.queuePollFrequencySeconds`.
    pub queue_poll_frequency: Duration,
    /// `agentk8sglue.statusReportFrequencySeconds`.
    pub status_report_frequency: Duration,
    /// `agentk8sglue.completedPodDeletionDelayMinutes`.
    pub completed_pod_deletion_delay: Duration,
    /// `agentk8sglue.plugins` (extension).
    pub plugins: BTreeMap<String, PluginSource>,
    /// `agentk8sglue.taskWatchdog` (extension).
    pub task_watchdog: TaskWatchdog,
    /// The values root as written: `agentk8sglue`, or the renamed chart's `orchestratork8sglue`. Messages about a
    /// key (a queue missing with `createQueues: false`, ...) use it so they name what the user wrote.
    pub values_root: &'static str,
    /// True when `api_server_url` came from env `CLEARML_API_HOST` rather than the file (for messages).
    pub api_server_url_from_env: bool,
    /// Full paths of the keys accepted and ignored (chart-only keys, Enterprise features not implemented): the
    /// top level's first, then each map's as it is read; logged once at debug level.
    pub ignored_keys: Vec<String>,
}

/// Default `defaultContainerImage` (the OSS chart's).
pub const DEFAULT_CONTAINER_IMAGE: &str = "ubuntu:24.04";
