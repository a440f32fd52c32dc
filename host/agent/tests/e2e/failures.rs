//! A policy that rejects or traps fails only its own task, with a message naming the queue and the policy, while
//! other queues keep flowing.

use clearml_api::TaskStatus;
use serde_json::json;

use crate::harness::World;

fn values() -> String {
    let hostile = cache_paths::test_policy("test-hostile");
    assert!(
        hostile.is_file(),
        "{} is missing: run `just wasm`",
        hostile.display()
    );
    format!(
        r#"
agentk8sglue:
  createQueues: true
  plugins:
    hostile:
      file: {hostile}
  queues:
    sized:
      templateOverrides: {{}}
      policies:
        - plugin: gpu-sizing
          config:
            maxGpus: 2
    trapping:
      templateOverrides: {{}}
      policies:
        - plugin: hostile
          config:
            mode: panic
    looping:
      templateOverrides: {{}}
      policies:
        - plugin: hostile
          config:
            mode: loop
    hoarding:
      templateOverrides: {{}}
      policies:
        - plugin: hostile
          config:
            mode: alloc
    fine:
      templateOverrides: {{}}
"#,
        hostile = hostile.display()
    )
}

#[tokio::test]
async fn rejections_and_traps_fail_only_their_tasks_with_clear_messages() {
    let Some(world) = World::new("failures").await else {
        return;
    };
    let values = values();
    let agent = world.start_agent(&values).await;
    crate::harness::eventually("the queues", || async {
        agent::startup::find_queue(&world.clearml, "fine")
            .await
            .unwrap()
    })
    .await;
    let too_big = world
        .enqueue(
            "sized",
            "too many gpus",
            json!({"hyperparams": {"k8s": {"gpus": {"section": "k8s", "name": "gpus", "value": "8"}}}}),
        )
        .await;
    let trapped = world.enqueue("trapping", "trapped", json!({})).await;
    let fine = world.enqueue("fine", "fine", json!({})).await;

    let rejected = world.wait_status(&too_big, TaskStatus::Failed).await;
    let message = rejected.status_message.unwrap_or_default();
    assert!(
        message.contains("gpu-sizing") && message.contains("sized"),
        "{message}"
    );
    assert!(message.contains("rejected"), "{message}");
    let trapped = world.wait_status(&trapped, TaskStatus::Failed).await;
    let message = trapped.status_message.unwrap_or_default();
    assert!(
        message.contains("hostile") && message.contains("trapping") && message.contains("trapped"),
        "{message}"
    );
    // An endless loop and a memory bomb are cut off by the deadline and the memory cap, naming the policy.
    let looped = world.enqueue("looping", "loops", json!({})).await;
    let hoarded = world.enqueue("hoarding", "hoards", json!({})).await;
    let message = world
        .wait_status(&looped, TaskStatus::Failed)
        .await
        .status_message
        .unwrap_or_default();
    assert!(
        message.contains("hostile") && message.contains("timed out"),
        "{message}"
    );
    let message = world
        .wait_status(&hoarded, TaskStatus::Failed)
        .await
        .status_message
        .unwrap_or_default();
    assert!(
        message.contains("hostile") && message.contains("memory"),
        "{message}"
    );
    // The other queue kept flowing, and the failed tasks have no pod.
    world.wait_pod(&fine).await;
    assert!(world.pod_of(&too_big).await.is_none());
    agent.stop().await.unwrap();
}
