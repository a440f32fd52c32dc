//! The simulator's brain, with no I/O: given a pod, the simulated nodes and the time, what happens next.
//!
//! [`decide`] returns one [`Action`]; the I/O loop in [`crate::sim`] carries it out and feeds the resulting pod
//! back in. Each step mirrors what a component of a real cluster would do:
//! - unbound pod → the scheduler: [`Action::Bind`] to the first node that fits its requests and node selector, or
//!   [`Action::Unschedulable`] with the scheduler's message (`0/2 nodes are available: 2 Insufficient nvidia.com/gpu.`);
//! - bound `Pending` pod → the kubelet starting it: `Running` (kwok's `ready` stage), or a waiting
//!   `ImagePullBackOff` when the image matches the configured pattern;
//! - `Running` pod → after its run time, `Succeeded` or `Failed` (exit code, `Error` / `OOMKilled`);
//! - pod with a `deletionTimestamp` → force delete (grace period 0), like kwok's `delete` stage.
//!
//! Tests steer the outcome with annotations ([`OUTCOME_ANNOTATION`], [`EXIT_CODE_ANNOTATION`],
//! [`RUN_SECONDS_ANNOTATION`]); changing the outcome of a running `hang` pod ends it on the next event.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::{
    api::core::v1::{Container, Pod},
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};
use regex::Regex;
use serde_json::{Value, json};

use crate::quantity::{self, QuantityError};

/// `succeed` (default), `fail`, `oom`, `hang` (stays Running), `image-pull-backoff`.
pub const OUTCOME_ANNOTATION: &str = "sim.clearml-k8s-agent/outcome";
/// Exit code for `fail` (default 1).
pub const EXIT_CODE_ANNOTATION: &str = "sim.clearml-k8s-agent/exit-code";
/// Seconds from Running to the outcome (default: [`SimConfig::default_run`]).
pub const RUN_SECONDS_ANNOTATION: &str = "sim.clearml-k8s-agent/run-seconds";
/// The only scheduler the simulator stands in for.
pub const DEFAULT_SCHEDULER: &str = "default-scheduler";
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

/// How a simulated pod ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0, `Completed`, phase `Succeeded`.
    Succeed,
    /// Exit code (default 1), `Error`, phase `Failed`.
    Fail(i32),
    /// Exit 137, `OOMKilled`, phase `Failed`.
    Oom,
    /// Stays `Running` until the annotation changes or the pod is deleted.
    Hang,
    /// Never starts: container waiting with `ImagePullBackOff`.
    ImagePullBackOff,
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
    /// Run time of a pod without a [`RUN_SECONDS_ANNOTATION`].
    pub default_run: Duration,
    /// Images matching this never pull (`ImagePullBackOff`).
    pub image_pull_error: Option<Regex>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            default_run: Duration::ZERO,
            image_pull_error: None,
        }
    }
}

/// The cluster as the scheduler sees it: resources already requested on each node by non-terminal pods.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// Node name → resource → milli-units requested.
    pub by_node: BTreeMap<String, BTreeMap<String, i128>>,
}

impl Usage {
    /// Account `requests` on `node` (a pod each; the `pods` resource counts one per pod).
    pub fn add(&mut self, node: &str, requests: &BTreeMap<String, i128>) {
        let used = self.by_node.entry(node.to_owned()).or_default();
        for (k, v) in requests {
            *used.entry(k.clone()).or_default() += v;
        }
        *used.entry("pods".to_owned()).or_default() += 1000;
    }
}

/// What to do with a pod next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Nothing (not ours, terminal, hanging, or already in the target state).
    None,
    /// POST `pods/{name}/binding` to this node.
    Bind(String),
    /// Set `PodScheduled=False, reason=Unschedulable` with this message (strategic merge patch of the status).
    Unschedulable(String),
    /// Strategic merge patch of `pods/{name}/status`.
    PatchStatus(Value),
    /// Delete with grace period 0 (after clearing finalizers).
    ForceDelete,
    /// Look again after this long (the pod is running its simulated time).
    RequeueAfter(Duration),
}

