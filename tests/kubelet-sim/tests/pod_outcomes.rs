//! The pod outcomes the agent's lifecycle tests rely on, against the real kube-apiserver (kube-testenv): each
//! reaches the pod status a cluster would show, with the Events that explain it, created before the status change.
//!
//! Every wait is a watch (`await_condition`) bounded by a timeout; no sleeps.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::{
    Api, Client,
    api::{ListParams, PostParams},
    runtime::wait::{Condition, await_condition},
};
use kubelet_sim::{NodeSpec, OUTCOME_ANNOTATION, SimConfig, SimHandle, Simulator};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

/// Test logs (RUST_LOG, else `kubelet_sim=debug`).
fn logs() {
    kube_testenv::test_logs("kubelet_sim=debug");
}

struct World {
    client: Client,
    pods: Api<Pod>,
    namespace: String,
    _sim: SimHandle,
}

impl World {
    async fn new(test: &str) -> Option<Self> {
        logs();
        let ctx = kube_testenv::test_context(test).await?;
        let config = SimConfig {
            nodes: vec![
                NodeSpec::new(&format!("{}-gpu", ctx.namespace), "16", "64Gi", 2)
                    .expect("node spec"),
            ],
            image_pull_error: Some(regex::Regex::new(r"^registry\.invalid/").expect("a regex")),
            ..SimConfig::default()
        };
        let sim = Simulator::new(ctx.client.clone(), config, Some(ctx.namespace.clone()))
            .spawn()
            .await
            .expect("simulator nodes registered");
        Some(Self {
            pods: Api::namespaced(ctx.client.clone(), &ctx.namespace),
            client: ctx.client,
            namespace: ctx.namespace,
            _sim: sim,
        })
    }

    async fn pod(&self, name: &str, image: &str, outcome: Option<&str>, gpus: u32) -> String {
        let annotations = match outcome {
            Some(o) => json!({ OUTCOME_ANNOTATION: o }),
            None => json!({}),
        };
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": annotations},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "clearml-task", "image": image,
                    "resources": {"limits": {"nvidia.com/gpu": gpus.to_string()}}}],
            },
        }))
        .expect("a valid Pod");
        self.pods
            .create(&PostParams::default(), &pod)
            .await
            .expect("pod created");
        name.to_owned()
    }

    async fn wait(&self, name: &str, what: &str, cond: impl Condition<Pod>) -> Pod {
        match tokio::time::timeout(WAIT, await_condition(self.pods.clone(), name, cond)).await {
            Ok(Ok(Some(pod))) => pod,
            Ok(Ok(None)) => panic!("{name}: gone while waiting for {what}"),
            Ok(Err(e)) => panic!("{name}: watch failed while waiting for {what}: {e}"),
            Err(_) => panic!("{name}: no {what} within {WAIT:?}"),
        }
    }

    /// `(type, reason, message)` of the events about a pod.
    async fn events(&self, pod: &str) -> Vec<(String, String, String)> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        events
            .list(&ListParams::default().fields(&format!("involvedObject.name={pod}")))
            .await
            .expect("events listed")
            .items
            .into_iter()
            .map(|e| {
                (
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.message.unwrap_or_default(),
                )
            })
            .collect()
    }

    async fn has_event(&self, pod: &str, reason: &str) -> bool {
        self.events(pod).await.iter().any(|(_, r, _)| r == reason)
    }
}

fn waiting_reason(reason: &'static str) -> impl Condition<Pod> {
    move |p: Option<&Pod>| {
        p.and_then(|p| {
            let cs = p.status.as_ref()?.container_statuses.as_ref()?.first()?;
            cs.state.as_ref()?.waiting.as_ref()?.reason.clone()
        })
        .as_deref()
            == Some(reason)
    }
}

fn failed_with(reason: &'static str) -> impl Condition<Pod> {
    move |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref()).is_some_and(|s| {
            s.phase.as_deref() == Some("Failed") && s.reason.as_deref() == Some(reason)
        })
    }
}

#[tokio::test]
async fn a_missing_image_goes_err_image_pull_then_image_pull_backoff() {
    let Some(w) = World::new("outcome-pull").await else {
        return;
    };
    let pod = w
        .pod("pull", "registry.invalid/team/train:1", None, 0)
        .await;
    let backoff = w
        .wait(&pod, "ImagePullBackOff", waiting_reason("ImagePullBackOff"))
        .await;
    assert_eq!(backoff.status.unwrap().phase.as_deref(), Some("Pending"));
    let events = w.events(&pod).await;
    let failed: Vec<&str> = events
        .iter()
        .filter(|(t, r, _)| t == "Warning" && r == "Failed")
        .map(|(_, _, m)| m.as_str())
        .collect();
    assert!(failed.contains(&"Error: ErrImagePull"), "{events:?}");
    assert!(failed.contains(&"Error: ImagePullBackOff"), "{events:?}");
    assert!(w.has_event(&pod, "BackOff").await);
}

#[tokio::test]
async fn an_unparsable_image_is_invalid_image_name() {
    let Some(w) = World::new("outcome-invalid-image").await else {
        return;
    };
    let pod = w.pod("invalid", "Team/Train:1", None, 0).await;
    w.wait(&pod, "InvalidImageName", waiting_reason("InvalidImageName"))
        .await;
    assert!(w.has_event(&pod, "InspectFailed").await);
}

#[tokio::test]
async fn too_many_gpus_is_unschedulable_with_a_failed_scheduling_event() {
    let Some(w) = World::new("outcome-unschedulable").await else {
        return;
    };
    let pod = w.pod("greedy", "busybox:1.36", None, 8).await;
    let unschedulable = w
        .wait(&pod, "Unschedulable", |p: Option<&Pod>| {
            p.and_then(|p| {
                p.status
                    .as_ref()?
                    .conditions
                    .as_ref()?
                    .first()?
                    .reason
                    .clone()
            })
            .as_deref()
                == Some("Unschedulable")
        })
        .await;
    let message = unschedulable.status.unwrap().conditions.unwrap()[0]
        .message
        .clone()
        .unwrap();
    assert_eq!(
        message,
        "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."
    );
    let events = w.events(&pod).await;
    assert!(
        events
            .iter()
            .any(|(t, r, m)| t == "Warning" && r == "FailedScheduling" && *m == message),
        "{events:?}"
    );
}

#[tokio::test]
async fn evictions_and_preemptions_fail_pending_and_running_pods() {
    let Some(w) = World::new("outcome-disruption").await else {
        return;
    };
    for (outcome, reason) in [
        ("evicted-pending", "Evicted"),
        ("evicted", "Evicted"),
        ("preempted-pending", "Preempted"),
        ("preempted", "Preempted"),
    ] {
        let pod = w.pod(outcome, "busybox:1.36", Some(outcome), 0).await;
        let failed = w.wait(&pod, reason, failed_with(reason)).await;
        let status = failed.status.unwrap();
        assert!(status.message.unwrap().contains("(simulated)"));
        let disruption = status
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "DisruptionTarget")
            .expect("a DisruptionTarget condition");
        assert_eq!(disruption.status, "True");
        assert!(
            w.has_event(&pod, reason).await,
            "{outcome}: {:?}",
            w.events(&pod).await
        );
        let started = w.has_event(&pod, "Started").await;
        assert_eq!(
            started,
            !outcome.ends_with("-pending"),
            "{outcome}: started only when running"
        );
    }
}
