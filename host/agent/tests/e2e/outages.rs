//! Outages: ClearML restarted on its state file, a token that stops being valid, the Kubernetes API cut off, and
//! the apiserver answering 409/422/429/5xx. The agent retries, `/readyz` tells the truth, it never pops while it
//! cannot submit, and no task is lost or doubled.

use std::time::Duration;

use clearml_api::TaskStatus;
use http::Method;
use kube_testenv::fault_proxy::{Fault, FaultProxy};
use serde_json::json;

use crate::harness::{AgentSpec, RunningAgent, World};

const VALUES: &str = r#"
agentk8sglue:
  createQueues: true
  queuePollFrequencySeconds: 1
  queues:
    work:
      templateOverrides:
        annotations: {sim.clearml-k8s-agent/outcome: hang}
"#;

/// Every task has exactly one pod, named after it.
async fn one_pod_each(world: &World, tasks: &[String]) {
    let pods = world.pods().await;
    for task in tasks {
        let name = agent::render::pod_name(task);
        let count = pods
            .iter()
            .filter(|p| p.metadata.name.as_deref() == Some(name.as_str()))
            .count();
        assert_eq!(count, 1, "task {task}: one pod");
    }
    assert_eq!(pods.len(), tasks.len(), "no other pods");
}

/// The ids of the tasks waiting in queue `name`.
async fn waiting_in(world: &World, name: &str) -> Vec<String> {
    let id = agent::startup::find_queue(&world.clearml, name)
        .await
        .unwrap()
        .unwrap();
    let queue = world.clearml.queues_get_by_id(&id).await.unwrap();
    queue.entries.into_iter().map(|e| e.task).collect()
}

#[tokio::test]
async fn a_clearml_restart_mid_run_loses_nothing() {
    let Some(mut world) = World::persistent("clearml-restart").await else {
        return;
    };
    let agent = world.start_agent(VALUES).await;
    agent.wait_readyz(200, "ready").await;
    let mut tasks = Vec::new();
    for i in 0..3 {
        tasks.push(
            world
                .enqueue("work", &format!("before {i}"), json!({}))
                .await,
        );
    }
    for task in &tasks {
        world.wait_pod(task).await;
        // Running before the restart: an in-pod agent that cannot log in exits 1, as the real one would.
        world.wait_status(task, TaskStatus::InProgress).await;
    }

    world
        .restart_emulator(async {
            // While ClearML is down the agent says so and keeps serving /healthz.
            let body = agent.wait_readyz(503, "clearml unreachable").await;
            assert!(body.contains("not ready"), "{body}");
            assert_eq!(agent.get("/healthz").await.map(|r| r.0), Some(200));
        })
        .await;

    agent.wait_readyz(200, "ready").await;
    for i in 0..3 {
        tasks.push(
            world
                .enqueue("work", &format!("after {i}"), json!({}))
                .await,
        );
    }
    for task in &tasks {
        world.wait_pod(task).await;
        world.wait_status(task, TaskStatus::InProgress).await;
    }
    one_pod_each(&world, &tasks).await;
    agent.stop().await.unwrap();
}

#[tokio::test]
async fn a_token_that_stops_being_valid_is_replaced_mid_run() {
    let Some(world) = World::new("token-expiry").await else {
        return;
    };
    let agent = world.start_agent(VALUES).await;
    let first = world.enqueue("work", "before", json!({})).await;
    world.wait_pod(&first).await;
    let logins = world.emulator.call_count("auth.login");
    // Every token issued so far is now rejected (401), as after expiry or a server-side revocation.
    world.emulator.revoke_tokens();
    let second = world.enqueue("work", "after", json!({})).await;
    world.wait_pod(&second).await;
    assert!(
        world.emulator.call_count("auth.login") > logins,
        "the agent logged in again"
    );
    one_pod_each(&world, &[first, second]).await;
    agent.stop().await.unwrap();
}

/// A ready agent whose Kubernetes API goes through a fault proxy in front of the real apiserver.
async fn behind_a_fault_proxy(world: &World) -> (FaultProxy, RunningAgent) {
    let proxy = FaultProxy::start(world.env).await.unwrap();
    let agent = world
        .launch(
            world.config(VALUES),
            AgentSpec {
                kube: Some(proxy.admin_client().await.unwrap()),
                ..AgentSpec::default()
            },
        )
        .await;
    agent.wait_readyz(200, "ready").await;
    (proxy, agent)
}

#[tokio::test]
async fn a_kubernetes_outage_stops_the_pops_until_the_api_is_back() {
    let Some(world) = World::new("kube-outage").await else {
        return;
    };
    let (proxy, agent) = behind_a_fault_proxy(&world).await;
    let first = world.enqueue("work", "before", json!({})).await;
    world.wait_pod(&first).await;

    proxy.cut().await;
    let body = agent.wait_readyz(503, "kubernetes unreachable").await;
    assert!(body.contains("not ready"), "{body}");
    let pops = world.emulator.call_count("queues.get_next_task");
    let held = vec![
        world.enqueue("work", "during 1", json!({})).await,
        world.enqueue("work", "during 2", json!({})).await,
    ];
    // Several poll rounds: the tasks stay in their queue, untouched.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        world.emulator.call_count("queues.get_next_task"),
        pops,
        "no pops while Kubernetes is unreachable"
    );
    let mut waiting = waiting_in(&world, "work").await;
    waiting.sort();
    let mut expected = held.clone();
    expected.sort();
    assert_eq!(waiting, expected);
    assert_eq!(agent.get("/healthz").await.map(|r| r.0), Some(200));

    proxy.restore();
    agent.wait_readyz(200, "ready").await;
    let mut all = vec![first];
    all.extend(held);
    for task in &all {
        world.wait_pod(task).await;
    }
    one_pod_each(&world, &all).await;
    agent.stop().await.unwrap();
}

#[tokio::test]
async fn apiserver_errors_on_create_are_retried_or_reach_the_task() {
    let Some(world) = World::new("kube-errors").await else {
        return;
    };
    let (proxy, agent) = behind_a_fault_proxy(&world).await;
    let creates = |status, times| Fault {
        method: Some(Method::POST),
        path_contains: format!("/namespaces/{}/pods", world.namespace),
        status,
        times,
    };
    // Throttled twice, a server error, then a 409 with no pod behind it: each is retried; one pod in the end.
    proxy.inject(creates(429, 2));
    proxy.inject(creates(500, 1));
    proxy.inject(creates(409, 1));
    let retried = world.enqueue("work", "retried", json!({})).await;
    world.wait_pod(&retried).await;
    world.wait_status(&retried, TaskStatus::InProgress).await;
    assert!(proxy.seen(Some(Method::POST), "/pods") >= 5);

    // 422: the apiserver refuses the pod; the task hears why and fails, nothing is retried forever.
    proxy.inject(creates(422, 1));
    let refused = world.enqueue("work", "refused", json!({})).await;
    let task = world.wait_status(&refused, TaskStatus::Failed).await;
    let message = task.status_message.unwrap_or_default();
    assert!(message.contains("refused"), "{message}");
    assert!(world.pod_of(&refused).await.is_none());

    one_pod_each(&world, std::slice::from_ref(&retried)).await;
    let metrics = agent.get("/metrics").await.unwrap().1;
    assert!(
        metrics.contains("clearml_agent_kube_api_errors_total"),
        "{metrics}"
    );
    agent.stop().await.unwrap();
}