/// The next action for `pod`, given the simulated nodes, their current usage and the time.
pub fn decide(pod: &Pod, config: &SimConfig, usage: &Usage, now: Timestamp) -> Action {
    let node_name = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
    let ours = node_name.is_some_and(|n| config.nodes.iter().any(|node| node.name == n));
    if pod.metadata.deletion_timestamp.is_some() {
        // Unbound pods are removed by the apiserver at once; bound ones wait for "their kubelet", which is us.
        return if ours {
            Action::ForceDelete
        } else {
            Action::None
        };
    }
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending");
    if phase == "Succeeded" || phase == "Failed" {
        return Action::None;
    }
    let Some(node) = node_name else {
        return schedule(pod, config, usage);
    };
    if !ours {
        return Action::None;
    }
    // A typo in a test annotation should be loud: fail the pod and say why in its status.
    let fail_loudly = |e: &dyn std::fmt::Display| {
        Action::PatchStatus(terminal_status(
            pod,
            Outcome::Fail(1),
            now,
            Some(&e.to_string()),
        ))
    };
    let outcome = match outcome(pod, config) {
        Ok(o) => o,
        Err(e) => return fail_loudly(&e),
    };
    match phase {
        "Pending" if outcome == Outcome::ImagePullBackOff => {
            if waiting_reason(pod) == Some("ImagePullBackOff") {
                Action::None
            } else {
                Action::PatchStatus(image_pull_backoff_status(pod, node, config, now))
            }
        }
        "Pending" => Action::PatchStatus(running_status(pod, node, now)),
        "Running" => {
            if outcome == Outcome::Hang {
                return Action::None;
            }
            let run = match run_time(pod, config) {
                Ok(r) => r,
                Err(e) => return fail_loudly(&e),
            };
            let started = started_at(pod).unwrap_or(now);
            let elapsed = now.duration_since(started).unsigned_abs();
            if elapsed >= run {
                Action::PatchStatus(terminal_status(pod, outcome, now, None))
            } else {
                Action::RequeueAfter(run.saturating_sub(elapsed))
            }
        }
        _ => Action::None,
    }
}

/// The outcome requested by the pod's annotations (and the image pull pattern).
pub fn outcome(pod: &Pod, config: &SimConfig) -> Result<Outcome, DecideError> {
    let images_fail = config.image_pull_error.as_ref().is_some_and(|re| {
        containers(pod)
            .iter()
            .any(|c| c.image.as_deref().is_some_and(|image| re.is_match(image)))
    });
    if images_fail {
        return Ok(Outcome::ImagePullBackOff);
    }
    let value = annotation(pod, OUTCOME_ANNOTATION).unwrap_or("succeed");
    Ok(match value {
        "succeed" | "success" | "succeeded" => Outcome::Succeed,
        "fail" | "failed" | "error" => {
            let code = match annotation(pod, EXIT_CODE_ANNOTATION) {
                Some(v) => v.parse::<i32>().map_err(|_| DecideError::Annotation {
                    key: EXIT_CODE_ANNOTATION,
                    value: v.to_owned(),
                    reason: "not an integer",
                })?,
                None => 1,
            };
            Outcome::Fail(code)
        }
        "oom" | "oomkilled" | "OOMKilled" => Outcome::Oom,
        "hang" => Outcome::Hang,
        "image-pull-backoff" | "ImagePullBackOff" => Outcome::ImagePullBackOff,
        other => {
            return Err(DecideError::Annotation {
                key: OUTCOME_ANNOTATION,
                value: other.to_owned(),
                reason: "expected succeed, fail, oom, hang or image-pull-backoff",
            });
        }
    })
}

