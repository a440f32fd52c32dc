//! The thin I/O loop: register the nodes, watch pods, carry out [`decide`]'s decisions.
//!
//! One pod watch (a kube-runtime reflector) drives everything; there is no per-pod polling. A pod that is running
//! its simulated time gets a one-shot timer that puts it back through [`decide`]. The loop remembers the
//! resourceVersion it last acted on per pod, so a stale copy of a pod is never acted on twice, and which pods it
//! bound whose binding it has not seen yet (like the scheduler's "assumed" pods), so two pending pods cannot both
//! take the last GPU.
//!
//! Before deciding on a bound `Pending` pod it builds its containers' environment ([`crate::env`], reading the
//! Secrets and ConfigMaps it refers to). With the in-pod agent on, it starts one [`crate::in_pod`] process per pod
//! labelled `clearml-task-id` when its containers start, and puts the pod back through [`decide`] whenever that
//! process reports; the process dies with the pod.

use std::{
    collections::{BTreeMap, HashMap, HashSet, hash_map::Entry},
    future::Future,
    sync::Arc,
    time::Duration,
};

use futures::StreamExt as _;
use k8s_openapi::{api::core::v1::Pod, jiff::Timestamp};
use kube::{
    Api, Client, ResourceExt as _,
    api::{Patch, PatchParams},
    runtime::{
        WatchStreamExt as _,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use tokio::sync::mpsc;

pub use crate::kube_io::NODE_LABEL;
use crate::{
    decide::{self, Action, KubeletView, Process, SimConfig, TASK_ID_LABEL, Usage},
    env,
    in_pod::{self, Launch, ProcessEvent, ProcessHandle, Report},
    kube_io,
    pod_view::label,
};

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
        for spec in &self.config.nodes {
            kube_io::register_node(&self.client, spec)
                .await
                .map_err(|source| SimError::Node {
                    node: spec.name.clone(),
                    source,
                })?;
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
        let (report_tx, mut report_rx) = mpsc::unbounded_channel::<Report>();
        let mut state = LoopState {
            client: self.client.clone(),
            config: self.config.clone(),
            store,
            requeue: requeue_tx,
            reports: report_tx,
            acted: HashMap::new(),
            assumed: HashMap::new(),
            timers: HashSet::new(),
            processes: HashMap::new(),
            requests: HashMap::new(),
        };
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
                Some(report) = report_rx.recv() => {
                    if state.heard(&report)
                        && let Some(pod) = state.store.get(&report.key)
                    {
                        state.handle(&pod).await;
                    }
                }
            }
        }
    }
}

/// An in-pod agent process and what it last said.
struct Slot {
    handle: ProcessHandle,
    state: Process,
}

struct LoopState {
    client: Client,
    config: Arc<SimConfig>,
    store: Store<Pod>,
    requeue: mpsc::UnboundedSender<ObjectRef<Pod>>,
    reports: mpsc::UnboundedSender<Report>,
    /// Pod uid → resourceVersion we last changed it from; a copy at that version is stale.
    acted: HashMap<String, String>,
    /// Pod uid → node, for bindings the watch has not shown yet.
    assumed: HashMap<String, String>,
    /// Pods with a pending timer.
    timers: HashSet<ObjectRef<Pod>>,
    /// Pod uid → its in-pod agent process.
    processes: HashMap<String, Slot>,
    /// Pod uid → its effective requests ([`decide::pod_requests`]), parsed once.
    requests: HashMap<String, BTreeMap<String, i128>>,
}

impl LoopState {
    /// Drop bookkeeping for a deleted pod (a long-running simulator must not grow without bound); its process dies.
    fn forget(&mut self, pod: &Pod) {
        let uid = pod.uid().unwrap_or_default();
        self.acted.remove(&uid);
        self.assumed.remove(&uid);
        self.processes.remove(&uid);
        self.requests.remove(&uid);
    }

