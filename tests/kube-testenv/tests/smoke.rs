//! Smoke suite against the real kube-apiserver + etcd: the API behaves like a cluster (validation, watches, RBAC),
//! and the kubelet simulator drives pods through binding, running and terminal states.
//!
//! Every wait is a watch (`await_condition` or a watcher stream) bounded by a timeout; no sleeps.

// Fixture helpers may unwrap too: a panic is the test failure we want (clippy only exempts #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::BTreeMap, time::Duration};

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::{
    authentication::v1::TokenRequest,
    core::v1::{ConfigMap, Pod, Secret, ServiceAccount},
    rbac::v1::{Role, RoleBinding},
};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
    runtime::{
        WatchStreamExt as _,
        wait::{Condition, await_condition, conditions},
        watcher,
    },
};
use kubelet_sim::{EXIT_CODE_ANNOTATION, NodeSpec, OUTCOME_ANNOTATION, SimConfig, Simulator};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

/// Test logs (RUST_LOG, else `kubelet_sim=debug,kube_testenv=debug`).
fn logs() {
    kube_testenv::test_logs("kubelet_sim=debug,kube_testenv=debug");
}

fn pod(name: &str, annotations: &[(&str, &str)], limits: &[(&str, &str)]) -> Pod {
    let annotations: BTreeMap<&str, &str> = annotations.iter().copied().collect();
    let limits: BTreeMap<&str, &str> = limits.iter().copied().collect();
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "smoke"}, "annotations": annotations},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox:1.36", "resources": {"limits": limits}}],
        },
    }))
    .expect("a valid Pod")
}

/// Wait for `cond` on the named object, failing the test with `what` after [`WAIT`].
async fn wait_for<K>(api: &Api<K>, name: &str, what: &str, cond: impl Condition<K>) -> K
where
    K: Clone + std::fmt::Debug + Send + serde::de::DeserializeOwned + kube::Resource + 'static,
{
    match tokio::time::timeout(WAIT, await_condition(api.clone(), name, cond)).await {
        Ok(Ok(Some(obj))) => obj,
        Ok(Ok(None)) => panic!("{name}: gone while waiting for {what}"),
        Ok(Err(e)) => panic!("{name}: watch failed while waiting for {what}: {e}"),
        Err(_) => panic!("{name}: no {what} within {WAIT:?}"),
    }
}

/// Poll a watcher until its initial list is complete, so later changes arrive as events.
async fn wait_init_done<K>(
    events: &mut (impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Unpin),
) {
    tokio::time::timeout(WAIT, async {
        while let Some(event) = events.try_next().await.expect("watch error") {
            if matches!(event, watcher::Event::InitDone) {
                return;
            }
        }
        panic!("watch ended before its initial list");
    })
    .await
    .expect("the watch listed in time");
}

/// Wait until the pod with `uid` is gone.
async fn wait_deleted(api: &Api<Pod>, name: &str, uid: &str) {
    match tokio::time::timeout(
        WAIT,
        await_condition(api.clone(), name, conditions::is_deleted(uid)),
    )
    .await
    {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!("{name}: watch failed while waiting for deletion: {e}"),
        Err(_) => panic!("{name}: not deleted within {WAIT:?}"),
    }
}

fn phase_is(phase: &'static str) -> impl Condition<Pod> {
    move |p: Option<&Pod>| p.and_then(|p| p.status.as_ref()?.phase.as_deref()) == Some(phase)
}

/// A simulator for this test's namespace with its own nodes: 8 cpu / 32Gi and a 2-GPU node. Images under
/// `registry.invalid/` never pull.
async fn simulator(client: &Client, ns: &str) -> kubelet_sim::SimHandle {
    let config = SimConfig {
        nodes: vec![
            NodeSpec::new(&format!("{ns}-cpu"), "8", "32Gi", 0).expect("node spec"),
            NodeSpec::new(&format!("{ns}-gpu"), "16", "64Gi", 2).expect("node spec"),
        ],
        image_pull_error: Some(regex::Regex::new(r"^registry\.invalid/").expect("a valid regex")),
        ..SimConfig::default()
    };
    Simulator::new(client.clone(), config, Some(ns.to_owned()))
        .spawn()
        .await
        .expect("simulator nodes registered")
}

/// A test's namespace with the kubelet simulator running on its own nodes ([`simulator`]): the set-up every
/// simulator test shares.
struct SimWorld {
    ctx: kube_testenv::TestContext,
    pods: Api<Pod>,
    _sim: kubelet_sim::SimHandle,
}

impl SimWorld {
    /// `None` when the test is skipped (no control plane outside CI).
    async fn start(test: &str) -> Option<Self> {
        logs();
        let ctx = kube_testenv::test_context(test).await?;
        let sim = simulator(&ctx.client, &ctx.namespace).await;
        let pods = Api::namespaced(ctx.client.clone(), &ctx.namespace);
        Some(Self {
            ctx,
            pods,
            _sim: sim,
        })
    }

