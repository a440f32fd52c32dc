//! Capacity, ordering, adoption, and `render` agreeing with `run`.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

use crate::harness::{World, eventually, task_container};

/// One queue limited to 5 pods; each pod runs one second in the simulator, then succeeds.
/// Pods active now, the most active at once, every pod ever seen.
type Tally = (HashSet<String>, usize, HashSet<String>);

const LIMITED: &str = r#"
agentk8sglue:
  createQueues: true
  basePodTemplate:
    annotations:
      sim.clearml-k8s-agent/run-seconds: "1"
  queues:
    limited:
      templateOverrides: {}
      queueSettings:
        maxPods: 5
"#;

#[tokio::test]
async fn max_pods_holds_with_50_queued_tasks_and_no_task_loses_its_place() {
    let Some(world) = World::new("maxpods").await else {
        return;
    };
    let queue_id = world.create_queue("limited").await;
    let mut enqueued = Vec::new();
    for i in 0..50 {
        enqueued.push(
            world
                .enqueue("limited", &format!("task {i}"), json!({}))
                .await,
        );
    }

    // Watch every pod of the namespace and record the highest number running at once.
    // (active now, most active at once, every pod ever seen)
    let active: Arc<Mutex<Tally>> = Arc::default();
    let seen = active.clone();
    let watch = tokio::spawn(
        watcher(world.pods_api(), watcher::Config::default())
            .applied_objects()
            .for_each(move |pod: Result<Pod, _>| {
                let seen = seen.clone();
                async move {
                    let Ok(pod) = pod else { return };
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    let phase = pod
                        .status
                        .as_ref()
                        .and_then(|s| s.phase.clone())
                        .unwrap_or_default();
                    let mut state = seen.lock().unwrap();
                    state.2.insert(name.clone());
                    if phase == "Succeeded" || phase == "Failed" {
                        state.0.remove(&name);
                    } else {
                        state.0.insert(name);
                    }
                    state.1 = state.1.max(state.0.len());
                }
            }),
    );

    let agent = world.start_agent(LIMITED).await;
    // While tasks wait, what is left in the queue is always the tail of the original order: nothing was popped and
    // put back at the end.
    let finished = eventually("all 50 tasks to get a pod", || async {
        let queue = world.clearml.queues_get_by_id(&queue_id).await.unwrap();
        let left: Vec<&str> = queue.entries.iter().map(|e| e.task.as_str()).collect();
        let tail: Vec<&str> = enqueued[enqueued.len() - left.len()..]
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(left, tail, "the queue's remaining entries lost their order");
        let pods = active.lock().unwrap().2.len();
        (left.is_empty() && pods == 50).then_some(pods)
    })
    .await;
    assert_eq!(finished, 50);
    let max_active = active.lock().unwrap().1;
    assert!(
        max_active <= 5,
        "maxPods 5 exceeded: {max_active} pods were active at once"
    );
    assert!(
        max_active >= 2,
        "the agent never ran pods in parallel ({max_active})"
    );
    watch.abort();
    agent.stop().await.unwrap();
}

const PLAIN: &str = r#"
agentk8sglue:
  createQueues: true
  queues:
    plain:
      templateOverrides: {}
"#;

