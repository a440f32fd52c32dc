//! The whole life of a task: every pod outcome reaches the ClearML task with its reason, an abort stops the pod, a
//! vanished pod is reported. The simulator plays the stock in-pod agent (`kubelet-sim --in-pod-agent`).

use clearml_api::{StatusChange, TaskStatus};
use serde_json::json;

use crate::harness::{World, eventually};

/// One queue per outcome, chosen with the simulator's pod annotations through each queue's templateOverrides.
const OUTCOMES: &str = r#"
agentk8sglue:
  createQueues: true
  queues:
    succeeds:
      templateOverrides:
        annotations: {sim.clearml-k8s-agent/outcome: succeed, sim.clearml-k8s-agent/run-seconds: "1"}
    exit3:
      templateOverrides:
        annotations: {sim.clearml-k8s-agent/outcome: fail, sim.clearml-k8s-agent/exit-code: "3", sim.clearml-k8s-agent/run-seconds: "1"}
    oom:
      templateOverrides:
        annotations: {sim.clearml-k8s-agent/outcome: oom, sim.clearml-k8s-agent/run-seconds: "1"}
    pull:
      templateOverrides:
        annotations: {sim.clearml-k8s-agent/outcome: image-pull-backoff}
    huge:
      templateOverrides:
        resources: {limits: {nvidia.com/gpu: 64}}
    hang:
      templateOverrides:
        annotations: {sim.clearml-k8s-agent/outcome: hang}
"#;

async fn started(world: &World) -> crate::harness::RunningAgent {
    let agent = world.start_agent(OUTCOMES).await;
    eventually("the queues", || async {
        agent::startup::find_queue(&world.clearml, "hang")
            .await
            .unwrap()
    })
    .await;
    agent
}

#[tokio::test]
async fn every_outcome_reaches_the_task_with_its_reason() {
    let Some(world) = World::new("outcomes").await else {
        return;
    };
    let agent = started(&world).await;
    let ok = world.enqueue("succeeds", "completes", json!({})).await;
    let exit3 = world.enqueue("exit3", "exits 3", json!({})).await;
    let oom = world.enqueue("oom", "oom", json!({})).await;
    let pull = world
        .enqueue(
            "pull",
            "bad image",
            json!({"container": {"image": "nvcr.io/nope/missing:1"}}),
        )
        .await;
    let huge = world.enqueue("huge", "too big", json!({})).await;

    world.wait_status(&ok, TaskStatus::Completed).await;
    let failed = world.wait_status(&exit3, TaskStatus::Failed).await;
    assert!(
        failed
            .status_message
            .clone()
            .unwrap_or_default()
            .contains('3'),
        "{failed:?}"
    );
    let failed = world.wait_status(&oom, TaskStatus::Failed).await;
    assert_eq!(
        failed.status_reason.as_deref(),
        Some("OOMKilled"),
        "{failed:?}"
    );
    assert!(
        failed
            .status_message
            .unwrap_or_default()
            .contains("more memory than its limit")
    );
    let failed = world.wait_status(&pull, TaskStatus::Failed).await;
    let message = failed.status_message.unwrap_or_default();
    assert!(
        message.contains("ImagePullBackOff") || message.contains("ErrImagePull"),
        "{message}"
    );
    assert!(message.contains("nvcr.io/nope/missing:1"), "{message}");
    let pending = eventually("the scheduler's reason on the task", || async {
        let task = world.task(&huge).await;
        task.status_message.filter(|m| m.contains("Unschedulable"))
    })
    .await;
    assert!(pending.contains("Insufficient nvidia.com/gpu"), "{pending}");
    assert_eq!(world.task(&huge).await.status, Some(TaskStatus::Queued));

    // Finished and failed pods are cleaned up (completedPodDeletionDelayMinutes defaults to 0), after the task
    // heard the reason; the unschedulable pod stays.
    for task in [&ok, &exit3, &oom, &pull] {
        eventually(&format!("the pod of {task} to be deleted"), || async {
            world.pod_of(task).await.is_none().then_some(())
        })
        .await;
    }
    assert!(world.pod_of(&huge).await.is_some());

    // The pods' Kubernetes Events reached the tasks' console logs.
    let lines = eventually("the OOM pod's events in its task log", || async {
        let log = world.clearml.events_get_task_log(&oom, 200).await.unwrap();
        let lines: Vec<String> = log.events.into_iter().map(|e| e.msg).collect();
        lines
            .iter()
            .any(|l| l.starts_with("[k8s]") && l.contains("Scheduled"))
            .then_some(lines)
    })
    .await;
    assert!(
        lines
            .iter()
            .all(|l| !l.contains(crate::harness::SECRET_KEY)),
        "{lines:?}"
    );
    agent.stop().await.unwrap();
}

#[tokio::test]
async fn an_abort_in_clearml_deletes_the_running_pod_and_a_vanished_pod_is_reported() {
    let Some(world) = World::new("abort").await else {
        return;
    };
    let agent = started(&world).await;
    let aborted = world.enqueue("hang", "to abort", json!({})).await;
    let vanishing = world.enqueue("hang", "to vanish", json!({})).await;
    world.wait_status(&aborted, TaskStatus::InProgress).await;
    world.wait_status(&vanishing, TaskStatus::InProgress).await;

    // The web UI's abort: the task is running with a live worker, so it becomes "stopping".
    world
        .clearml
        .tasks_stop(&StatusChange::new(aborted.clone()))
        .await
        .unwrap();
    eventually("the aborted task's pod to go", || async {
        world.pod_of(&aborted).await.is_none().then_some(())
    })
    .await;
    world.wait_status(&aborted, TaskStatus::Stopped).await;

    // Someone deletes a running pod by hand.
    world
        .pods_api()
        .delete(&agent::render::pod_name(&vanishing), &Default::default())
        .await
        .unwrap();
    let failed = world.wait_status(&vanishing, TaskStatus::Failed).await;
    assert!(
        failed
            .status_message
            .unwrap_or_default()
            .contains("was deleted")
    );
    agent.stop().await.unwrap();
}
