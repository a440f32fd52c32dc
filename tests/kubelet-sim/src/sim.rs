//! The thin I/O loop: register the nodes, watch pods, carry out [`decide`]'s actions.
//!
//! One pod watch (a kube-runtime reflector) drives everything; there is no per-pod polling. A pod that is running
//! its simulated time gets a one-shot timer that puts it back through [`decide`]. The loop remembers the
//! resourceVersion it last acted on per pod, so a stale copy of a pod is never acted on twice, and which pods it
//! bound whose binding it has not seen yet (like the scheduler's "assumed" pods), so two pending pods cannot both
//! take the last GPU.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    sync::Arc,
    time::Duration,
};

use futures::StreamExt as _;
use k8s_openapi::{
    api::core::v1::{Binding, Node, ObjectReference, Pod},
    jiff::Timestamp,
};
use kube::{
    Api, Client, ResourceExt as _,
    api::{DeleteParams, Patch, PatchParams, PostParams},
    runtime::{
        WatchStreamExt as _,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use serde_json::json;
use tokio::sync::mpsc;

use crate::decide::{self, Action, NodeSpec, SimConfig, Usage};

/// Label on every node the simulator registers (so they are easy to find and clean up).
pub const NODE_LABEL: &str = "sim.clearml-k8s-agent/node";

/// Errors of the simulator's I/O.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Registering a node failed.
    #[error("registering node {node}: {source}")]
    Node {
        /// Node name.
        node: String,
        /// API error.
        #[source]
        source: kube::Error,
    },
    /// The pod watch ended (it retries with backoff, so this only happens when the stream is dropped).
    #[error("the pod watch ended")]
    WatchEnded,
}

/// The kubelet simulator: `new`, [`Simulator::register_nodes`], then [`Simulator::run`] (or [`Simulator::spawn`]).
pub struct Simulator {
    client: Client,
    config: Arc<SimConfig>,
    /// Watch pods in this namespace only (tests: one simulator per test namespace); `None` = all namespaces.
    namespace: Option<String>,
}

/// A simulator running on a tokio task; aborted when dropped (tests hold it for their duration).
#[derive(Debug)]
pub struct SimHandle {
    task: tokio::task::JoinHandle<Result<(), SimError>>,
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Simulator {
    /// A simulator for `config.nodes`, acting on pods in `namespace` (or all namespaces).
    pub fn new(client: Client, config: SimConfig, namespace: Option<String>) -> Self {
        Self {
            client,
            config: Arc::new(config),
            namespace,
        }
    }

    /// Create (or update) the simulated Nodes and mark them Ready with their capacity.
    pub async fn register_nodes(&self) -> Result<(), SimError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        for spec in &self.config.nodes {
            let err = |source| SimError::Node {
                node: spec.name.clone(),
                source,
            };
            let mut labels = spec.labels.clone();
            for (k, v) in [
                ("kubernetes.io/hostname", spec.name.as_str()),
                ("kubernetes.io/os", "linux"),
                ("kubernetes.io/arch", "amd64"),
                ("type", "kwok"),
                (NODE_LABEL, "true"),
            ] {
                labels.entry(k.to_owned()).or_insert_with(|| v.to_owned());
            }
            let node = json!({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": spec.name, "labels": labels},
                "spec": {},
            });
            // Server-side apply: creates the node or updates its labels, idempotently across runs.
            let params = PatchParams::apply("kubelet-sim").force();
            nodes
                .patch(&spec.name, &params, &Patch::Apply(&node))
                .await
                .map_err(err)?;
            nodes
                .patch_status(
                    &spec.name,
                    &PatchParams::default(),
                    &Patch::Merge(node_status(spec)),
                )
                .await
                .map_err(err)?;
            tracing::info!(node = %spec.name, allocatable = ?spec.allocatable_quantities(), "node registered");
        }
        Ok(())
    }

    /// Register the nodes and run on a background task until the returned handle is dropped.
    pub async fn spawn(self) -> Result<SimHandle, SimError> {
        self.register_nodes().await?;
        let task = tokio::spawn(self.run(futures::future::pending::<()>()));
        Ok(SimHandle { task })
    }

    /// Watch pods and act on them until `shutdown` completes. Nodes must be registered first.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), SimError> {
        let api: Api<Pod> = match &self.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        let (store, writer) = reflector::store();
        let stream = reflector::reflector(
            writer,
            watcher(api, watcher::Config::default()).default_backoff(),
        );
        let mut stream = std::pin::pin!(stream);
        let mut shutdown = std::pin::pin!(shutdown);
        let (requeue_tx, mut requeue_rx) = mpsc::unbounded_channel::<ObjectRef<Pod>>();
        let mut state = LoopState::new(self.client.clone(), self.config.clone(), store, requeue_tx);
        let mut synced = false;
        loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                event = stream.next() => match event {
                    None => return Err(SimError::WatchEnded),
                    Some(Err(e)) => tracing::warn!(error = %e, "pod watch error (retrying)"),
                    Some(Ok(watcher::Event::InitDone)) => {
                        synced = true;
                        state.reconcile_all().await;
                    }
                    Some(Ok(watcher::Event::Apply(pod))) if synced => {
                        let freed = is_terminal(&pod);
                        state.handle(&pod).await;
                        if freed {
                            // Capacity came back: pending pods may fit now (the scheduler retries them too).
                            state.reconcile_pending().await;
                        }
                    }
                    Some(Ok(watcher::Event::Delete(pod))) if synced => {
                        state.forget(&pod);
                        state.reconcile_pending().await;
                    }
                    // Init events: wait for InitDone so usage is computed over the complete list.
                    Some(Ok(_)) => {}
                },
                Some(key) = requeue_rx.recv() => {
                    state.timers.remove(&key);
                    if let Some(pod) = state.store.get(&key) {
                        state.handle(&pod).await;
                    }
                }
            }
        }
    }
}

