//! The in-pod agent against the real kube-apiserver (kube-testenv) and the in-process ClearML emulator: pods of the
//! agent's shape, credentials from a Secret through `secretKeyRef`, and the task's ClearML status at the end.
//!
//! Every wait on a pod is a watch (`await_condition`) bounded by a timeout. The emulator has no change feed, so the
//! one wait on a task's status (in the abort test) reads it until it changes, bounded the same way.

use std::time::Duration;

use clearml_api::{Client, ClientConfig, Enqueue, QueueCreate, StatusChange, TaskStatus};
use clearml_emulator::{DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Emulator, EmulatorHandle};
use k8s_openapi::api::core::v1::{Event, Pod, Secret};
use kube::{
    Api,
    api::{ListParams, PostParams},
    runtime::wait::{Condition, await_condition},
};
use kubelet_sim::{
    EXIT_CODE_ANNOTATION, InPodAgent, NodeSpec, OUTCOME_ANNOTATION, RUN_SECONDS_ANNOTATION,
    SimConfig, SimHandle, Simulator,
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const SECRET: &str = "clearml-agent-credentials";

/// Test logs (RUST_LOG, else `kubelet_sim=debug`).
fn logs() {
    kube_testenv::test_logs("kubelet_sim=debug");
}

/// One test's world: a namespace on the shared control plane, an emulator, a simulator with the in-pod agent.
struct World {
    pods: Api<Pod>,
    client: kube::Client,
    namespace: String,
    clearml: Client,
    emulator: EmulatorHandle,
    _sim: SimHandle,
}

impl World {
    async fn new(test: &str) -> Option<Self> {
        logs();
        let ctx = kube_testenv::test_context(test).await?;
        let emulator = Emulator::start(Default::default())
            .await
            .expect("emulator starts");
        let clearml = Client::new(ClientConfig::new(
            emulator.base_url(),
            DEFAULT_ACCESS_KEY,
            DEFAULT_SECRET_KEY,
        ))
        .expect("a ClearML client");
        let config = SimConfig {
            nodes: vec![
                NodeSpec::new(&format!("{}-node", ctx.namespace), "16", "64Gi", 0)
                    .expect("node spec"),
            ],
            in_pod_agent: Some(InPodAgent {
                abort_poll: Duration::from_millis(100),
                ..InPodAgent::default()
            }),
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
            clearml,
            emulator,
            _sim: sim,
        })
    }

    /// The Secret the agent's pods refer to, with the emulator's credentials.
    async fn secret(&self, access_key_name: &str) {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": SECRET},
            "stringData": {access_key_name: DEFAULT_ACCESS_KEY, "secret-key": DEFAULT_SECRET_KEY},
        }))
        .expect("a valid Secret");
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .expect("secret created");
    }

    /// A task, queued on a fresh queue unless `queued` is false.
    async fn task(&self, name: &str, queued: bool) -> String {
        let created: Value = self
            .clearml
            .call("tasks.create", &json!({"name": name, "type": "training"}))
            .await
            .expect("task created");
        let id = created["id"].as_str().expect("a task id").to_owned();
        if queued {
            let queue = self
                .clearml
                .queues_create(&QueueCreate {
                    name: format!("{name}-queue"),
                    ..Default::default()
                })
                .await
                .expect("queue created");
            self.clearml
                .tasks_enqueue(&Enqueue {
                    task: id.clone(),
                    queue: Some(queue),
                    ..Default::default()
                })
                .await
                .expect("task enqueued");
        }
        id
    }

    /// A pod of the agent's shape for `task`, with the sim annotations given.
    async fn pod(&self, task: &str, annotations: Value) -> Pod {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {
                "name": format!("clearml-id-{task}"),
                "labels": {"clearml-task-id": task, "clearml-agent-queue": "q", "clearml-agent-instance": "test"},
                "annotations": annotations,
            },
            "spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "clearml-task",
                    "image": "allegroai/clearml-agent-k8s-base:1.24",
                    "command": ["clearml-agent", "execute", "--full-monitoring", "--require-queue", "--id", task],
                    "env": [
                        {"name": "CLEARML_API_HOST", "value": self.emulator.base_url()},
                        {"name": "CLEARML_WEB_HOST", "value": "http://web.invalid"},
                        {"name": "CLEARML_FILES_HOST", "value": "http://files.invalid"},
                        {"name": "CLEARML_API_ACCESS_KEY",
                         "valueFrom": {"secretKeyRef": {"name": SECRET, "key": "access-key"}}},
                        {"name": "CLEARML_API_SECRET_KEY",
                         "valueFrom": {"secretKeyRef": {"name": SECRET, "key": "secret-key"}}},
                    ],
                }],
            },
        }))
        .expect("a valid Pod");
        self.pods
            .create(&PostParams::default(), &pod)
            .await
            .expect("pod created")
    }

    async fn wait_pod(&self, name: &str, what: &str, cond: impl Condition<Pod>) -> Pod {
        match tokio::time::timeout(WAIT, await_condition(self.pods.clone(), name, cond)).await {
            Ok(Ok(Some(pod))) => pod,
            Ok(Ok(None)) => panic!("{name}: gone while waiting for {what}"),
            Ok(Err(e)) => panic!("{name}: watch failed while waiting for {what}: {e}"),
            Err(_) => panic!("{name}: no {what} within {WAIT:?}"),
        }
    }

    async fn task_status(&self, id: &str) -> clearml_api::Task {
        self.clearml
            .tasks_get_by_id(id)
            .await
            .expect("task readable")
    }

    /// The event reasons recorded for a pod.
    async fn event_reasons(&self, pod: &str) -> Vec<String> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        let list = events
            .list(&ListParams::default().fields(&format!("involvedObject.name={pod}")))
            .await
            .expect("events listed")
            .items;
        list.into_iter().filter_map(|e| e.reason).collect()
    }
}

