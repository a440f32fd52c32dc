//! The ClearML Enterprise page's values examples give the pods the page promises.

use clearml_api::TaskStatus;
use serde_json::json;

use crate::harness::{ACCESS_KEY, SECRET_KEY, World, env_value, label, limit};

/// The page's "Override a Pod Template by Queue" example, verbatim.
pub const RED_BLUE_GREEN: &str = r#"
agentk8sglue:
  # Defines common template
  basePodTemplate:
    labels:
      team: red
    resources:
      limits:
        memory: 1Gi
  createQueues: true
  queues:
    red:
      # Does not override
      templateOverrides: {}
    blue:
      # Overrides labels
      templateOverrides:
        labels:
          team: blue
    green:
      # Overrides labels and resources, plus set new fields
      templateOverrides:
        labels:
          team: green
        annotations:
          example: "example value"
        resources:
          limits:
            memory: 2Gi
        env:
          - name: MY_ENV
            value: "my_value"
"#;

/// The page's "GPU Queues" example, verbatim.
pub const GPU_QUEUES: &str = r#"
agentk8sglue:
  createQueues: true
  queues:
    1xGPU:
      templateOverrides:
        resources:
          limits:
            nvidia.com/gpu: 1
    2xGPU:
      templateOverrides:
        resources:
          limits:
            nvidia.com/gpu: 2
"#;

#[tokio::test]
async fn red_blue_green_pods_are_what_the_page_promises() {
    let Some(world) = World::new("rbg").await else {
        return;
    };
    let agent = world.start_agent(RED_BLUE_GREEN).await;
    crate::harness::eventually("the queues to be created", || async {
        agent::startup::find_queue(&world.clearml, "green")
            .await
            .unwrap()
    })
    .await;
    let red = world.enqueue("red", "red task", json!({})).await;
    let blue = world.enqueue("blue", "blue task", json!({})).await;
    let green = world.enqueue("green", "green task", json!({})).await;

    let red_pod = world.wait_pod(&red).await;
    let blue_pod = world.wait_pod(&blue).await;
    let green_pod = world.wait_pod(&green).await;

    // red inherits both the label and the 1Gi limit; blue overrides the label, inherits 1Gi; green overrides both
    // and adds an annotation and an env var.
    assert_eq!(label(&red_pod, "team"), Some("red"));
    assert_eq!(limit(&red_pod, "memory").as_deref(), Some("1Gi"));
    assert_eq!(label(&blue_pod, "team"), Some("blue"));
    assert_eq!(limit(&blue_pod, "memory").as_deref(), Some("1Gi"));
    assert_eq!(label(&green_pod, "team"), Some("green"));
    assert_eq!(limit(&green_pod, "memory").as_deref(), Some("2Gi"));
    let annotations = green_pod.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.get("example").map(String::as_str),
        Some("example value")
    );
    assert_eq!(env_value(&green_pod, "MY_ENV").as_deref(), Some("my_value"));
    assert_eq!(env_value(&red_pod, "MY_ENV"), None);

    for (pod, task, queue) in [
        (&red_pod, &red, "red"),
        (&blue_pod, &blue, "blue"),
        (&green_pod, &green, "green"),
    ] {
        assert_eq!(label(pod, "clearml-task-id"), Some(task.as_str()));
        assert_eq!(label(pod, "clearml-agent-queue-name"), Some(queue));
        assert_eq!(label(pod, "clearml-agent-instance"), Some("agent"));
        let provenance = pod.metadata.annotations.as_ref().unwrap()["clearml.ai/policies"].clone();
        assert!(
            provenance.starts_with("template-overrides@sha256:"),
            "{provenance}"
        );
        assert_eq!(
            pod.spec.as_ref().unwrap().restart_policy.as_deref(),
            Some("Never")
        );
        // The in-pod agent took the task from the hidden pending queue and runs it.
        world.wait_status(task, TaskStatus::InProgress).await;
    }

    // No credential value anywhere in any pod: only references to the agent's Secret.
    for pod in world.pods().await {
        let text = serde_json::to_string(&pod).unwrap();
        assert!(
            !text.contains(SECRET_KEY) && !text.contains(ACCESS_KEY),
            "credential in pod {:?}",
            pod.metadata.name
        );
    }
    let secret = kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(
        world.kube.clone(),
        &world.namespace,
    )
    .get("agent-credentials")
    .await
    .unwrap();
    let data = secret.data.unwrap();
    assert_eq!(data["CLEARML_API_SECRET_KEY"].0, SECRET_KEY.as_bytes());
    assert_eq!(data["CLEARML_API_ACCESS_KEY"].0, ACCESS_KEY.as_bytes());

    agent.stop().await.unwrap();
}

