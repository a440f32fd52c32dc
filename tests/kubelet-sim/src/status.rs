//! The kubelet's part: the pod status a real kubelet would write at each step (Running, waiting on an image pull,
//! terminated), with stable fake IPs and container ids, so consumers see the shapes they will meet in a cluster.

use k8s_openapi::{
    api::core::v1::{Container, Pod},
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};
use serde_json::{Value, json};

use crate::{
    config::SimConfig,
    decide::{OUTCOME_ANNOTATION, Outcome},
    pod_view::{annotation, containers, started_at},
};

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

pub(crate) fn image_pull_backoff_status(
    pod: &Pod,
    node: &str,
    config: &SimConfig,
    now: Timestamp,
) -> Value {
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
pub(crate) fn terminal_status(
    pod: &Pod,
    outcome: Outcome,
    now: Timestamp,
    message: Option<&str>,
) -> Value {
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

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