#[tokio::test]
async fn a_pod_that_already_exists_is_adopted_not_duplicated() {
    let Some(world) = World::new("adopt").await else {
        return;
    };
    world.create_queue("plain").await;
    let task = world.enqueue("plain", "adopted", json!({})).await;
    // Render the pod the agent would create and create it first, as a crashed earlier run would have.
    let config = world.config(PLAIN);
    let prepared = agent::run::Prepared::new(config, None).unwrap();
    let queue_id = agent::startup::find_queue(&world.clearml, "plain")
        .await
        .unwrap()
        .unwrap();
    let mut rendered = render(&world, &prepared, "plain", &queue_id, &task).await;
    // A pod not started yet, as after a crash right after the create: kubelet-sim binds only default-scheduler
    // pods, so the in-pod agent cannot dequeue the task before the agent adopts the pod. (Were the pod running
    // first, its agent would take the task out of its queue, rightly: the task runs in that one pod and there is
    // nothing left to hand over. Which came first was a race, lost under a loaded CI run.)
    if let Some(spec) = rendered.spec.as_mut() {
        spec.scheduler_name = Some("not-scheduled-yet".into());
    }
    world
        .pods_api()
        .create(&Default::default(), &rendered)
        .await
        .unwrap();

    let agent = world.start_agent(PLAIN).await;
    let pending = eventually("the task to be handed to the pending queue", || async {
        let t = world.task(&task).await;
        let pending = agent::startup::find_queue(&world.clearml, "k8s_scheduler")
            .await
            .unwrap()?;
        (t.execution_queue() == Some(pending.as_str())).then_some(pending)
    })
    .await;
    assert!(!pending.is_empty());
    let pods = world.pods().await;
    assert_eq!(
        pods.len(),
        1,
        "{:?}",
        pods.iter()
            .map(|p| p.metadata.name.clone())
            .collect::<Vec<_>>()
    );
    // Handed over: waiting in the pending queue, or already taken by the in-pod agent.
    let status = world.task(&task).await.status;
    assert!(
        matches!(
            status,
            Some(clearml_api::TaskStatus::Queued | clearml_api::TaskStatus::InProgress)
        ),
        "{status:?}"
    );
    agent.stop().await.unwrap();
}

async fn render(
    world: &World,
    prepared: &agent::run::Prepared,
    queue: &str,
    queue_id: &str,
    task_id: &str,
) -> Pod {
    let queue_config = prepared
        .config
        .queues
        .iter()
        .find(|q| q.name == queue)
        .unwrap()
        .clone();
    let resolved = agent::startup::ResolvedQueue {
        config: queue_config,
        id: queue_id.to_string(),
    };
    let task = world.task(task_id).await;
    let identity = agent::render::Identity {
        instance: "agent".into(),
        namespace: world.namespace.clone(),
        credentials_secret: "agent-credentials".into(),
    };
    let context = agent::submit::RenderContext {
        config: &prepared.config,
        identity: &identity,
        policies: &prepared.policies,
        engine: &prepared.engine,
    };
    agent::submit::render_task(
        context,
        &resolved,
        agent::submit::task_context(&task, &resolved, None),
    )
    .await
    .unwrap()
    .pod
}

#[tokio::test]
async fn render_shows_what_run_submits() {
    let Some(world) = World::new("render").await else {
        return;
    };
    let values = crate::page_examples::RED_BLUE_GREEN;
    let agent = world.start_agent(values).await;
    let queue_id = eventually("the queues", || async {
        agent::startup::find_queue(&world.clearml, "green")
            .await
            .unwrap()
    })
    .await;
    let task = world
        .enqueue(
            "green",
            "rendered",
            json!({"container": {"image": "python:3.12"}}),
        )
        .await;
    let submitted = world.wait_pod(&task).await;
    let prepared = agent::run::Prepared::new(world.config(values), None).unwrap();
    let rendered = render(&world, &prepared, "green", &queue_id, &task).await;
    assert_eq!(submitted.metadata.labels, rendered.metadata.labels);
    assert_eq!(
        submitted.metadata.annotations,
        rendered.metadata.annotations
    );
    let (a, b) = (task_container(&submitted), task_container(&rendered));
    assert_eq!(a.image, b.image);
    assert_eq!(a.image.as_deref(), Some("python:3.12"));
    assert_eq!(a.command, b.command);
    assert_eq!(a.env, b.env);
    // The API server defaults requests to the limits; what the agent sent is the limits.
    let limits = |c: &k8s_openapi::api::core::v1::Container| {
        c.resources.as_ref().and_then(|r| r.limits.clone())
    };
    assert_eq!(limits(a), limits(b));
    let labels: BTreeMap<String, String> = submitted.metadata.labels.unwrap();
    assert_eq!(labels["team"], "green");
    agent.stop().await.unwrap();
}