fn phase_is(phase: &'static str) -> impl Condition<Pod> {
    move |p: Option<&Pod>| p.and_then(|p| p.status.as_ref()?.phase.as_deref()) == Some(phase)
}

fn terminated(pod: &Pod) -> (i32, String) {
    let t = pod
        .status
        .as_ref()
        .and_then(|s| {
            s.container_statuses
                .as_ref()?
                .first()?
                .state
                .as_ref()?
                .terminated
                .clone()
        })
        .expect("the task container terminated");
    (t.exit_code, t.reason.unwrap_or_default())
}

#[tokio::test]
async fn a_task_pod_dequeues_starts_and_completes_its_task() {
    let Some(w) = World::new("in-pod-complete").await else {
        return;
    };
    w.secret("access-key").await;
    let task = w.task("complete", true).await;
    let pod = w.pod(&task, json!({})).await;
    let name = pod.metadata.name.unwrap();
    let done = w.wait_pod(&name, "Succeeded", phase_is("Succeeded")).await;
    assert_eq!(terminated(&done), (0, "Completed".into()));
    // The container reported before it exited, so the task is complete by the time the pod is.
    let t = w.task_status(&task).await;
    assert_eq!(t.status, Some(TaskStatus::Completed));
    assert_eq!(t.status_reason.as_deref(), Some("worker execution done"));
    assert!(t.started.is_some(), "tasks.started was called");
    let reasons = w.event_reasons(&name).await;
    for r in ["Scheduled", "Pulling", "Pulled", "Created", "Started"] {
        assert!(reasons.iter().any(|x| x == r), "{r} in {reasons:?}");
    }
}

#[tokio::test]
async fn a_non_zero_exit_fails_the_task_naming_the_code() {
    let Some(w) = World::new("in-pod-fail").await else {
        return;
    };
    w.secret("access-key").await;
    let task = w.task("fail", true).await;
    let pod = w
        .pod(
            &task,
            json!({OUTCOME_ANNOTATION: "fail", EXIT_CODE_ANNOTATION: "3"}),
        )
        .await;
    let done = w
        .wait_pod(&pod.metadata.name.unwrap(), "Failed", phase_is("Failed"))
        .await;
    assert_eq!(terminated(&done), (3, "Error".into()));
    let t = w.task_status(&task).await;
    assert_eq!(t.status, Some(TaskStatus::Failed));
    assert_eq!(
        t.status_reason.as_deref(),
        Some("worker execution exit code 3")
    );
    assert_eq!(
        t.status_message.as_deref(),
        Some("Process failed, exit code 3")
    );
}

#[tokio::test]
async fn a_task_that_is_no_longer_queued_is_skipped() {
    let Some(w) = World::new("in-pod-skip").await else {
        return;
    };
    w.secret("access-key").await;
    // Created, never queued (as after someone else dequeued it): `--require-queue` refuses to run it.
    let task = w.task("skip", false).await;
    let pod = w.pod(&task, json!({})).await;
    let done = w
        .wait_pod(&pod.metadata.name.unwrap(), "Failed", phase_is("Failed"))
        .await;
    assert_eq!(terminated(&done), (1, "Error".into()));
    let t = w.task_status(&task).await;
    assert_eq!(
        t.status,
        Some(TaskStatus::Created),
        "the skipped task is left alone"
    );
    assert_eq!(w.emulator.call_count("tasks.started"), 0);
}

