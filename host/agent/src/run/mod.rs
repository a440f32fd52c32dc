//! `clearml-k8s-agent run`: prepare (config → policies, before any connection), start up (ClearML, the Secret, the
//! pod watch), then the dispatch loop and the periodic worker report until shutdown.
//!
//! - `dispatch_loop`: what to pop each round, and the submissions it starts.
//! - `report`: the periodic worker (and enterprise cluster) report.
//! - With `--leader-elect`, [`crate::leader`] decides which replica runs any of this.
//!
//! Start-up waits out an outage of ClearML or the Kubernetes API (retrying, `/readyz` saying what it waits for);
//! a configuration error (a missing queue, a policy that refuses its config) ends it at once.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clearml_api::{Client, ClientConfig};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use policy_runtime::{EngineConfig, PolicyEngine};

use crate::config::AgentConfig;
use crate::health::{Dependency, Phase};
use crate::kube::{KubeError, PodTracker, ensure_credentials_secret};
use crate::leader::{Elector, LeaseSettings};
use crate::metrics::{self, Metrics};
use crate::policies::{PolicySet, PolicySetError};
use crate::render::Identity;
use crate::startup::{self, ResolvedQueue, StartupError};
use crate::submit;

mod dispatch_loop;
mod report;

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
    /// Hand-overs and pod creates in flight at once (popped tasks are rendered while they wait for a slot).
    pub max_in_flight: usize,
    /// After a shutdown request, how long submissions in flight may take to finish before the agent stops anyway
    /// (below the pod's termination grace period, so the unregister still happens).
    pub shutdown_grace: Duration,
    /// Campaign for this Lease and dispatch only while holding it (two replicas); `None`: run alone.
    pub leader_election: Option<LeaseSettings>,
    /// Tests only: stop every submission dead at this step (see [`Failpoint`]).
    pub failpoint: Option<(Failpoint, Arc<tokio::sync::Notify>)>,
}

/// A step of a submission where a test can stop the agent, to prove that a kill there loses nothing. A submission
/// reaching it signals the `Notify` and never goes on; the test then kills the agent (aborts its task: every task
/// `run` spawned dies with it, as with SIGKILL) and starts a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failpoint {
    /// The task was popped; nothing else happened.
    AfterPop,
    /// The hand-over's forced stop went through, its enqueue not: the task is `stopped`, in no queue. On a server
    /// that needs no stop ([`crate::handover`]) it is reached before the enqueue: the task is `queued`, in no queue.
    AfterHandoverStop,
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
    /// Another replica holds the Lease now, or it could not be renewed in time: this replica stopped
    /// dispatching and must restart as a standby.
    #[error("lost the leader lease {0}: stopped dispatching (restart to stand by)")]
    LostLeadership(String),
}