    async fn create(&self, pod: Pod) {
        self.pods
            .create(&PostParams::default(), &pod)
            .await
            .unwrap();
    }

    /// Change a running pod's outcome through the API, as a test steers the simulator.
    async fn steer(&self, name: &str, outcome: &str) {
        let patch = json!({"metadata": {"annotations": {OUTCOME_ANNOTATION: outcome}}});
        self.pods
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap();
    }

    /// The name of this test's `cpu` or `gpu` node.
    fn node(&self, kind: &str) -> String {
        format!("{}-{kind}", self.ctx.namespace)
    }
}

/// The scheduler said no: `PodScheduled=False`.
fn unschedulable() -> impl Condition<Pod> {
    |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref()?.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "PodScheduled" && c.status == "False")
            })
    }
}

#[tokio::test]
async fn pod_create_get_watch_delete() {
    logs();
    let Some(ctx) = kube_testenv::test_context("pod-crud").await else {
        return;
    };
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);

    // Watch from before the create, so the Added and Deleted events are both seen. A watcher starts lazily, so
    // drive it through its initial (empty) list first.
    let mut events = watcher(pods.clone(), watcher::Config::default().labels("app=smoke")).boxed();
    wait_init_done(&mut events).await;
    let created = pods
        .create(&PostParams::default(), &pod("crud", &[], &[]))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.resource_version.is_some());

    let got = pods.get("crud").await.unwrap();
    assert_eq!(got.metadata.uid, created.metadata.uid);
    // Defaulting by the real apiserver: no scheduler has touched it, so it is Pending and unbound.
    assert_eq!(
        got.spec.as_ref().unwrap().scheduler_name.as_deref(),
        Some("default-scheduler")
    );
    assert_eq!(
        got.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Pending")
    );
    assert_eq!(
        pods.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );

    // Unbound pods are deleted at once by the apiserver.
    pods.delete("crud", &DeleteParams::default()).await.unwrap();
    let (mut seen_apply, mut seen_delete) = (false, false);
    tokio::time::timeout(WAIT, async {
        while let Some(event) = events.try_next().await.unwrap() {
            match event {
                watcher::Event::Apply(p) | watcher::Event::InitApply(p)
                    if p.metadata.name.as_deref() == Some("crud") =>
                {
                    seen_apply = true;
                }
                watcher::Event::Delete(p) if p.metadata.name.as_deref() == Some("crud") => {
                    seen_delete = true;
                    break;
                }
                _ => {}
            }
        }
    })
    .await
    .expect("watch saw the pod deleted in time");
    assert!(seen_apply && seen_delete);
    assert!(pods.get_opt("crud").await.unwrap().is_none());
}

#[tokio::test]
async fn invalid_pod_is_rejected_with_422() {
    logs();
    let Some(ctx) = kube_testenv::test_context("invalid-pod").await else {
        return;
    };
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let mut bad = pod("bad-label", &[], &[]);
    bad.metadata.labels = Some([("app".to_owned(), "not a valid label value!".to_owned())].into());
    match pods.create(&PostParams::default(), &bad).await {
        Err(kube::Error::Api(e)) => {
            assert_eq!(e.code, 422, "{e:?}");
            assert_eq!(e.reason, "Invalid");
            assert!(e.message.contains("metadata.labels"), "{}", e.message);
        }
        other => panic!("expected 422 Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn configmap_watch_sees_update() {
    logs();
    let Some(ctx) = kube_testenv::test_context("configmap-watch").await else {
        return;
    };
    let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "policies"},
        "data": {"version": "1"},
    }))
    .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();

    let mut stream = watcher(
        cms.clone(),
        watcher::Config::default().fields("metadata.name=policies"),
    )
    .applied_objects()
    .boxed();
    // The initial list shows version 1; the patch must arrive as a watch event with version 2.
    let first = tokio::time::timeout(WAIT, stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.data.unwrap()["version"], "1");
    cms.patch(
        "policies",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"version": "2"}})),
    )
    .await
    .unwrap();
    let updated = tokio::time::timeout(WAIT, async {
        loop {
            let cm = stream.try_next().await.unwrap().unwrap();
            if cm.data.as_ref().is_some_and(|d| d["version"] == "2") {
                return cm;
            }
        }
    })
    .await
    .expect("the watch delivered the update");
    assert_ne!(
        updated.metadata.resource_version,
        first.metadata.resource_version
    );
}