fn run_time(pod: &Pod, config: &SimConfig) -> Result<Duration, DecideError> {
    match annotation(pod, RUN_SECONDS_ANNOTATION) {
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
            .ok_or(DecideError::Annotation {
                key: RUN_SECONDS_ANNOTATION,
                value: v.to_owned(),
                reason: "not a non-negative number",
            }),
        None => Ok(config.default_run),
    }
}

/// Effective requests of a pod, like the scheduler computes them: the sum over containers, or the largest init
/// container if that is more, per resource. Limits stand in for missing requests (the apiserver defaults them so).
pub fn pod_requests(pod: &Pod) -> Result<BTreeMap<String, i128>, DecideError> {
    let mut total: BTreeMap<String, i128> = BTreeMap::new();
    for c in containers(pod) {
        for (k, v) in container_requests(c)? {
            *total.entry(k).or_default() += v;
        }
    }
    if let Some(init) = pod.spec.as_ref().and_then(|s| s.init_containers.as_ref()) {
        for c in init {
            for (k, v) in container_requests(c)? {
                let e = total.entry(k).or_default();
                *e = (*e).max(v);
            }
        }
    }
    Ok(total)
}

fn container_requests(c: &Container) -> Result<BTreeMap<String, i128>, DecideError> {
    let mut out = BTreeMap::new();
    let Some(res) = &c.resources else {
        return Ok(out);
    };
    if let Some(limits) = &res.limits {
        for (k, q) in limits {
            out.insert(k.clone(), parse(k, &q.0)?);
        }
    }
    if let Some(requests) = &res.requests {
        for (k, q) in requests {
            out.insert(k.clone(), parse(k, &q.0)?);
        }
    }
    Ok(out)
}

fn schedule(pod: &Pod, config: &SimConfig, usage: &Usage) -> Action {
    let scheduler = pod
        .spec
        .as_ref()
        .and_then(|s| s.scheduler_name.as_deref())
        .unwrap_or(DEFAULT_SCHEDULER);
    if scheduler != DEFAULT_SCHEDULER || config.nodes.is_empty() {
        return Action::None;
    }
    let requests = match pod_requests(pod) {
        Ok(r) => r,
        Err(e) => return unschedulable_unless_same(pod, format!("invalid resource requests: {e}")),
    };
    let selector = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_selector.clone())
        .unwrap_or_default();
    // Reason → number of nodes that failed for it, like the scheduler's FitError message.
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let empty = BTreeMap::new();
    for node in &config.nodes {
        if !selector
            .iter()
            .all(|(k, v)| node_label(node, k).is_some_and(|l| l == v))
        {
            *reasons
                .entry("node(s) didn't match Pod's node affinity/selector".to_owned())
                .or_default() += 1;
            continue;
        }
        let used = usage.by_node.get(&node.name).unwrap_or(&empty);
        let mut fits = true;
        let mut wanted = requests.clone();
        *wanted.entry("pods".to_owned()).or_default() += 1000;
        for (resource, want) in &wanted {
            if *want <= 0 {
                continue;
            }
            let have = node.allocatable.get(resource).copied().unwrap_or(0);
            let taken = used.get(resource).copied().unwrap_or(0);
            if taken + want > have {
                let reason = if resource == "pods" {
                    "Too many pods".to_owned()
                } else {
                    format!("Insufficient {resource}")
                };
                *reasons.entry(reason).or_default() += 1;
                fits = false;
            }
        }
        if fits {
            return Action::Bind(node.name.clone());
        }
    }
    let n = config.nodes.len();
    let parts: Vec<String> = reasons
        .iter()
        .map(|(reason, count)| format!("{count} {reason}"))
        .collect();
    unschedulable_unless_same(
        pod,
        format!("0/{n} nodes are available: {}.", parts.join(", ")),
    )
}

fn unschedulable_unless_same(pod: &Pod, message: String) -> Action {
    let current = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"));
    match current {
        Some(c) if c.status == "False" && c.message.as_deref() == Some(message.as_str()) => {
            Action::None
        }
        _ => Action::Unschedulable(message),
    }
}

