//! `clearml-k8s-agent run`: prepare (config → policies, before any connection), start up (ClearML, the Secret, the
//! pod watch), then the dispatch loop and the periodic worker report until shutdown.
//!
//! The dispatch loop asks ClearML once per round which monitored queues have entries (one `queues.get_all` for all
//! of them, so an idle agent costs about one request per poll interval whatever the number of queues), asks
//! [`crate::dispatch::plan`] what to pop given the pod watch's counts, pops exactly that, and hands each task to a
//! submission ([`crate::submit`]) running concurrently. While queues yield tasks it re-polls at once; when idle it
//! waits for the poll interval, or for a pod to finish when capacity is what holds tasks back.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clearml_api::{Client, ClientConfig, ClusterReport, QueuesGetAll, StatusReport};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use policy_runtime::{EngineConfig, PolicyEngine};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::AgentConfig;
use crate::dispatch::{self, QueueState};
use crate::kube::{KubeError, PodTracker, ensure_credentials_secret};
use crate::metrics::{self, Metrics};
use crate::policies::{PolicySet, PolicySetError};
use crate::render::Identity;
use crate::startup::{self, ResolvedQueue, StartupError};
use crate::submit;

/// How `run` is set up beyond the values file (from the command line).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Namespace task pods go to.
    pub namespace: String,
    /// Where `/metrics`, `/healthz`, `/readyz` are served.
    pub metrics_addr: SocketAddr,
    /// Instance name: the pods' `clearml-agent-instance` label and the ClearML worker id.
    pub instance: String,
    /// The Secret task pods read credentials from (created or updated at start-up).
    pub credentials_secret: String,
    /// Submissions in flight at once.
    pub max_in_flight: usize,
    /// Tests only: stop every submission dead at this step (see [`Failpoint`]).
    pub failpoint: Option<(Failpoint, Arc<tokio::sync::Notify>)>,
}

/// A step of a submission where a test can stop the agent, to prove that a kill there loses nothing. A submission
/// reaching it signals the `Notify` and never goes on; the test then kills the agent (in-process: aborts its task;
/// the binary's hidden `--failpoint` aborts the process) and starts a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failpoint {
    /// The task was popped; nothing else happened.
    AfterPop,
    /// The task is in the pending queue; no pod yet.
    AfterHandoff,
    /// The pod was created.
    AfterCreate,
}

/// The agent could not start or stopped on an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The policy engine could not be created.
    #[error("policy engine: {0}")]
    Engine(String),
    /// A queue's policies could not be loaded or refused their config (a configuration error).
    #[error(transparent)]
    Policies(#[from] PolicySetError),
    /// Start-up on the ClearML side failed.
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// A Kubernetes call at start-up failed.
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// The ClearML client could not be built (bad URL).
    #[error("ClearML client: {0}")]
    Client(clearml_api::Error),
    /// The metrics address could not be bound.
    #[error("cannot serve metrics on {addr}: {source}")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The pod watch never completed its first list.
    #[error("the pod watch could not list pods in namespace {0}")]
    Watch(String),
}

impl RunError {
    /// Whether this is the user's configuration at fault (exit 64) rather than the environment (exit 1).
    pub fn is_config_error(&self) -> bool {
        matches!(
            self,
            Self::Policies(_) | Self::Startup(StartupError::MissingQueue { .. })
        )
    }
}

/// Everything a submission and the loops share.
pub struct Shared {
    /// The values.
    pub config: AgentConfig,
    /// Who the agent is.
    pub identity: Identity,
    /// Monitored queues, in priority order.
    pub queues: Vec<ResolvedQueue>,
    /// The hidden pending queue's id.
    pub pending_queue_id: String,
    /// ClearML.
    pub clearml: Client,
    /// The agent's namespace's pods.
    pub pods: Api<Pod>,
    /// The pod watch's cache and reservations.
    pub tracker: PodTracker,
    /// Every queue's chain.
    pub policies: PolicySet,
    /// The wasm engine.
    pub engine: PolicyEngine,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// See [`RunOptions::failpoint`].
    pub failpoint: Option<(Failpoint, Arc<tokio::sync::Notify>)>,
}

impl Shared {
    /// Stop here forever if a test asked to (see [`Failpoint`]).
    pub async fn failpoint(&self, at: Failpoint) {
        if let Some((point, reached)) = &self.failpoint
            && *point == at
        {
            tracing::warn!(failpoint = ?at, "failpoint reached: this submission stops here");
            reached.notify_one();
            std::future::pending::<()>().await;
        }
    }