#[tokio::test]
async fn rbac_service_account_token_is_scoped_by_role() {
    logs();
    let Some(ctx) = kube_testenv::test_context("rbac").await else {
        return;
    };
    let ns = ctx.namespace.as_str();
    let sas: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), ns);
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "agent"}})).unwrap();
    sas.create(&PostParams::default(), &sa).await.unwrap();
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "pods"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get", "list", "watch", "delete"]}],
    }))
    .unwrap();
    Api::<Role>::namespaced(ctx.client.clone(), ns)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "agent-pods"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pods"},
        "subjects": [{"kind": "ServiceAccount", "name": "agent", "namespace": ns}],
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(ctx.client.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();

    // A bound token from the TokenRequest API (serviceaccounts/agent/token), signed by the apiserver's SA key.
    let request: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 3600}}))
            .unwrap();
    let issued: TokenRequest = sas
        .create_subresource("token", "agent", &PostParams::default(), &request)
        .await
        .unwrap();
    let token = issued
        .status
        .and_then(|s| s.token)
        .expect("the TokenRequest returned a token");
    let sa_client = ctx.env.client_with_token(&token).await.unwrap();

    let pods: Api<Pod> = Api::namespaced(sa_client.clone(), ns);
    pods.create(&PostParams::default(), &pod("by-sa", &[], &[]))
        .await
        .expect("the Role grants pods/create");
    let secrets: Api<Secret> = Api::namespaced(sa_client.clone(), ns);
    match secrets.list(&ListParams::default()).await {
        Err(kube::Error::Api(e)) => {
            assert_eq!(e.code, 403, "{e:?}");
            assert!(
                e.message
                    .contains(&format!("system:serviceaccount:{ns}:agent")),
                "{}",
                e.message
            );
        }
        other => panic!("secrets must be forbidden, got {other:?}"),
    }
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}}))
            .unwrap();
    assert!(
        matches!(secrets.create(&PostParams::default(), &secret).await, Err(kube::Error::Api(e)) if e.code == 403)
    );
    // Nor outside its namespace.
    let other: Api<Pod> = Api::namespaced(sa_client, "default");
    assert!(
        matches!(other.list(&ListParams::default()).await, Err(kube::Error::Api(e)) if e.code == 403)
    );
}

#[tokio::test]
async fn simulator_runs_pod_to_success() {
    let Some(world) = SimWorld::start("sim-success").await else {
        return;
    };
    let pods = &world.pods;

    // Record every phase the watch reports, from before the pod exists.
    let mut events = watcher(
        pods.clone(),
        watcher::Config::default().fields("metadata.name=ok"),
    )
    .boxed();
    wait_init_done(&mut events).await;
    // The recorder keeps the Running copy: with a short run time, a separate wait could start after it passed.
    let recorder = tokio::spawn(async move {
        let (mut seen, mut running) = (Vec::new(), None);
        let mut stream = events.applied_objects();
        while let Ok(Some(p)) = stream.try_next().await {
            let phase = p
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default();
            if seen.last() != Some(&phase) {
                seen.push(phase.clone());
            }
            if phase == "Running" {
                running = Some(p);
            } else if phase == "Succeeded" {
                break;
            }
        }
        (seen, running)
    });
    world
        .create(pod(
            "ok",
            &[("sim.clearml-k8s-agent/run-seconds", "1")],
            &[],
        ))
        .await;
    let done = wait_for(pods, "ok", "Succeeded", phase_is("Succeeded")).await;
    let cs = &done.status.unwrap().container_statuses.unwrap()[0];
    let term = cs.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(
        (term.exit_code, term.reason.as_deref()),
        (0, Some("Completed"))
    );

    let (phases, running) = tokio::time::timeout(WAIT, recorder).await.unwrap().unwrap();
    assert_eq!(phases, ["Pending", "Running", "Succeeded"]);
    let running = running.expect("a Running copy was seen");
    assert_eq!(
        running.spec.unwrap().node_name.unwrap(),
        world.node("cpu"),
        "a pod without GPUs fits the first node"
    );
    let status = running.status.unwrap();
    assert!(status.pod_ip.is_some() && status.start_time.is_some());
    let started = status.container_statuses.unwrap()[0].state.clone().unwrap();
    assert!(started.running.is_some_and(|r| r.started_at.is_some()));
}

#[tokio::test]
async fn simulator_reports_unschedulable_for_too_many_gpus() {
    let Some(world) = SimWorld::start("sim-unschedulable").await else {
        return;
    };
    let pods = &world.pods;
    world
        .create(pod("greedy", &[], &[("nvidia.com/gpu", "4")]))
        .await;
    let p = wait_for(pods, "greedy", "PodScheduled=False", unschedulable()).await;
    let status = p.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    let cond = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .unwrap();
    assert_eq!(cond.reason.as_deref(), Some("Unschedulable"));
    assert_eq!(
        cond.message.as_deref(),
        Some("0/2 nodes are available: 2 Insufficient nvidia.com/gpu.")
    );
    assert!(p.spec.unwrap().node_name.is_none());

    // Two GPUs fit the GPU node.
    world
        .create(pod("fits", &[], &[("nvidia.com/gpu", "2")]))
        .await;
    // Run time 0: it may be past Running when the wait starts, so wait for the end state (it was bound to run).
    let done = wait_for(pods, "fits", "Succeeded", phase_is("Succeeded")).await;
    assert_eq!(done.spec.unwrap().node_name.unwrap(), world.node("gpu"));
}