struct LoopState {
    client: Client,
    config: Arc<SimConfig>,
    store: Store<Pod>,
    requeue: mpsc::UnboundedSender<ObjectRef<Pod>>,
    /// Pod uid → resourceVersion we last changed it from; a copy at that version is stale.
    acted: HashMap<String, String>,
    /// Pod uid → node, for bindings the watch has not shown yet.
    assumed: HashMap<String, String>,
    /// Pods with a pending timer.
    timers: HashSet<ObjectRef<Pod>>,
}

impl LoopState {
    fn new(
        client: Client,
        config: Arc<SimConfig>,
        store: Store<Pod>,
        requeue: mpsc::UnboundedSender<ObjectRef<Pod>>,
    ) -> Self {
        Self {
            client,
            config,
            store,
            requeue,
            acted: HashMap::new(),
            assumed: HashMap::new(),
            timers: HashSet::new(),
        }
    }

    /// Drop bookkeeping for a deleted pod (a long-running simulator must not grow without bound).
    fn forget(&mut self, pod: &Pod) {
        let uid = pod.uid().unwrap_or_default();
        self.acted.remove(&uid);
        self.assumed.remove(&uid);
    }

    async fn reconcile_all(&mut self) {
        let mut pods = self.store.state();
        // Oldest first, like the scheduler's queue, so capacity goes to the pods that waited longest.
        pods.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
        for pod in pods {
            self.handle(&pod).await;
        }
    }

    async fn reconcile_pending(&mut self) {
        let mut pods = self
            .store
            .state_filter(|p| p.spec.as_ref().is_some_and(|s| s.node_name.is_none()));
        pods.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
        for pod in pods {
            self.handle(&pod).await;
        }
    }

    /// Resources requested on each simulated node by pods that are bound (or assumed) and not finished.
    fn usage(&self) -> Usage {
        let mut usage = Usage::default();
        for pod in self.store.state() {
            if is_terminal(&pod) {
                continue;
            }
            let uid = pod.uid().unwrap_or_default();
            let node = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .or_else(|| self.assumed.get(&uid).cloned());
            if let Some(node) = node
                && let Ok(req) = decide::pod_requests(&pod)
            {
                usage.add(&node, &req);
            }
        }
        usage
    }

