//! Two replicas of one agent: the Lease holder dispatches, the standby does nothing until the leader dies, then
//! takes over within 15 s, adopts the pods and keeps `maxPods`.

use std::time::Duration;

use agent::leader::LeaseSettings;
use clearml_api::{StatusChange, TaskStatus};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use serde_json::json;

use crate::harness::{AgentSpec, World, eventually};

const VALUES: &str = r#"
agentk8sglue:
  createQueues: true
  queuePollFrequencySeconds: 1
  maxPods: 2
  queues:
    work:
      templateOverrides:
        annotations: {sim.clearml-k8s-agent/outcome: hang}
"#;

const LEASE: &str = "agent-leader";

fn replica(holder: &str) -> AgentSpec {
    AgentSpec {
        leader_election: Some(LeaseSettings::new(LEASE, holder)),
        ..AgentSpec::default()
    }
}

async fn holder(world: &World) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(world.kube.clone(), &world.namespace);
    leases
        .get_opt(LEASE)
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
}

async fn active_pods(world: &World) -> usize {
    world
        .pods()
        .await
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .count()
}

#[tokio::test]
async fn the_standby_takes_over_within_15_s_of_the_leaders_death() {
    let Some(world) = World::new("leader-failover").await else {
        return;
    };
    let first = world
        .launch(world.config(VALUES), replica("replica-a"))
        .await;
    eventually("replica-a holds the lease", || async {
        (holder(&world).await.as_deref() == Some("replica-a")).then_some(())
    })
    .await;
    let second = world
        .launch(world.config(VALUES), replica("replica-b"))
        .await;
    second.wait_readyz(200, "standby").await;
    first.wait_readyz(200, "ready").await;

    let mut tasks = Vec::new();
    for i in 0..3 {
        tasks.push(world.enqueue("work", &format!("task {i}"), json!({})).await);
    }
    eventually("two pods (maxPods)", || async {
        (active_pods(&world).await == 2).then_some(())
    })
    .await;

    // The leader dies without a word: no release, no unregister.
    first.kill();
    let died = tokio::time::Instant::now();
    eventually("replica-b holds the lease", || async {
        (holder(&world).await.as_deref() == Some("replica-b")).then_some(())
    })
    .await;
    let takeover = died.elapsed();
    assert!(
        takeover <= Duration::from_secs(15),
        "the standby took over after {takeover:?}"
    );
    second.wait_readyz(200, "ready\n").await;
    // It adopted the two pods: maxPods still holds, the third task still waits.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(active_pods(&world).await, 2);

    // Free a slot (abort a running task in ClearML): the new leader deletes its pod and starts the third task.
    let running: Vec<&String> = {
        let mut running = Vec::new();
        for task in &tasks {
            if world.pod_of(task).await.is_some() {
                running.push(task);
            }
        }
        running
    };
    let waiting = tasks
        .iter()
        .find(|t| !running.contains(t))
        .expect("one task waits");
    world
        .clearml
        .tasks_stop(&StatusChange::new(running[0].as_str()).force())
        .await
        .unwrap();
    world.wait_pod(waiting).await;
    world.wait_status(waiting, TaskStatus::InProgress).await;
    assert!(active_pods(&world).await <= 2);

    // A clean stop gives the lease up.
    second.stop().await.unwrap();
    eventually("the lease is free", || async {
        holder(&world).await.is_none().then_some(())
    })
    .await;
}