#[tokio::test]
async fn simulator_oomkills_and_fails_when_asked() {
    let Some(world) = SimWorld::start("sim-failures").await else {
        return;
    };
    let pods = &world.pods;
    world
        .create(pod("oom", &[(OUTCOME_ANNOTATION, "oom")], &[]))
        .await;
    world
        .create(pod(
            "exit3",
            &[(OUTCOME_ANNOTATION, "fail"), (EXIT_CODE_ANNOTATION, "3")],
            &[],
        ))
        .await;

    let terminated = |p: Pod| {
        p.status.unwrap().container_statuses.unwrap()[0]
            .state
            .clone()
            .unwrap()
            .terminated
            .unwrap()
    };
    let oom = terminated(wait_for(pods, "oom", "Failed", phase_is("Failed")).await);
    assert_eq!(
        (oom.exit_code, oom.reason.as_deref()),
        (137, Some("OOMKilled"))
    );
    let exit3 = terminated(wait_for(pods, "exit3", "Failed", phase_is("Failed")).await);
    assert_eq!(
        (exit3.exit_code, exit3.reason.as_deref()),
        (3, Some("Error"))
    );
}

#[tokio::test]
async fn simulator_image_pull_backoff_hang_and_forced_delete() {
    let Some(world) = SimWorld::start("sim-lifecycle").await else {
        return;
    };
    let pods = &world.pods;

    // By image pattern (configured), and by annotation.
    let mut missing = pod("nopull", &[], &[]);
    missing.spec.as_mut().unwrap().containers[0].image = Some("registry.invalid/missing:1".into());
    world.create(missing).await;
    world
        .create(pod(
            "nopull2",
            &[(OUTCOME_ANNOTATION, "image-pull-backoff")],
            &[],
        ))
        .await;
    let backoff = |p: Option<&Pod>| {
        p.and_then(|p| {
            p.status
                .as_ref()?
                .container_statuses
                .as_ref()?
                .first()?
                .state
                .as_ref()?
                .waiting
                .clone()
        })
        .is_some_and(|w| w.reason.as_deref() == Some("ImagePullBackOff"))
    };
    for name in ["nopull", "nopull2"] {
        let p = wait_for(pods, name, "ImagePullBackOff", backoff).await;
        assert_eq!(p.status.unwrap().phase.as_deref(), Some("Pending"));
    }

    // A hanging pod keeps running until the test changes its outcome through the API.
    world
        .create(pod("hang", &[(OUTCOME_ANNOTATION, "hang")], &[]))
        .await;
    wait_for(pods, "hang", "Running", conditions::is_pod_running()).await;
    world.steer("hang", "fail").await;
    wait_for(pods, "hang", "Failed", phase_is("Failed")).await;

    // A bound, running pod deleted with the default grace period is finished off by the simulator.
    world
        .create(pod("doomed", &[(OUTCOME_ANNOTATION, "hang")], &[]))
        .await;
    let running = wait_for(pods, "doomed", "Running", conditions::is_pod_running()).await;
    pods.delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    wait_deleted(pods, "doomed", &running.metadata.uid.unwrap()).await;
}

#[tokio::test]
async fn simulator_schedules_a_waiting_pod_when_capacity_frees() {
    let Some(world) = SimWorld::start("sim-capacity").await else {
        return;
    };
    let pods = &world.pods;

    // The only GPU node has 2 GPUs: the first pod takes both, the second waits as Unschedulable.
    let gpus = [("nvidia.com/gpu", "2")];
    world
        .create(pod("first", &[(OUTCOME_ANNOTATION, "hang")], &gpus))
        .await;
    wait_for(pods, "first", "Running", conditions::is_pod_running()).await;
    world.create(pod("second", &[], &gpus)).await;
    wait_for(pods, "second", "PodScheduled=False", unschedulable()).await;

    // Finishing the first pod frees its GPUs; the simulator binds the waiting pod, as the scheduler would.
    world.steer("first", "succeed").await;
    wait_for(pods, "first", "Succeeded", phase_is("Succeeded")).await;
    let second = wait_for(pods, "second", "Succeeded", phase_is("Succeeded")).await;
    assert_eq!(second.spec.unwrap().node_name.unwrap(), world.node("gpu"));
}