    async fn handle(&mut self, pod: &Pod) {
        let uid = pod.uid().unwrap_or_default();
        let rv = pod.resource_version().unwrap_or_default();
        if self.acted.get(&uid) == Some(&rv) {
            return;
        }
        let bound = pod.spec.as_ref().is_some_and(|s| s.node_name.is_some());
        if bound {
            self.assumed.remove(&uid);
        } else if self.assumed.contains_key(&uid) {
            // Bound by us a moment ago; the watch has not caught up yet.
            return;
        }
        let action = decide::decide(pod, &self.config, &self.usage(), Timestamp::now());
        let name = pod.name_any();
        let namespace = pod.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let result = match &action {
            Action::None => return,
            Action::RequeueAfter(delay) => {
                self.requeue_after(ObjectRef::from(pod), *delay);
                return;
            }
            Action::Bind(node) => {
                self.assumed.insert(uid.clone(), node.clone());
                let result = bind(&api, pod, node).await;
                if result.is_err() {
                    self.assumed.remove(&uid);
                }
                result
            }
            Action::Unschedulable(message) => {
                let patch = decide::unschedulable_status(message, Timestamp::now());
                api.patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
                    .await
                    .map(drop)
            }
            Action::PatchStatus(patch) => api
                .patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Strategic(patch.clone()),
                )
                .await
                .map(drop),
            Action::ForceDelete => force_delete(&api, pod).await,
        };
        match result {
            Ok(()) => {
                tracing::info!(pod = %name, namespace = %namespace, action = %describe(&action), "acted");
                self.acted.insert(uid, rv);
            }
            // 404/409: the pod changed or went away under us; the watch brings the new state.
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {
                tracing::debug!(pod = %name, code = e.code, "stale, skipping");
            }
            Err(e) => {
                tracing::warn!(pod = %name, namespace = %namespace, action = %describe(&action), error = %e, "action failed")
            }
        }
    }

    fn requeue_after(&mut self, key: ObjectRef<Pod>, delay: Duration) {
        if !self.timers.insert(key.clone()) {
            return;
        }
        let tx = self.requeue.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(key);
        });
    }
}

async fn bind(api: &Api<Pod>, pod: &Pod, node: &str) -> Result<(), kube::Error> {
    let name = pod.name_any();
    let binding = Binding {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.clone()),
            namespace: pod.namespace(),
            uid: pod.uid(),
            ..Default::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.to_owned()),
            ..Default::default()
        },
    };
    let _: serde_json::Value = api
        .create_subresource("binding", &name, &PostParams::default(), &binding)
        .await?;
    Ok(())
}

/// kwok's `delete` stage: clear finalizers, then delete with grace period 0.
async fn force_delete(api: &Api<Pod>, pod: &Pod) -> Result<(), kube::Error> {
    let name = pod.name_any();
    if pod
        .metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| !f.is_empty())
    {
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await?;
    }
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    api.delete(&name, &params).await.map(drop)
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn describe(action: &Action) -> String {
    match action {
        Action::None => "none".into(),
        Action::Bind(node) => format!("bind to {node}"),
        Action::Unschedulable(m) => format!("unschedulable: {m}"),
        Action::PatchStatus(p) => {
            format!("status {}", p["status"]["phase"].as_str().unwrap_or("?"))
        }
        Action::ForceDelete => "force delete".into(),
        Action::RequeueAfter(d) => format!("requeue after {d:?}"),
    }
}

/// The Node status: capacity = allocatable, Ready, an address and the system info a kubelet reports.
fn node_status(spec: &NodeSpec) -> serde_json::Value {
    let now = serde_json::to_value(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        Timestamp::now(),
    ))
    .unwrap_or(serde_json::Value::Null);
    let resources = spec.allocatable_quantities();
    let cond = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    json!({
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "phase": "Running",
            "conditions": [
                cond("Ready", "True", "KubeletReady", "kubelet-sim is posting ready status"),
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "simulated"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "simulated"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "simulated"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": "10.96.0.1"},
                {"type": "Hostname", "address": spec.name},
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": "",
                "containerRuntimeVersion": "kubelet-sim://0.1.0",
                "kernelVersion": "",
                "kubeProxyVersion": "",
                "kubeletVersion": "v1.37.2-sim",
                "machineID": "",
                "operatingSystem": "linux",
                "osImage": "kubelet-sim",
                "systemUUID": "",
            },
        }
    })
}