    /// Record what a process said; `true` when the pod should be looked at again.
    fn heard(&mut self, report: &Report) -> bool {
        let Some(slot) = self.processes.get_mut(&report.uid) else {
            return false;
        };
        slot.state = match report.event {
            ProcessEvent::Working => Process::Working,
            ProcessEvent::Exited(code) => Process::Exited(code),
        };
        true
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

    /// Resources requested on each simulated node by pods that are bound (or assumed) and not finished. Each pod's
    /// requests are parsed once (a pod's resources do not change; the simulator has no in-place resize).
    fn usage(&mut self) -> Usage {
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
            let Some(node) = node else {
                continue;
            };
            let requests = match self.requests.entry(uid) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(slot) => match decide::pod_requests(&pod) {
                    Ok(requests) => slot.insert(requests),
                    Err(_) => continue,
                },
            };
            usage.add(&node, requests);
        }
        usage
    }

    /// What the kubelet sees of the pod beyond its object; `None` when that cannot be read now (retried later).
    async fn observe(&self, pod: &Pod, uid: &str) -> Option<(KubeletView, env::PodEnv)> {
        let mut view = KubeletView {
            process: self
                .processes
                .get(uid)
                .map_or(Process::Simulated, |s| s.state),
            ..KubeletView::default()
        };
        let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
        let ours = node.is_some_and(|n| self.config.nodes.iter().any(|spec| spec.name == n));
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        let starting = ours
            && matches!(phase, None | Some("Pending"))
            && pod.metadata.deletion_timestamp.is_none();
        if !starting {
            return Some((view, env::PodEnv::default()));
        }
        match env::resolve_pod(&self.client, pod).await {
            Ok(pod_env) => {
                view.config_errors = pod_env.errors.clone();
                Some((view, pod_env))
            }
            Err(e) => {
                tracing::warn!(pod = %pod.name_any(), error = %e, "reading the pod's Secrets/ConfigMaps failed");
                None
            }
        }
    }

    async fn handle(&mut self, pod: &Pod) {
        let uid = pod.uid().unwrap_or_default();
        let rv = pod.resource_version().unwrap_or_default();
        if is_terminal(pod) {
            // The container is gone; so is its process (a killed one reports nothing).
            self.processes.remove(&uid);
        }
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
        let Some((view, pod_env)) = self.observe(pod, &uid).await else {
            return;
        };
        // Only a pod to schedule needs the nodes' usage; a sum over every pod for each status change made the
        // simulator's cost grow with the pods it tracks (and with the resources each pod names).
        let usage = if bound {
            Usage::default()
        } else {
            self.usage()
        };
        let decision = decide::decide(pod, &self.config, &usage, Timestamp::now(), &view);
        let action = &decision.action;
        let name = pod.name_any();
        let namespace = pod.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let writes = !matches!(
            action,
            Action::None | Action::RequeueAfter(_) | Action::FinishProcess(_)
        );
        if writes && self.config.events {
            // Before the write, so whoever sees the new pod state also finds the events that explain it.
            kube_io::create_events(&self.client, pod, &decision.events).await;
        }
        let result = match action {
            Action::None => return,
            Action::RequeueAfter(delay) => {
                self.requeue_after(ObjectRef::from(pod), *delay);
                return;
            }
            Action::FinishProcess(code) => {
                if let Some(slot) = self.processes.get_mut(&uid) {
                    slot.handle.finish(*code);
                }
                return;
            }
            Action::Bind(node) => {
                self.assumed.insert(uid.clone(), node.clone());
                let result = kube_io::bind(&api, pod, node).await;
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
            Action::ForceDelete => kube_io::force_delete(&api, pod).await,
        };
        match result {
            Ok(()) => {
                tracing::info!(pod = %name, namespace = %namespace, action = %describe(action), "acted");
                self.acted.insert(uid.clone(), rv);
                if let Some(start) = decision.start_process {
                    self.start_process(pod, uid, pod_env, start);
                }
            }
            // 404/409: the pod changed or went away under us; the watch brings the new state.
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {
                tracing::debug!(pod = %name, code = e.code, "stale, skipping");
            }
            Err(e) => {
                tracing::warn!(pod = %name, namespace = %namespace, action = %describe(action), error = %e, "action failed")
            }
        }
    }

    /// The pod's containers started: start the in-pod agent in its task container.
    fn start_process(
        &mut self,
        pod: &Pod,
        uid: String,
        pod_env: env::PodEnv,
        start: decide::ProcessStart,
    ) {
        let (Some(settings), Some(task_id), Some(task_env)) = (
            self.config.in_pod_agent.clone(),
            label(pod, TASK_ID_LABEL),
            pod_env.task,
        ) else {
            return;
        };
        if self.processes.contains_key(&uid) {
            return;
        }
        let worker = task_env
            .get("CLEARML_WORKER_ID")
            .cloned()
            .unwrap_or_else(|| pod.name_any());
        let launch = Launch {
            key: ObjectRef::from(pod),
            uid: uid.clone(),
            task_id: task_id.to_owned(),
            worker,
            env: task_env,
            settings,
            start,
        };
        tracing::info!(pod = %pod.name_any(), task_id, "in-pod agent starting");
        let handle = in_pod::spawn(launch, self.reports.clone());
        self.processes.insert(
            uid,
            Slot {
                handle,
                state: Process::Starting,
            },
        );
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
        Action::FinishProcess(code) => format!("finish the in-pod process with {code}"),
    }
}