impl RunError {
    /// The dependency whose outage this is, when retrying may fix it: ClearML unreachable or failing on its side
    /// (5xx), or the Kubernetes API unreachable, throttling (429) or failing (5xx).
    pub fn outage(&self) -> Option<Dependency> {
        match self {
            Self::Startup(StartupError::Api(e)) if e.is_transient() => Some(Dependency::ClearMl),
            Self::Kube(KubeError::Secret { source, .. }) if crate::kube::is_transient(source) => {
                Some(Dependency::Kubernetes)
            }
            _ => None,
        }
    }

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
    /// Whether the server enqueues a task that is still `queued`, read from the login token's claims: the
    /// hand-over needs no forced stop first (see [`crate::handover`]).
    pub enqueues_queued_tasks: bool,
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
///
/// With [`RunOptions::leader_election`], wait for the Lease first (a standby serves `/readyz` as ready and does
/// nothing else), and end with [`RunError::LostLeadership`] if it is lost.
pub async fn run(
    prepared: Prepared,
    kube_client: kube::Client,
    options: RunOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
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

    let leadership = match &options.leader_election {
        None => None,
        Some(settings) => {
            metrics.health.set_phase(Phase::Standby);
            let elector = Elector::new(kube_client.clone(), &options.namespace, settings.clone());
            match elector.acquire(&mut stop_rx.clone()).await {
                Some(leadership) => Some(leadership),
                None => {
                    tracing::info!("stopped while standby");
                    return Ok(());
                }
            }
        }
    };
    metrics.health.set_phase(Phase::Starting);
    let leading = lead(
        prepared,
        kube_client,
        &options,
        metrics.clone(),
        stop_rx,
        tasks,
    );
    let Some(leadership) = leadership else {
        return leading.await;
    };
    tokio::select! {
        result = leading => {
            leadership.release().await;
            result
        }
        () = leadership.lost() => {
            // Dropping `leading` aborts every submission and loop at once: the new leader's recovery finishes
            // what they started (see crate::recover), as after a crash.
            metrics.leader.set(0);
            Err(RunError::LostLeadership(
                options.leader_election.as_ref().map(|l| l.name.clone()).unwrap_or_default(),
            ))
        }
    }
}

/// Start up (retrying while ClearML or Kubernetes is unreachable), recover, then dispatch until `stop`.
async fn lead(
    prepared: Prepared,
    kube_client: kube::Client,
    options: &RunOptions,
    metrics: Arc<Metrics>,
    stop_rx: tokio::sync::watch::Receiver<bool>,
    mut tasks: Tasks,
) -> Result<(), RunError> {
    let Prepared {
        config,
        engine,
        policies,
    } = prepared;
    let identity = Identity {
        instance: options.instance.clone(),
        namespace: options.namespace.clone(),
        credentials_secret: options.credentials_secret.clone(),
    };
    let clearml = clearml_client(&config).map_err(RunError::Client)?;
    let Some(started) = retry_startup(&metrics, stop_rx.clone(), || {
        start_clearml(&clearml, &config, &identity)
    })
    .await?
    else {
        return Ok(());
    };
    let StartedClearMl {
        enterprise,
        enqueues_queued_tasks,
        queues,
        pending_queue_id,
    } = started;
    let secret = retry_startup(&metrics, stop_rx.clone(), || async {
        ensure_credentials_secret(&kube_client, &identity, &config.credentials)
            .await
            .map_err(RunError::from)
    })
    .await?;
    if secret.is_none() {
        return Ok(());
    }

    let pods: Api<Pod> = Api::namespaced(kube_client, &identity.namespace);
    let (tracker, watch) = PodTracker::watch(pods.clone(), &identity.instance);
    let watch_metrics = metrics.clone();
    tasks.spawn(async move {
        futures::pin_mut!(watch);
        while let Some(event) = watch.next().await {
            if let Err(err) = event {
                watch_metrics.kube_error("watch");
                watch_metrics
                    .health
                    .record_down(Dependency::Kubernetes, &format!("pod watch: {err}"));
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
        enqueues_queued_tasks,
        failpoint: options.failpoint.clone(),
    });
    crate::recover::recover(&shared).await;
    tasks.spawn(crate::pod_events::stream(shared.clone()));
    tasks.spawn(crate::follow::follow(
        shared.clone(),
        crate::lifecycle::Settings::from_config(&shared.config),
        stop_rx.clone(),
    ));
    tasks.spawn(report::report_status(
        shared.clone(),
        enterprise,
        stop_rx.clone(),
    ));
    metrics.leader.set(1);
    metrics.health.set_phase(Phase::Leading);
    tracing::info!(
        queues = ?shared.queues.iter().map(|q| q.config.name.as_str()).collect::<Vec<_>>(),
        namespace = %shared.identity.namespace,
        "agent ready"
    );

    let mut stopping = stop_rx.clone();
    let grace = options.shutdown_grace;
    tokio::select! {
        () = dispatch_loop::dispatch_loop(shared.clone(), options.max_in_flight, stop_rx) => {}
        () = async {
            let _ = stopping.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        } => {
            // Dropping the loop aborts what is still in flight (e.g. waiting out a ClearML outage): recovery at the
            // next start finishes it, as after a kill; exiting now beats being killed by the grace period.
            tracing::warn!(grace_seconds = grace.as_secs(), "submissions still in flight at the end of the shutdown grace: left to recovery");
        }
    }

    metrics.health.set_phase(Phase::Stopping);
    drop(tasks);
    if let Err(err) = shared
        .clearml
        .workers_unregister(shared.identity.worker_id())
        .await
    {
        tracing::warn!(error = %err, "cannot unregister the worker");
    }
    metrics.leader.set(0);
    tracing::info!("stopped");
    Ok(())
}

/// What start-up learned from ClearML.
struct StartedClearMl {
    enterprise: bool,
    enqueues_queued_tasks: bool,
    queues: Vec<ResolvedQueue>,
    pending_queue_id: String,
}

/// Log in, resolve (or create) the queues, make sure of the pending queue, register the worker.
async fn start_clearml(
    clearml: &Client,
    config: &AgentConfig,
    identity: &Identity,
) -> Result<StartedClearMl, RunError> {
    let claims = clearml.login().await.map_err(StartupError::from)?;
    let enterprise = claims.feature_set.as_deref().is_some_and(|f| f != "basic");
    tracing::info!(api = %config.api_server_url, feature_set = ?claims.feature_set, "logged in to ClearML");
    let queues = startup::resolve_queues(clearml, config).await?;
    let pending_queue_id = startup::ensure_pending_queue(clearml)
        .await
        .map_err(StartupError::from)?;
    startup::register_worker(clearml, identity.worker_id(), &queues)
        .await
        .map_err(StartupError::from)?;
    Ok(StartedClearMl {
        enterprise,
        enqueues_queued_tasks: crate::handover::enqueues_queued_tasks(&claims),
        queues,
        pending_queue_id,
    })
}

/// Run a start-up step until it succeeds, retrying (with backoff, up to 30 s apart) while the error is an outage
/// rather than a configuration or permission problem; `None` when shutdown comes first. `/readyz` says what is
/// being waited for meanwhile.
async fn retry_startup<T, F, Fut>(
    metrics: &Metrics,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut step: F,
) -> Result<Option<T>, RunError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RunError>>,
{
    let mut delay = Duration::from_millis(500);
    loop {
        match step().await {
            Ok(value) => return Ok(Some(value)),
            Err(err) => {
                let Some(dependency) = err.outage() else {
                    return Err(err);
                };
                metrics.health.record_down(dependency, &err.to_string());
                tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "start-up waits for {}", dependency.label());
            }
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|s| *s) => return Ok(None),
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
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