/// The status patch that marks a pod unschedulable (what kube-scheduler writes).
pub fn unschedulable_status(message: &str, now: Timestamp) -> Value {
    json!({
        "status": {
            "phase": "Pending",
            "conditions": [{
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastProbeTime": null,
                "lastTransitionTime": time(now),
            }],
        }
    })
}

fn node_label<'a>(node: &'a NodeSpec, key: &str) -> Option<&'a str> {
    if key == "kubernetes.io/hostname" {
        return Some(&node.name);
    }
    node.labels.get(key).map(String::as_str)
}

fn running_status(pod: &Pod, node: &str, now: Timestamp) -> Value {
    let t = time(now);
    let statuses: Vec<Value> = containers(pod)
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "image": c.image.clone().unwrap_or_default(),
                "imageID": image_id(c),
                "containerID": container_id(pod, &c.name),
                "ready": true,
                "started": true,
                "restartCount": 0,
                "state": {"running": {"startedAt": t}},
            })
        })
        .collect();
    let mut status = base_status(pod, node, now);
    status["phase"] = json!("Running");
    status["conditions"] = json!([
        cond("PodReadyToStartContainers", "True", &t),
        cond("Initialized", "True", &t),
        cond("Ready", "True", &t),
        cond("ContainersReady", "True", &t),
        cond("PodScheduled", "True", &t),
    ]);
    status["containerStatuses"] = json!(statuses);
    if let Some(init) = init_statuses(pod, &t) {
        status["initContainerStatuses"] = init;
    }
    json!({ "status": status })
}

fn image_pull_backoff_status(pod: &Pod, node: &str, config: &SimConfig, now: Timestamp) -> Value {
    let t = time(now);
    let failing = |c: &Container| match &config.image_pull_error {
        Some(re) => c.image.as_deref().is_some_and(|i| re.is_match(i)),
        // Requested by annotation: every container's image "fails".
        None => true,
    };
    let mut not_ready = Vec::new();
    let statuses: Vec<Value> = containers(pod)
        .iter()
        .map(|c| {
            not_ready.push(c.name.clone());
            let image = c.image.clone().unwrap_or_default();
            let waiting = if failing(c) || annotation(pod, OUTCOME_ANNOTATION).is_some() {
                json!({
                    "reason": "ImagePullBackOff",
                    "message": format!("Back-off pulling image \"{image}\": ErrImagePull: failed to pull and \
                                        unpack image \"{image}\": not found (simulated)"),
                })
            } else {
                json!({"reason": "PodInitializing"})
            };
            json!({
                "name": c.name,
                "image": image,
                "imageID": "",
                "ready": false,
                "started": false,
                "restartCount": 0,
                "state": {"waiting": waiting},
            })
        })
        .collect();
    let msg = format!("containers with unready status: [{}]", not_ready.join(" "));
    let mut status = base_status(pod, node, now);
    status["phase"] = json!("Pending");
    status["conditions"] = json!([
        cond("PodReadyToStartContainers", "True", &t),
        cond("Initialized", "True", &t),
        cond_reason("Ready", "False", "ContainersNotReady", &msg, &t),
        cond_reason("ContainersReady", "False", "ContainersNotReady", &msg, &t),
        cond("PodScheduled", "True", &t),
    ]);
    status["containerStatuses"] = json!(statuses);
    json!({ "status": status })
}

