//! The kubelet's part: the pod status a real kubelet would write at each step (Running, waiting on an image pull,
//! terminated), with stable fake IPs and container ids, so consumers see the shapes they will meet in a cluster.

use k8s_openapi::{
    api::core::v1::{Container, Pod},
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};
use serde_json::{Value, json};

use crate::pod_view::{containers, started_at};

/// All containers running (kwok's `ready` stage), init containers completed.
pub(crate) fn running_status(pod: &Pod, node: &str, now: Timestamp) -> Value {
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

/// Why a container has not started: the kubelet's waiting reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Waiting {
    pub reason: &'static str,
    pub message: String,
}

/// A bound pod whose containers cannot start: each container `blocked` names stays waiting with its reason, the
/// others wait behind it (`ContainerCreating`), and the pod stays `Pending`.
pub(crate) fn waiting_status(
    pod: &Pod,
    node: &str,
    now: Timestamp,
    blocked: impl Fn(&Container) -> Option<Waiting>,
) -> Value {
    let t = time(now);
    let mut not_ready = Vec::new();
    let statuses: Vec<Value> = containers(pod)
        .iter()
        .map(|c| {
            not_ready.push(c.name.clone());
            let waiting = match blocked(c) {
                Some(w) => json!({"reason": w.reason, "message": w.message}),
                None => json!({"reason": "ContainerCreating"}),
            };
            json!({
                "name": c.name,
                "image": c.image.clone().unwrap_or_default(),
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

/// How a pod's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Termination {
    /// The task container's process exited with this code (0: `Completed`, else `Error`).
    Exited(i32),
    /// The kernel killed it for exceeding its memory limit (exit 137, `OOMKilled`).
    OomKilled,
    /// The kubelet evicted the pod (node pressure): phase `Failed`, reason `Evicted`.
    Evicted,
    /// The scheduler preempted the pod for a higher-priority one: phase `Failed`, reason `Preempted`.
    Preempted,
}

/// The pod-level message of an eviction (the kubelet's wording for memory pressure).
pub(crate) fn eviction_message(pod: &Pod) -> String {
    let container = containers(pod).first().map_or("", |c| c.name.as_str());
    format!(
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 64Mi. Container {container} \
         was using 2Gi, request is 1Gi, has larger consumption of memory. (simulated)"
    )
}

/// The pod-level message of a preemption.
pub(crate) const PREEMPTION_MESSAGE: &str =
    "Preempted by default-scheduler to make room for a higher-priority pod (simulated)";

/// Terminal status: Succeeded, or Failed with the exit code and reason on the first container (sidecars finish
/// cleanly). `message` (a simulator error, e.g. a bad annotation) goes on the pod with reason `SimulatorError`.
pub(crate) fn terminal_status(
    pod: &Pod,
    end: Termination,
    now: Timestamp,
    message: Option<&str>,
) -> Value {
    let t = time(now);
    let started = started_at(pod);
    let started_t = started.map_or_else(|| t.clone(), time);
    let (phase, code, reason) = match end {
        Termination::Exited(0) => ("Succeeded", 0, "Completed"),
        Termination::Exited(code) => ("Failed", code, "Error"),
        Termination::OomKilled => ("Failed", 137, "OOMKilled"),
        // A disrupted container is killed (SIGKILL after the grace period); one that never started cannot be
        // found, which the kubelet reports as ContainerStatusUnknown.
        Termination::Evicted | Termination::Preempted if started.is_some() => {
            ("Failed", 137, "Error")
        }
        Termination::Evicted | Termination::Preempted => ("Failed", 137, "ContainerStatusUnknown"),
    };
    let statuses: Vec<Value> = containers(pod)
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (code, reason) =
                if i == 0 || matches!(end, Termination::Evicted | Termination::Preempted) {
                    (code, reason)
                } else {
                    (0, "Completed")
                };
            let mut terminated = json!({
                "exitCode": code,
                "reason": reason,
                "startedAt": started_t,
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
    let mut conditions = vec![
        cond_reason("PodReadyToStartContainers", "False", "", "", &t),
        cond_reason("Ready", "False", ready_reason, "", &t),
        cond_reason("ContainersReady", "False", ready_reason, "", &t),
    ];
    let mut status = json!({ "phase": phase, "containerStatuses": statuses });
    let disruption = match end {
        Termination::Evicted => Some(("Evicted", eviction_message(pod), "TerminationByKubelet")),
        Termination::Preempted => Some((
            "Preempted",
            PREEMPTION_MESSAGE.to_owned(),
            "PreemptionByScheduler",
        )),
        Termination::Exited(_) | Termination::OomKilled => None,
    };
    if let Some((reason, pod_message, condition_reason)) = disruption {
        conditions.push(cond_reason(
            "DisruptionTarget",
            "True",
            condition_reason,
            &pod_message,
            &t,
        ));
        status["reason"] = json!(reason);
        status["message"] = json!(pod_message);
    }
    if let Some(m) = message {
        status["message"] = json!(m);
        status["reason"] = json!("SimulatorError");
    }
    status["conditions"] = json!(conditions);
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

pub(crate) fn time(t: Timestamp) -> Value {
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

pub(crate) fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