#[tokio::test]
async fn gpu_queues_get_their_gpus() {
    let Some(world) = World::new("gpu").await else {
        return;
    };
    let agent = world.start_agent(GPU_QUEUES).await;
    crate::harness::eventually("the queues to be created", || async {
        agent::startup::find_queue(&world.clearml, "2xGPU")
            .await
            .unwrap()
    })
    .await;
    let one = world.enqueue("1xGPU", "one gpu", json!({})).await;
    let two = world.enqueue("2xGPU", "two gpus", json!({})).await;
    assert_eq!(
        limit(&world.wait_pod(&one).await, "nvidia.com/gpu").as_deref(),
        Some("1")
    );
    assert_eq!(
        limit(&world.wait_pod(&two).await, "nvidia.com/gpu").as_deref(),
        Some("2")
    );
    agent.stop().await.unwrap();
}

#[tokio::test]
async fn create_queues_creates_once_and_reuses_and_registers_all_queues() {
    let Some(world) = World::new("createq").await else {
        return;
    };
    let agent = world.start_agent(RED_BLUE_GREEN).await;
    let ids = crate::harness::eventually("the queues to be created", || async {
        let mut ids = Vec::new();
        for name in ["red", "blue", "green"] {
            ids.push(
                agent::startup::find_queue(&world.clearml, name)
                    .await
                    .unwrap()?,
            );
        }
        Some(ids)
    })
    .await;
    // The worker is registered with every queue, not just the first (the glue's agent#236).
    let worker = crate::harness::eventually("the worker to register", || async {
        let workers: serde_json::Value = world
            .clearml
            .call("workers.get_all", &json!({}))
            .await
            .unwrap();
        workers["workers"]
            .as_array()?
            .iter()
            .find(|w| w["id"] == "agent")
            .cloned()
    })
    .await;
    let registered: Vec<&str> = worker["queues"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|q| q["id"].as_str())
        .collect();
    for id in &ids {
        assert!(
            registered.contains(&id.as_str()),
            "{id} not in {registered:?}"
        );
    }
    agent.stop().await.unwrap();

    // A second start finds the queues and creates none.
    let again = world.start_agent(RED_BLUE_GREEN).await;
    let task = world.enqueue("blue", "after restart", json!({})).await;
    world.wait_pod(&task).await;
    let queues = world
        .clearml
        .queues_get_all(&clearml_api::QueuesGetAll {
            search_hidden: true,
            ..Default::default()
        })
        .await
        .unwrap();
    for name in ["red", "blue", "green", "k8s_scheduler"] {
        assert_eq!(
            queues.iter().filter(|q| q.name == name).count(),
            1,
            "queue {name}"
        );
    }
    again.stop().await.unwrap();
}

/// The page's "Report GPUs in the Dashboard" example, with one queue so the agent can run.
const DASHBOARD: &str = r#"
agentk8sglue:
  # -- Agent reporting to Dashboard max GPU available. This will report 2 GPUs.
  dashboardReportMaxGpu: 2
  createQueues: true
  queues:
    gpus:
      templateOverrides: {}
"#;

#[tokio::test]
async fn dashboard_report_max_gpu_reaches_an_enterprise_server() {
    let Some(world) = World::enterprise("dashboard").await else {
        return;
    };
    let agent = world.start_agent(DASHBOARD).await;
    crate::harness::eventually("the cluster report", || async {
        (world.emulator.call_count("workers.cluster_report") > 0).then_some(())
    })
    .await;
    // The agent keeps working on the enterprise path too.
    let task = world.enqueue("gpus", "enterprise task", json!({})).await;
    world.wait_pod(&task).await;
    agent.stop().await.unwrap();
}
