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

use std::time::Duration;

use k8s_openapi::{api::core::v1::Pod, jiff::Timestamp};
use serde_json::Value;

pub use crate::config::{DecideError, GPU, NodeSpec, SimConfig};
pub use crate::pod_view::started_at;
pub use crate::schedule::{DEFAULT_SCHEDULER, Usage, pod_requests, unschedulable_status};
use crate::{
    pod_view::{annotation, containers, waiting_reason},
    schedule::schedule,
    status::{image_pull_backoff_status, running_status, terminal_status},
};

/// `succeed` (default), `fail`, `oom`, `hang` (stays Running), `image-pull-backoff`.
pub const OUTCOME_ANNOTATION: &str = "sim.clearml-k8s-agent/outcome";
/// Exit code for `fail` (default 1).
pub const EXIT_CODE_ANNOTATION: &str = "sim.clearml-k8s-agent/exit-code";
/// Seconds from Running to the outcome (default: [`SimConfig::default_run`]).
pub const RUN_SECONDS_ANNOTATION: &str = "sim.clearml-k8s-agent/run-seconds";

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{apply, bound, config, gpu_pod, now};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::json;

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
}