    /// What [`submit::render_task`] needs.
    pub fn render_context(&self) -> submit::RenderContext<'_> {
        submit::RenderContext {
            config: &self.config,
            identity: &self.identity,
            policies: &self.policies,
            engine: &self.engine,
        }
    }

    /// The credential values that must never reach a pod, a log line or a message.
    pub fn secret_values(&self) -> Vec<&str> {
        crate::guard::secret_values(&self.config.credentials)
    }
}

/// A loaded configuration with its policies compiled and validated: what `run` and `render` start from. Building it
/// touches no network, so a bad config is reported before any connection.
pub struct Prepared {
    /// The values.
    pub config: AgentConfig,
    /// The engine the policies were loaded into.
    pub engine: PolicyEngine,
    /// Every queue's chain.
    pub policies: PolicySet,
}

impl Prepared {
    /// Load and validate every queue's policies.
    pub fn new(config: AgentConfig, cache_dir: Option<PathBuf>) -> Result<Self, RunError> {
        Self::build(config, cache_dir, true)
    }

    /// No policies at all (not even template-overrides): the benchmark's baseline.
    pub fn without_policies(config: AgentConfig) -> Result<Self, RunError> {
        Self::build(config, None, false)
    }

    fn build(
        config: AgentConfig,
        cache_dir: Option<PathBuf>,
        with_policies: bool,
    ) -> Result<Self, RunError> {
        let engine = PolicyEngine::new(EngineConfig {
            cache_dir,
            ..EngineConfig::default()
        })
        .map_err(|e| RunError::Engine(e.to_string()))?;
        let policies = if with_policies {
            PolicySet::load(&engine, &config)?
        } else {
            PolicySet::none(&config)
        };
        Ok(Self {
            config,
            engine,
            policies,
        })
    }
}

/// The ClearML client for a config.
pub fn clearml_client(config: &AgentConfig) -> Result<Client, clearml_api::Error> {
    Client::new(ClientConfig::new(
        config.api_server_url.clone(),
        config.credentials.access_key.expose(),
        config.credentials.secret_key.expose(),
    ))
}