/// Terminal status for `outcome` (Succeeded, or Failed with the exit code and reason on the first container).
fn terminal_status(pod: &Pod, outcome: Outcome, now: Timestamp, message: Option<&str>) -> Value {
    let t = time(now);
    let started = started_at(pod).map_or_else(|| t.clone(), time);
    let (phase, code, reason) = match outcome {
        Outcome::Fail(code) => ("Failed", code, "Error"),
        Outcome::Oom => ("Failed", 137, "OOMKilled"),
        Outcome::Succeed | Outcome::Hang | Outcome::ImagePullBackOff => {
            ("Succeeded", 0, "Completed")
        }
    };
    let statuses: Vec<Value> = containers(pod)
        .iter()
        .enumerate()
        .map(|(i, c)| {
            // The first container carries the outcome; sidecars (if any) finish cleanly.
            let (code, reason) = if i == 0 {
                (code, reason)
            } else {
                (0, "Completed")
            };
            let mut terminated = json!({
                "exitCode": code,
                "reason": reason,
                "startedAt": started,
                "finishedAt": t,
                "containerID": container_id(pod, &c.name),
            });
            if let (0, Some(m)) = (i, message) {
                terminated["message"] = json!(m);
            }
            json!({
                "name": c.name,
                "image": c.image.clone().unwrap_or_default(),
                "imageID": image_id(c),
                "containerID": container_id(pod, &c.name),
                "ready": false,
                "started": false,
                "restartCount": 0,
                "state": {"terminated": terminated},
            })
        })
        .collect();
    let ready_reason = if phase == "Succeeded" {
        "PodCompleted"
    } else {
        "PodFailed"
    };
    let mut status = json!({
        "phase": phase,
        "conditions": [
            cond_reason("PodReadyToStartContainers", "False", "", "", &t),
            cond_reason("Ready", "False", ready_reason, "", &t),
            cond_reason("ContainersReady", "False", ready_reason, "", &t),
        ],
        "containerStatuses": statuses,
    });
    if let Some(m) = message {
        status["message"] = json!(m);
        status["reason"] = json!("SimulatorError");
    }
    json!({ "status": status })
}

/// hostIP, podIP(s) and startTime: set once the pod is on a node (kwok's `create` stage).
fn base_status(pod: &Pod, node: &str, now: Timestamp) -> Value {
    let existing = pod.status.as_ref();
    let start = existing
        .and_then(|s| s.start_time.clone())
        .map_or_else(|| time(now), |t| time(t.0));
    let pod_ip = existing
        .and_then(|s| s.pod_ip.clone())
        .unwrap_or_else(|| pod_ip(pod));
    let host_ip = host_ip(node);
    json!({
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": start,
    })
}

fn cond(type_: &str, status: &str, t: &Value) -> Value {
    json!({"type": type_, "status": status, "lastProbeTime": null, "lastTransitionTime": t})
}

fn cond_reason(type_: &str, status: &str, reason: &str, message: &str, t: &Value) -> Value {
    let mut c = cond(type_, status, t);
    if !reason.is_empty() {
        c["reason"] = json!(reason);
    }
    if !message.is_empty() {
        c["message"] = json!(message);
    }
    c
}

fn init_statuses(pod: &Pod, t: &Value) -> Option<Value> {
    let init = pod.spec.as_ref()?.init_containers.as_ref()?;
    Some(json!(
        init.iter()
            .map(|c| json!({
                "name": c.name,
                "image": c.image.clone().unwrap_or_default(),
                "imageID": image_id(c),
                "containerID": container_id(pod, &c.name),
                "ready": true,
                "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": t, "finishedAt": t}},
            }))
            .collect::<Vec<_>>()
    ))
}

/// When the pod's containers started (the earliest `running.startedAt`), if they did.
pub fn started_at(pod: &Pod) -> Option<Timestamp> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .filter_map(|cs| {
            cs.state
                .as_ref()?
                .running
                .as_ref()?
                .started_at
                .as_ref()
                .map(|t| t.0)
        })
        .min()
}

fn waiting_reason(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find_map(|cs| cs.state.as_ref()?.waiting.as_ref()?.reason.as_deref())
}

