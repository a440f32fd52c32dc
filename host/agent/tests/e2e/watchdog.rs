//! The no-update watchdog (`taskWatchdog`): a task whose in-pod agent goes silent while its pod keeps running is
//! told so, or failed with `failTask`, and a task that keeps reporting is left alone. The simulator's in-pod agent
//! goes silent on the pods of the `silent` queue (annotation `silent-after-seconds: "0"`: no status report after
//! the first). The limit is 0.1 min (6 s; the key takes fractional minutes like every other duration key), so a
//! test takes seconds while the rule is the one a deployment runs.

use clearml_api::TaskStatus;
use serde_json::json;

use crate::harness::{World, eventually};

/// `taskWatchdog` as given, a queue whose in-pod agent goes silent and one whose agent reports every 2 s.
fn values(watchdog: &str) -> String {
    format!(
        r#"
agentk8sglue:
  createQueues: true
  taskWatchdog: {watchdog}
  queues:
    silent:
      templateOverrides:
        annotations: {{sim.clearml-k8s-agent/silent-after-seconds: "0"}}
    chatty: {{}}
"#
    )
}

const WATCHDOG_MARK: &str = "(agent watchdog, limit 0.1 min)";

async fn started(world: &World, watchdog: &str) -> crate::harness::RunningAgent {
    let agent = world.start_agent(&values(watchdog)).await;
    eventually("the queues", || async {
        agent::startup::find_queue(&world.clearml, "chatty")
            .await
            .unwrap()
    })
    .await;
    agent
}

#[tokio::test]
async fn a_silent_task_whose_pod_runs_on_is_told_so_and_a_reporting_one_is_not() {
    let Some(world) = World::new("watchdog").await else {
        return;
    };
    let agent = started(&world, "{noUpdateMinutes: 0.1}").await;
    let silent = world.enqueue("silent", "goes silent", json!({})).await;
    let chatty = world.enqueue("chatty", "keeps reporting", json!({})).await;
    world.wait_status(&silent, TaskStatus::InProgress).await;
    world.wait_status(&chatty, TaskStatus::InProgress).await;

    let message = eventually("the watchdog's message on the silent task", || async {
        world
            .task(&silent)
            .await
            .status_message
            .filter(|m| m.contains(WATCHDOG_MARK))
    })
    .await;
    let pod = agent::render::pod_name(&silent);
    assert!(
        message.starts_with("no update from the task for ")
            && message.contains(&format!("while pod {pod} runs")),
        "{message}"
    );
    // Only reported: the task runs on, and so does its pod.
    let task = world.task(&silent).await;
    assert_eq!(task.status, Some(TaskStatus::InProgress), "{task:?}");
    let phase = world.pod_of(&silent).await.and_then(|p| p.status?.phase);
    assert_eq!(phase.as_deref(), Some("Running"));

    // The reporting task has run past the limit by now (it started with the silent one) and is left alone.
    tokio::time::sleep(agent::follow::ROUND * 2).await;
    let task = world.task(&chatty).await;
    assert_eq!(task.status, Some(TaskStatus::InProgress), "{task:?}");
    assert!(
        !task
            .status_message
            .unwrap_or_default()
            .contains("agent watchdog"),
        "the reporting task was flagged"
    );
    agent.stop().await.unwrap();
}

#[tokio::test]
async fn with_fail_task_a_silent_task_is_failed_and_its_pod_deleted() {
    let Some(world) = World::new("watchdog-fail").await else {
        return;
    };
    let agent = started(&world, "{noUpdateMinutes: 0.1, failTask: true}").await;
    let silent = world.enqueue("silent", "goes silent", json!({})).await;
    world.wait_status(&silent, TaskStatus::InProgress).await;

    let failed = world.wait_status(&silent, TaskStatus::Failed).await;
    assert_eq!(
        failed.status_reason.as_deref(),
        Some("NoUpdate"),
        "{failed:?}"
    );
    let message = failed.status_message.unwrap_or_default();
    assert!(
        message.starts_with("no update from the task for ") && message.contains(WATCHDOG_MARK),
        "{message}"
    );
    eventually("the silent task's pod to be deleted", || async {
        world.pod_of(&silent).await.is_none().then_some(())
    })
    .await;
    agent.stop().await.unwrap();
}