/// Run the agent until `shutdown` completes; then stop popping, let in-flight submissions finish, unregister.
pub async fn run(
    prepared: Prepared,
    kube_client: kube::Client,
    options: RunOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let Prepared {
        config,
        engine,
        policies,
    } = prepared;
    let metrics = Arc::new(Metrics::new());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut stopped = stop_rx.clone();
    let server_stop = async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    let (addr, server) = metrics::serve(options.metrics_addr, metrics.clone(), server_stop)
        .await
        .map_err(|source| RunError::Metrics {
            addr: options.metrics_addr,
            source,
        })?;
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz");
    let mut tasks = Tasks::default();
    tasks.0.push(server);
    tasks.spawn(async move {
        shutdown.await;
        tracing::info!("shutdown requested: no more pops; finishing submissions in flight");
        let _ = stop_tx.send(true);
    });

    let identity = Identity {
        instance: options.instance.clone(),
        namespace: options.namespace.clone(),
        credentials_secret: options.credentials_secret.clone(),
    };
    let clearml = clearml_client(&config).map_err(RunError::Client)?;
    let claims = clearml.login().await.map_err(StartupError::from)?;
    let enterprise = claims.feature_set.as_deref().is_some_and(|f| f != "basic");
    tracing::info!(api = %config.api_server_url, feature_set = ?claims.feature_set, "logged in to ClearML");
    let queues = startup::resolve_queues(&clearml, &config).await?;
    let pending_queue_id = startup::ensure_pending_queue(&clearml)
        .await
        .map_err(StartupError::from)?;
    startup::register_worker(&clearml, identity.worker_id(), &queues)
        .await
        .map_err(StartupError::from)?;
    ensure_credentials_secret(&kube_client, &identity, &config.credentials).await?;

    let pods: Api<Pod> = Api::namespaced(kube_client, &identity.namespace);
    let (tracker, watch) = PodTracker::watch(pods.clone(), &identity.instance);
    let watch_metrics = metrics.clone();
    tasks.spawn(async move {
        futures::pin_mut!(watch);
        while let Some(event) = watch.next().await {
            if let Err(err) = event {
                watch_metrics.kube_error("watch");
                tracing::warn!(error = %err, "pod watch error (retrying)");
            }
        }
    });
    if !tracker.ready().await {
        return Err(RunError::Watch(identity.namespace.clone()));
    }

    let shared = Arc::new(Shared {
        config,
        identity,
        queues,
        pending_queue_id,
        clearml,
        pods,
        tracker,
        policies,
        engine,
        metrics: metrics.clone(),
        failpoint: options.failpoint.clone(),
    });
    crate::recover::recover(&shared).await;
    tasks.spawn(crate::pod_events::stream(shared.clone()));
    tasks.spawn(crate::follow::follow(
        shared.clone(),
        crate::lifecycle::Settings::from_config(&shared.config),
        stop_rx.clone(),
    ));
    tasks.spawn(report_status(shared.clone(), enterprise, stop_rx.clone()));
    metrics.leader.set(1);
    metrics.set_ready(true);
    tracing::info!(
        queues = ?shared.queues.iter().map(|q| q.config.name.as_str()).collect::<Vec<_>>(),
        namespace = %shared.identity.namespace,
        "agent ready"
    );

    dispatch_loop(shared.clone(), options.max_in_flight, stop_rx).await;

    metrics.set_ready(false);
    drop(tasks);
    if let Err(err) = shared
        .clearml
        .workers_unregister(shared.identity.worker_id())
        .await
    {
        tracing::warn!(error = %err, "cannot unregister the worker");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Background tasks of one `run`, aborted when it ends or is dropped: a killed agent leaves nothing running.
#[derive(Default)]
struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Tasks {
    fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.0.push(tokio::spawn(task));
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// How many tasks wait in each monitored queue, in one request.
async fn waiting_counts(shared: &Shared, cap: u32) -> Result<Vec<u32>, clearml_api::Error> {
    let found = shared
        .clearml
        .queues_get_all(&QueuesGetAll {
            id: shared.queues.iter().map(|q| q.id.clone()).collect(),
            only_fields: vec!["id".into(), "entries".into()],
            max_task_entries: Some(cap),
            search_hidden: true,
            ..QueuesGetAll::default()
        })
        .await?;
    Ok(shared
        .queues
        .iter()
        .map(|q| {
            found
                .iter()
                .find(|f| f.id == q.id)
                .map_or(0, |f| u32::try_from(f.entries.len()).unwrap_or(u32::MAX))
        })
        .collect())
}

async fn dispatch_loop(
    shared: Arc<Shared>,
    max_in_flight: usize,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let mut submissions = JoinSet::new();
    let mut cursor = 0;
    let poll = shared
        .config
        .queue_poll_frequency
        .max(Duration::from_millis(50));
    let batch_cap = u32::try_from(max_in_flight.max(1) * 2).unwrap_or(u32::MAX);
    // After a round that popped tasks, an empty round waits only briefly (doubling up to the poll interval): a busy
    // queue's next task is picked up in tens of milliseconds, while an idle agent settles at one query per poll.
    let mut idle_wait = poll;
    while !*stop.borrow() {
        // Reap finished submissions so the set does not grow.
        while submissions.try_join_next().is_some() {}
        // Up to one batch of popped tasks may wait for a submission slot, so a slot that frees up starts its next
        // task at once instead of after another query and pop. They are counted as reserved capacity from the pop
        // on, so `maxPods` still holds.
        let lookahead = max_in_flight.max(1) * 2;
        let free_slots = u32::try_from(lookahead.saturating_sub(submissions.len())).unwrap_or(0);
        if free_slots == 0 {
            // Every slot is busy and a batch waits: nothing more can be taken now, so do not ask ClearML.
            wake_on(&mut stop, poll, None, &mut submissions).await;
            continue;
        }
        let waiting = match waiting_counts(&shared, batch_cap).await {
            Ok(waiting) => waiting,
            Err(err) => {
                shared.metrics.clearml_error(err.endpoint());
                tracing::warn!(error = %err, "cannot read the queues; retrying");
                wake_on(&mut stop, poll, None, &mut submissions).await;
                continue;
            }
        };
        let counts = shared.tracker.counts();
        let states: Vec<QueueState> = shared
            .queues
            .iter()
            .zip(&waiting)
            .map(|(queue, &waiting)| QueueState {
                waiting,
                active: counts.per_queue.get(&queue.id).copied().unwrap_or(0),
                max_pods: queue.config.settings.max_pods,
            })
            .collect();
        let limits = dispatch::Limits {
            global_free: shared
                .config
                .max_pods
                .map_or(u32::MAX, |max| max.saturating_sub(counts.total)),
            batch: free_slots,
        };
        let plan = dispatch::plan(&states, limits, cursor);
        cursor = plan.next_cursor;
        if plan.pops.is_empty() {
            // Tasks wait but capacity holds them back: a finishing pod or submission is what changes that.
            let held_back = waiting.iter().any(|&w| w > 0);
            let delay = if held_back { poll } else { idle_wait };
            wake_on(
                &mut stop,
                delay,
                held_back.then_some(&shared.tracker),
                &mut submissions,
            )
            .await;
            idle_wait = (idle_wait * 2).min(poll);
            continue;
        }
        let clearml = &shared.clearml;
        let pops = plan.pops.iter().map(|&index| {
            let queue_id = shared.queues[index].id.clone();
            async move { (index, clearml.queues_get_next_task(&queue_id).await) }
        });
        let mut popped = Vec::new();
        for (index, result) in futures::future::join_all(pops).await {
            let queue = &shared.queues[index];
            match result {
                Ok(Some(next)) => {
                    crate::metrics::Metrics::per_queue(
                        &shared.metrics.tasks_popped,
                        &queue.config.name,
                    );
                    shared.tracker.reserve(&next.entry.task, &queue.id);
                    popped.push((queue.clone(), next));
                }
                Ok(None) => {}
                Err(err) => {
                    shared.metrics.clearml_error(err.endpoint());
                    tracing::warn!(queue = %queue.config.name, error = %err, "pop failed");
                }
            }
        }
        // One read for the whole round's tasks; a submission whose task is missing here reads it itself.
        let ids: Vec<String> = popped
            .iter()
            .map(|(_, next)| next.entry.task.clone())
            .collect();
        let mut documents = if ids.is_empty() {
            Default::default()
        } else {
            submit::fetch_tasks(&shared, &ids)
                .await
                .unwrap_or_else(|err| {
                    shared.metrics.clearml_error(err.endpoint());
                    Default::default()
                })
        };
        let popped_count = popped.len();
        for (queue, next) in popped {
            let document = documents.remove(&next.entry.task);
            let shared = shared.clone();
            let permits = permits.clone();
            submissions.spawn(async move {
                // The semaphore is never closed; without a permit the submission still runs.
                let _permit = permits.acquire_owned().await.ok();
                submit::submit(shared, queue, next, document).await;
            });
        }
        if popped_count == 0 {
            wake_on(&mut stop, idle_wait, None, &mut submissions).await;
            idle_wait = (idle_wait * 2).min(poll);
        } else {
            idle_wait = Duration::from_millis(25).min(poll);
        }
    }
    // Shutdown: no more pops; let what was popped reach its pod (or its failure) so no task is left half-way.
    while submissions.join_next().await.is_some() {}
}

/// Wait `delay`, or less: until a submission ends, a pod frees capacity (when `capacity` is given), or shutdown.
async fn wake_on(
    stop: &mut tokio::sync::watch::Receiver<bool>,
    delay: Duration,
    capacity: Option<&PodTracker>,
    submissions: &mut JoinSet<()>,
) {
    let capacity_changed = async {
        match capacity {
            Some(tracker) => tracker.changed().await,
            None => std::future::pending().await,
        }
    };
    let submission_ended = async {
        if submissions.join_next().await.is_none() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        () = capacity_changed => {}
        () = submission_ended => {}
        _ = stop.wait_for(|s| *s) => {}
    }
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `workers.status_report` every `statusReportFrequencySeconds`, and the enterprise GPU report where it is served.
async fn report_status(
    shared: Arc<Shared>,
    enterprise: bool,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut cluster_report = enterprise && shared.config.dashboard_report_max_gpu.is_some();
    let every = shared
        .config
        .status_report_frequency
        .max(Duration::from_secs(1));
    loop {
        let report = StatusReport {
            worker: shared.identity.worker_id().to_string(),
            timestamp: now_millis(),
            queues: Some(shared.queues.iter().map(|q| q.id.clone()).collect()),
            ..StatusReport::default()
        };
        if let Err(err) = shared.clearml.workers_status_report(&report).await {
            shared.metrics.clearml_error(err.endpoint());
            tracing::warn!(error = %err, "status report failed");
        }
        if cluster_report {
            let report = ClusterReport {
                max_gpus: shared.config.dashboard_report_max_gpu,
                ..ClusterReport::new(shared.identity.worker_id(), now_millis())
            };
            match shared.clearml.workers_cluster_report(&report).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(
                        "the server has no enterprise cluster report; dashboardReportMaxGpu is not reported"
                    );
                    cluster_report = false;
                }
                Err(err) => tracing::warn!(error = %err, "cluster report failed"),
            }
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