fn containers(pod: &Pod) -> &[Container] {
    pod.spec.as_ref().map_or(&[], |s| s.containers.as_slice())
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

fn parse(resource: &str, q: &str) -> Result<i128, DecideError> {
    quantity::parse_milli(q).map_err(|source| DecideError::Quantity {
        resource: resource.to_owned(),
        source,
    })
}

fn time(t: Timestamp) -> Value {
    // k8s-openapi serialises Time at second precision, as the apiserver stores it.
    serde_json::to_value(Time(t)).unwrap_or(Value::Null)
}

/// A stable fake pod IP in 10.244.0.0/16 derived from the pod's uid (or name).
fn pod_ip(pod: &Pod) -> String {
    let key = pod
        .metadata
        .uid
        .as_deref()
        .or(pod.metadata.name.as_deref())
        .unwrap_or_default();
    let h = fnv(key);
    format!("10.244.{}.{}", (h >> 8) & 0xff, (h & 0xfd) + 2)
}

fn host_ip(node: &str) -> String {
    let h = fnv(node);
    format!("10.96.{}.{}", (h >> 8) & 0xff, (h & 0xfd) + 2)
}

fn container_id(pod: &Pod, container: &str) -> String {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    format!("containerd://{:016x}{:016x}", fnv(uid), fnv(container))
}

fn image_id(c: &Container) -> String {
    format!(
        "sha256:{:064x}",
        fnv(c.image.as_deref().unwrap_or_default())
    )
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    fn gpu_pod(gpus: u32) -> Pod {
        pod(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"containers": [{"name": "main", "image": "busybox",
                "resources": {"limits": {"nvidia.com/gpu": gpus.to_string()}}}]},
        }))
    }

    fn config() -> SimConfig {
        SimConfig {
            nodes: vec![
                NodeSpec::new("cpu-0", "8", "32Gi", 0).unwrap(),
                NodeSpec::new("gpu-0", "16", "64Gi", 2)
                    .unwrap()
                    .with_label("gpu-type", "a100"),
            ],
            default_run: Duration::from_secs(5),
            image_pull_error: Some(Regex::new("^registry.invalid/").unwrap()),
        }
    }

    fn now() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    /// Apply a status patch the simple way (replace fields), good enough to feed `decide` its own output.
    fn apply(p: &Pod, patch: &Value) -> Pod {
        let mut v = serde_json::to_value(p).unwrap();
        let status = v
            .as_object_mut()
            .unwrap()
            .entry("status")
            .or_insert(json!({}));
        for (k, val) in patch["status"].as_object().unwrap() {
            status[k] = val.clone();
        }
        pod(v)
    }

    fn bound(mut p: Pod, node: &str) -> Pod {
        p.spec.as_mut().unwrap().node_name = Some(node.to_owned());
        p
    }

    #[test]
    fn binds_to_a_node_that_fits() {
        assert_eq!(
            decide(&gpu_pod(0), &config(), &Usage::default(), now()),
            Action::Bind("cpu-0".into())
        );
        assert_eq!(
            decide(&gpu_pod(2), &config(), &Usage::default(), now()),
            Action::Bind("gpu-0".into())
        );
    }

    #[test]
    fn too_many_gpus_is_unschedulable_with_the_scheduler_message() {
        let action = decide(&gpu_pod(4), &config(), &Usage::default(), now());
        assert_eq!(
            action,
            Action::Unschedulable("0/2 nodes are available: 2 Insufficient nvidia.com/gpu.".into())
        );
        // Already marked with the same message: nothing to do (no patch loop).
        let patched = apply(
            &gpu_pod(4),
            &unschedulable_status(
                "0/2 nodes are available: 2 Insufficient nvidia.com/gpu.",
                now(),
            ),
        );
        assert_eq!(
            decide(&patched, &config(), &Usage::default(), now()),
            Action::None
        );
    }

    #[test]
    fn usage_counts_against_capacity() {
        let mut usage = Usage::default();
        usage.add("gpu-0", &[(GPU.to_owned(), 2000)].into());
        let action = decide(&gpu_pod(1), &config(), &usage, now());
        assert_eq!(
            action,
            Action::Unschedulable("0/2 nodes are available: 2 Insufficient nvidia.com/gpu.".into())
        );
    }

    #[test]
    fn node_selector_is_honoured_and_reported() {
        let mut p = gpu_pod(0);
        p.spec.as_mut().unwrap().node_selector =
            Some([("gpu-type".to_owned(), "a100".to_owned())].into());
        assert_eq!(
            decide(&p, &config(), &Usage::default(), now()),
            Action::Bind("gpu-0".into())
        );
        p.spec.as_mut().unwrap().node_selector =
            Some([("gpu-type".to_owned(), "h100".to_owned())].into());
        assert_eq!(
            decide(&p, &config(), &Usage::default(), now()),
            Action::Unschedulable(
                "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."
                    .into()
            )
        );
    }

    #[test]
    fn mixed_reasons_are_counted_per_reason() {
        let p = pod(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "main", "resources": {"requests": {"cpu": "20", "nvidia.com/gpu": "1"}}}]},
        }));
        assert_eq!(
            decide(&p, &config(), &Usage::default(), now()),
            Action::Unschedulable(
                "0/2 nodes are available: 2 Insufficient cpu, 1 Insufficient nvidia.com/gpu."
                    .into()
            )
        );
    }

    #[test]
    fn other_schedulers_and_foreign_nodes_are_left_alone() {
        let mut p = gpu_pod(0);
        p.spec.as_mut().unwrap().scheduler_name = Some("volcano".into());
        assert_eq!(
            decide(&p, &config(), &Usage::default(), now()),
            Action::None
        );
        assert_eq!(
            decide(
                &bound(gpu_pod(0), "real-node"),
                &config(),
                &Usage::default(),
                now()
            ),
            Action::None
        );
    }

    #[test]
    fn requests_sum_containers_and_take_the_largest_init_container() {
        let p = pod(json!({
            "metadata": {"name": "p"},
            "spec": {
                "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "3"}}}],
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
                    {"name": "b", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "250m"}}},
                ],
            },
        }));
        let r = pod_requests(&p).unwrap();
        assert_eq!(r["cpu"], 3000);
        assert_eq!(r["memory"], (1i128 << 30) * 1000);
    }

    #[test]
    fn lifecycle_running_then_succeeded() {
        let p = bound(gpu_pod(0), "cpu-0");
        let Action::PatchStatus(patch) = decide(&p, &config(), &Usage::default(), now()) else {
            panic!()
        };
        assert_eq!(patch["status"]["phase"], "Running");
        assert_eq!(patch["status"]["podIP"], patch["status"]["podIPs"][0]["ip"]);
        assert_eq!(patch["status"]["containerStatuses"][0]["name"], "main");
        assert!(
            patch["status"]["containerStatuses"][0]["state"]["running"]["startedAt"].is_string()
        );
        let running = apply(&p, &patch);
        assert!(running.status.as_ref().unwrap().start_time.is_some());

        // Before the run time: come back later; after: Succeeded, exit 0.
        let later = now().checked_add(Duration::from_secs(2)).unwrap();
        assert_eq!(
            decide(&running, &config(), &Usage::default(), later),
            Action::RequeueAfter(Duration::from_secs(3))
        );
        let done = now().checked_add(Duration::from_secs(5)).unwrap();
        let Action::PatchStatus(patch) = decide(&running, &config(), &Usage::default(), done)
        else {
            panic!()
        };
        assert_eq!(patch["status"]["phase"], "Succeeded");
        let term = &patch["status"]["containerStatuses"][0]["state"]["terminated"];
        assert_eq!(
            (term["exitCode"].as_i64(), term["reason"].as_str()),
            (Some(0), Some("Completed"))
        );
        assert_eq!(
            decide(&apply(&running, &patch), &config(), &Usage::default(), done),
            Action::None
        );
    }

    fn finish(annotations: Value) -> Value {
        let mut p = bound(gpu_pod(0), "cpu-0");
        p.metadata.annotations = Some(serde_json::from_value(annotations).unwrap());
        let Action::PatchStatus(patch) = decide(&p, &config(), &Usage::default(), now()) else {
            panic!()
        };
        let running = apply(&p, &patch);
        let end = now().checked_add(Duration::from_secs(60)).unwrap();
        match decide(&running, &config(), &Usage::default(), end) {
            Action::PatchStatus(patch) => patch,
            other => json!({"action": format!("{other:?}")}),
        }
    }

    #[test]
    fn outcomes_from_annotations() {
        let oom = finish(json!({OUTCOME_ANNOTATION: "oom"}));
        assert_eq!(oom["status"]["phase"], "Failed");
        assert_eq!(
            oom["status"]["containerStatuses"][0]["state"]["terminated"]["reason"],
            "OOMKilled"
        );
        assert_eq!(
            oom["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            137
        );

        let fail = finish(json!({OUTCOME_ANNOTATION: "fail", EXIT_CODE_ANNOTATION: "3"}));
        assert_eq!(fail["status"]["phase"], "Failed");
        assert_eq!(
            fail["status"]["containerStatuses"][0]["state"]["terminated"]["reason"],
            "Error"
        );
        assert_eq!(
            fail["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            3
        );

        assert_eq!(
            finish(json!({OUTCOME_ANNOTATION: "hang"})),
            json!({"action": "None"})
        );

        // A typo fails the pod at once, with the reason in its status.
        let mut typo = bound(gpu_pod(0), "cpu-0");
        typo.metadata.annotations =
            Some([(OUTCOME_ANNOTATION.to_owned(), "explode".to_owned())].into());
        let Action::PatchStatus(bad) = decide(&typo, &config(), &Usage::default(), now()) else {
            panic!()
        };
        assert_eq!(bad["status"]["phase"], "Failed");
        assert!(
            bad["status"]["message"]
                .as_str()
                .unwrap()
                .contains("explode")
        );
    }

    #[test]
    fn run_seconds_annotation_overrides_the_default() {
        let mut p = bound(gpu_pod(0), "cpu-0");
        p.metadata.annotations =
            Some([(RUN_SECONDS_ANNOTATION.to_owned(), "30".to_owned())].into());
        let Action::PatchStatus(patch) = decide(&p, &config(), &Usage::default(), now()) else {
            panic!()
        };
        let running = apply(&p, &patch);
        let later = now().checked_add(Duration::from_secs(10)).unwrap();
        assert_eq!(
            decide(&running, &config(), &Usage::default(), later),
            Action::RequeueAfter(Duration::from_secs(20))
        );
    }

    #[test]
    fn image_pull_backoff_for_matching_images() {
        let mut p = bound(gpu_pod(0), "cpu-0");
        p.spec.as_mut().unwrap().containers[0].image = Some("registry.invalid/nope:1".into());
        let Action::PatchStatus(patch) = decide(&p, &config(), &Usage::default(), now()) else {
            panic!()
        };
        assert_eq!(patch["status"]["phase"], "Pending");
        assert_eq!(
            patch["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
            "ImagePullBackOff"
        );
        assert_eq!(
            decide(&apply(&p, &patch), &config(), &Usage::default(), now()),
            Action::None
        );
    }

    #[test]
    fn deletion_is_forced_for_our_pods() {
        let mut p = bound(gpu_pod(0), "cpu-0");
        p.metadata.deletion_timestamp = Some(Time(now()));
        assert_eq!(
            decide(&p, &config(), &Usage::default(), now()),
            Action::ForceDelete
        );
        let mut foreign = bound(gpu_pod(0), "elsewhere");
        foreign.metadata.deletion_timestamp = Some(Time(now()));
        assert_eq!(
            decide(&foreign, &config(), &Usage::default(), now()),
            Action::None
        );
    }

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