#[tokio::test]
async fn an_oom_killed_container_reports_nothing_at_the_end() {
    let Some(w) = World::new("in-pod-oom").await else {
        return;
    };
    w.secret("access-key").await;
    let task = w.task("oom", true).await;
    let pod = w.pod(&task, json!({OUTCOME_ANNOTATION: "oom"})).await;
    let name = pod.metadata.name.unwrap();
    let done = w.wait_pod(&name, "Failed", phase_is("Failed")).await;
    assert_eq!(terminated(&done), (137, "OOMKilled".into()));
    // Started (the container ran), never completed or failed: the agent must tell ClearML why.
    let t = w.task_status(&task).await;
    assert_eq!(t.status, Some(TaskStatus::InProgress));
    assert_eq!(w.emulator.call_count("tasks.completed"), 0);
    assert_eq!(w.emulator.call_count("tasks.failed"), 0);
    assert!(
        w.event_reasons(&name)
            .await
            .iter()
            .any(|r| r == "OOMKilling")
    );
}

#[tokio::test]
async fn a_missing_secret_key_is_create_container_config_error_and_touches_no_task() {
    let Some(w) = World::new("in-pod-no-secret").await else {
        return;
    };
    // The Secret exists but has the access key under another name.
    w.secret("accessKey").await;
    let task = w.task("no-secret", true).await;
    let pod = w.pod(&task, json!({})).await;
    let name = pod.metadata.name.unwrap();
    let waiting = w
        .wait_pod(&name, "CreateContainerConfigError", |p: Option<&Pod>| {
            p.and_then(|p| {
                let cs = p.status.as_ref()?.container_statuses.as_ref()?.first()?;
                cs.state.as_ref()?.waiting.as_ref()?.reason.clone()
            })
            .as_deref()
                == Some("CreateContainerConfigError")
        })
        .await;
    let status = waiting.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    let message = status.container_statuses.unwrap()[0]
        .state
        .as_ref()
        .unwrap()
        .waiting
        .as_ref()
        .unwrap()
        .message
        .clone()
        .unwrap();
    assert_eq!(
        message,
        format!(
            "couldn't find key access-key in Secret {}/{SECRET}",
            w.namespace
        )
    );
    assert_eq!(w.task_status(&task).await.status, Some(TaskStatus::Queued));
}

#[tokio::test]
async fn an_abort_in_clearml_stops_the_task_and_ends_the_container_with_exit_0() {
    let Some(w) = World::new("in-pod-abort").await else {
        return;
    };
    w.secret("access-key").await;
    let task = w.task("abort", true).await;
    let pod = w.pod(&task, json!({RUN_SECONDS_ANNOTATION: "3600"})).await;
    let name = pod.metadata.name.unwrap();
    w.wait_pod(&name, "Running", phase_is("Running")).await;
    // No change feed in the emulator: read the status until the in-pod agent has started the task.
    tokio::time::timeout(WAIT, async {
        while w.task_status(&task).await.status != Some(TaskStatus::InProgress) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the in-pod agent started the task");
    // The UI's abort: a running task gets status_message "stopping" for its worker to act on.
    w.clearml
        .tasks_stop(&StatusChange::new(&task))
        .await
        .expect("tasks.stop");
    let done = w.wait_pod(&name, "Succeeded", phase_is("Succeeded")).await;
    assert_eq!(terminated(&done), (0, "Completed".into()));
    let t = w.task_status(&task).await;
    assert_eq!(t.status, Some(TaskStatus::Stopped));
    assert_eq!(
        t.status_reason.as_deref(),
        Some("task was stopped by tasks.stop")
    );
}

#[tokio::test]
async fn a_hanging_task_ends_when_the_test_changes_its_outcome() {
    let Some(w) = World::new("in-pod-hang").await else {
        return;
    };
    w.secret("access-key").await;
    let task = w.task("hang", true).await;
    let pod = w.pod(&task, json!({OUTCOME_ANNOTATION: "hang"})).await;
    let name = pod.metadata.name.unwrap();
    w.wait_pod(&name, "Running", phase_is("Running")).await;
    tokio::time::timeout(WAIT, async {
        while w.task_status(&task).await.status != Some(TaskStatus::InProgress) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the in-pod agent started the task");
    // The test decides when the run is over: the annotation change is the next event.
    let patch = json!({"metadata": {"annotations": {OUTCOME_ANNOTATION: "fail", EXIT_CODE_ANNOTATION: "2"}}});
    w.pods
        .patch(
            &name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .expect("annotations patched");
    let done = w.wait_pod(&name, "Failed", phase_is("Failed")).await;
    assert_eq!(terminated(&done), (2, "Error".into()));
    let t = w.task_status(&task).await;
    assert_eq!(t.status, Some(TaskStatus::Failed));
    assert_eq!(
        t.status_reason.as_deref(),
        Some("worker execution exit code 2")
    );
}
