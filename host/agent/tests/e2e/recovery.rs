//! Killing the agent between any two steps of a submission and starting it again loses no task and creates no
//! duplicate pod. The kill points are failpoints (deterministic), not timing.

use std::sync::Arc;

use agent::run::Failpoint;
use clearml_api::TaskStatus;
use serde_json::json;

use crate::harness::{AgentSpec, World, eventually};

const VALUES: &str = r#"
agentk8sglue:
  createQueues: true
  queues:
    work:
      templateOverrides:
        annotations: {sim.clearml-k8s-agent/outcome: hang}
"#;

async fn killed_at(point: Failpoint, test: &str) {
    killed_in(World::new(test).await, point).await;
}

async fn killed_in(world: Option<World>, point: Failpoint) {
    let Some(world) = world else {
        return;
    };
    world.create_queue("work").await;
    let task = world.enqueue("work", "survives a kill", json!({})).await;
    let reached = Arc::new(tokio::sync::Notify::new());
    let first = world
        .start_agent_at(
            world.config(VALUES),
            "agent",
            Some((point, reached.clone())),
        )
        .await;
    tokio::time::timeout(crate::harness::PATIENCE, reached.notified())
        .await
        .expect("the submission reaches the failpoint");
    first.kill();
    if point == Failpoint::AfterHandoverStop {
        // The stop ran (this server refuses to enqueue a queued task): recovery finds the task by its reason.
        assert_eq!(world.task(&task).await.status, Some(TaskStatus::Stopped));
    }

    let second = world.start_agent(VALUES).await;
    world.wait_status(&task, TaskStatus::InProgress).await;
    let pods = world.pods().await;
    assert_eq!(pods.len(), 1, "exactly one pod after {point:?}");
    assert_eq!(
        pods[0].metadata.name.as_deref(),
        Some(agent::render::pod_name(&task).as_str())
    );
    second.stop().await.unwrap();
}

#[tokio::test]
async fn a_kill_after_the_pop_loses_nothing() {
    killed_at(Failpoint::AfterPop, "kill-pop").await;
}

#[tokio::test]
async fn a_kill_between_the_handovers_stop_and_enqueue_loses_nothing() {
    killed_in(
        World::before_same_state_enqueue("killed-mid-handover").await,
        Failpoint::AfterHandoverStop,
    )
    .await;
}

#[tokio::test]
async fn a_kill_after_the_handoff_loses_nothing() {
    killed_at(Failpoint::AfterHandoff, "kill-handoff").await;
}

#[tokio::test]
async fn a_kill_after_the_create_duplicates_nothing() {
    killed_at(Failpoint::AfterCreate, "kill-create").await;
}

#[tokio::test]
async fn sigterm_with_submissions_in_flight_finishes_them_and_unregisters() {
    let Some(world) = World::new("sigterm").await else {
        return;
    };
    world.create_queue("work").await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        tasks.push(
            world
                .enqueue("work", &format!("in flight {i}"), json!({}))
                .await,
        );
    }
    let agent = world.start_agent(VALUES).await;
    eventually("a first pod", || async {
        (!world.pods().await.is_empty()).then_some(())
    })
    .await;
    agent.stop().await.unwrap();
    // Every task popped got its pod; none is left half-way (popped, but neither in a queue nor with a pod).
    for task in &tasks {
        let t = world.task(task).await;
        let has_pod = world.pod_of(task).await.is_some();
        let in_queue = t.status == Some(TaskStatus::Queued);
        assert!(has_pod || in_queue, "task {task} lost: {t:?}");
    }
    let workers: serde_json::Value = world
        .clearml
        .call("workers.get_all", &json!({}))
        .await
        .unwrap();
    assert!(
        !workers["workers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["id"] == "agent"),
        "the worker unregistered: {workers}"
    );
}

#[tokio::test]
async fn sigterm_with_a_submission_stuck_exits_after_the_grace_and_recovery_finishes_it() {
    let Some(world) = World::new("sigterm-stuck").await else {
        return;
    };
    world.create_queue("work").await;
    let task = world.enqueue("work", "stuck at shutdown", json!({})).await;
    let reached = Arc::new(tokio::sync::Notify::new());
    let agent = world
        .launch(
            world.config(VALUES),
            AgentSpec {
                failpoint: Some((Failpoint::AfterHandoff, reached.clone())),
                shutdown_grace: std::time::Duration::from_secs(2),
                ..AgentSpec::default()
            },
        )
        .await;
    tokio::time::timeout(crate::harness::PATIENCE, reached.notified())
        .await
        .expect("the submission reaches the failpoint");
    // The submission never finishes: the agent still stops (within the grace) and cleanly.
    agent.stop().await.unwrap();
    let second = world.start_agent(VALUES).await;
    world.wait_status(&task, TaskStatus::InProgress).await;
    assert_eq!(world.pods().await.len(), 1);
    second.stop().await.unwrap();
}
