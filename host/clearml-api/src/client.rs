//! The async client: one method per endpoint, a shared session token, retries for transient failures.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backon::{ExponentialBuilder, Retryable};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::error::{Error, Result};
use crate::token::{TokenClaims, decode_claims, needs_refresh};
use crate::types::*;

/// How to reach and authenticate to a ClearML API server.
#[derive(Clone)]
pub struct ClientConfig {
    /// API server URL, e.g. `http://clearml-apiserver:8008` (a path prefix is kept).
    pub api_url: String,
    /// The access key of a ClearML credentials pair (`CLEARML_API_ACCESS_KEY`); sent, with the secret, as Basic
    /// auth to `auth.login` only. Every other call carries the token.
    pub access_key: String,
    /// The secret of that pair; never logged (`Debug` redacts it).
    pub secret_key: String,
    /// URL version (`/v2.23/…`), the one the current SDK uses. Calls that need newer fields pass their own.
    pub api_version: String,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Time allowed to open the connection (TCP and TLS), shorter than `timeout` so a dead server fails fast.
    pub connect_timeout: Duration,
    /// Refresh the token when fewer than this many seconds remain (clearml-agent: 12 h).
    pub refresh_margin: Duration,
    /// How transient failures are retried.
    pub retry: RetryPolicy,
}

// By hand so the secret key never reaches a log line.
impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("api_url", &self.api_url)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("api_version", &self.api_version)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("refresh_margin", &self.refresh_margin)
            .field("retry", &self.retry)
            .finish()
    }
}

impl ClientConfig {
    /// The URL and credentials, with the defaults: API version 2.23, a 30 s request and 10 s connect timeout, a
    /// 12 h refresh margin and [`RetryPolicy::default`].
    pub fn new(
        api_url: impl Into<String>,
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Self {
        ClientConfig {
            api_url: api_url.into(),
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            api_version: "2.23".into(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            refresh_margin: Duration::from_secs(43_200),
            retry: RetryPolicy::default(),
        }
    }
}

/// Retries of transient failures (connect, timeout, 5xx): exponential backoff with full jitter, so many agents
/// restarting together do not hammer a recovering server in lockstep. Default: 5 retries, 200 ms to 10 s.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 disables retrying.
    pub max_retries: usize,
    /// The first backoff delay, doubled on every further retry (before jitter).
    pub min_delay: Duration,
    /// Cap on any one delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

/// What the client remembers of its login.
#[derive(Debug, Clone)]
struct Session {
    token: String,
    claims: TokenClaims,
}

/// A ClearML API client. Cheap to clone (shares the connection pool and the token).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    config: Arc<ClientConfig>,
    session: Arc<Mutex<Option<Session>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("api_url", &self.base)
            .finish_non_exhaustive()
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The bits of the envelope the client reads.
#[derive(serde::Deserialize)]
struct Envelope {
    meta: Meta,
    #[serde(default)]
    data: Value,
}

#[derive(serde::Deserialize)]
struct Meta {
    result_code: u16,
    #[serde(default)]
    result_subcode: u32,
    #[serde(default)]
    result_msg: String,
}

impl Client {
    /// Builds the client; no request is made until the first call (which logs in).
    pub fn new(config: ClientConfig) -> Result<Self> {
        if !(config.api_url.starts_with("http://") || config.api_url.starts_with("https://")) {
            return Err(Error::Config(format!(
                "api_url must be an http(s) URL, got {:?}",
                config.api_url
            )));
        }
        // reqwest is built without a bundled crypto provider (no C build of aws-lc); install ring, which kube
        // uses too. Already installed (by the binary or another client) is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("clearml-k8s-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("building the HTTP client: {e}")))?;
        Ok(Client {
            http,
            base: config.api_url.trim_end_matches('/').to_owned(),
            config: Arc::new(config),
            session: Arc::new(Mutex::new(None)),
        })
    }

    /// The claims of the current token (logging in first if needed): `api_version`, `feature_set`, `exp`.
    pub async fn server_claims(&self) -> Result<TokenClaims> {
        let session = (|| self.session())
            .retry(self.backoff())
            .when(Error::is_transient)
            .notify(log_retry)
            .await?;
        Ok(session.claims)
    }

    /// Logs in now (Basic auth → token), replacing any current token.
    pub async fn login(&self) -> Result<TokenClaims> {
        let mut guard = self.session.lock().await;
        let s = self.login_with_retry().await?;
        let claims = s.claims.clone();
        *guard = Some(s);
        Ok(claims)
    }

    /// The current session, logging in (one attempt) when there is none or it is about to expire. Callers retry
    /// the whole call, so retrying here too would multiply the attempts.
    async fn session(&self) -> Result<Session> {
        let mut guard = self.session.lock().await;
        let margin = i64::try_from(self.config.refresh_margin.as_secs()).unwrap_or(i64::MAX);
        if let Some(s) = guard.as_ref()
            && !needs_refresh(s.claims.exp, now_unix(), margin)
        {
            return Ok(s.clone());
        }
        let s = self.login_once().await?;
        *guard = Some(s.clone());
        Ok(s)
    }

    async fn login_with_retry(&self) -> Result<Session> {
        (|| self.login_once())
            .retry(self.backoff())
            .when(Error::is_transient)
            .notify(log_retry)
            .await
    }

    async fn login_once(&self) -> Result<Session> {
        const ENDPOINT: &str = "auth.login";
        // Like the SDK: no version in the path, so the server answers with its newest implementation.
        let url = format!("{}/{ENDPOINT}", self.base);
        let basic = STANDARD.encode(format!(
            "{}:{}",
            self.config.access_key, self.config.secret_key
        ));
        let req = self
            .http
            .post(url)
            .header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"));
        let data: Value = self.send(ENDPOINT, req).await?;
        let token = data
            .get("token")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Decode {
                endpoint: ENDPOINT.into(),
                source: serde::de::Error::custom("no token in auth.login data"),
            })?
            .to_owned();
        let claims = decode_claims(&token).unwrap_or_default();
        tracing::debug!(exp = ?claims.exp, api_version = ?claims.api_version, "logged in to ClearML");
        Ok(Session { token, claims })
    }

    fn backoff(&self) -> ExponentialBuilder {
        let r = &self.config.retry;
        ExponentialBuilder::default()
            .with_min_delay(r.min_delay)
            .with_max_delay(r.max_delay)
            .with_max_times(r.max_retries)
            .with_jitter()
    }

    /// Sends a request and unwraps the envelope into `data` or a typed error.
    async fn send<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<T> {
        let resp = req.send().await.map_err(|source| Error::Transport {
            endpoint: endpoint.to_owned(),
            source,
        })?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|source| Error::Transport {
            endpoint: endpoint.to_owned(),
            source,
        })?;
        let Ok(envelope) = serde_json::from_slice::<Envelope>(&bytes) else {
            let body = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
            return Err(Error::Http {
                endpoint: endpoint.to_owned(),
                status,
                body,
            });
        };
        let m = envelope.meta;
        tracing::debug!(
            endpoint,
            result_code = m.result_code,
            result_subcode = m.result_subcode,
            "clearml call"
        );
        if m.result_code != 200 {
            return Err(Error::Api {
                endpoint: endpoint.to_owned(),
                code: m.result_code,
                subcode: m.result_subcode,
                msg: m.result_msg,
            });
        }
        serde_json::from_value(envelope.data).map_err(|source| Error::Decode {
            endpoint: endpoint.to_owned(),
            source,
        })
    }

    /// One attempt with the current token; on a 401 logs in again once and repeats the call.
    async fn call_once<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        version: &str,
        body: &Value,
    ) -> Result<T> {
        let url = format!("{}/v{version}/{endpoint}", self.base);
        let session = self.session().await?;
        let req = self.http.post(&url).bearer_auth(&session.token).json(body);
        match self.send(endpoint, req).await {
            Err(e) if e.is_unauthorized() => {
                tracing::info!(endpoint, error = %e, "token rejected, logging in again");
                {
                    let mut guard = self.session.lock().await;
                    // Another call may already have replaced the token; only drop the one that failed.
                    if guard.as_ref().is_some_and(|s| s.token == session.token) {
                        *guard = None;
                    }
                }
                let session = self.session().await?;
                let req = self.http.post(&url).bearer_auth(&session.token).json(body);
                self.send(endpoint, req).await
            }
            other => other,
        }
    }

    /// Calls any endpoint at the configured version: `endpoint` is `service.action`, `body` its request.
    pub async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        endpoint: &str,
        body: &B,
    ) -> Result<T> {
        let version = self.config.api_version.clone();
        self.call_at(endpoint, &version, body).await
    }

    /// Calls an endpoint at an explicit API version (for fields newer than the default version).
    pub async fn call_at<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        endpoint: &str,
        version: &str,
        body: &B,
    ) -> Result<T> {
        let body = serde_json::to_value(body).map_err(|source| Error::Decode {
            endpoint: endpoint.to_owned(),
            source,
        })?;
        (|| self.call_once::<T>(endpoint, version, &body))
            .retry(self.backoff())
            .when(Error::is_transient)
            .notify(log_retry)
            .await
    }

    // === queues ===

    /// `queues.get_all`: the queues matching the filters.
    pub async fn queues_get_all(&self, req: &QueuesGetAll) -> Result<Vec<Queue>> {
        #[derive(serde::Deserialize)]
        struct R {
            queues: Vec<Queue>,
        }
        Ok(self.call::<_, R>("queues.get_all", req).await?.queues)
    }

    /// `queues.get_by_id`: one queue by id; a name, or an unknown id, is [`crate::codes::INVALID_QUEUE_ID`].
    pub async fn queues_get_by_id(&self, queue: &str) -> Result<Queue> {
        #[derive(serde::Deserialize)]
        struct R {
            queue: Queue,
        }
        Ok(self
            .call::<_, R>("queues.get_by_id", &json!({ "queue": queue }))
            .await?
            .queue)
    }

    /// Creates a queue; returns its id.
    pub async fn queues_create(&self, req: &QueueCreate) -> Result<String> {
        #[derive(serde::Deserialize)]
        struct R {
            id: String,
        }
        Ok(self.call::<_, R>("queues.create", req).await?.id)
    }

    /// Pops the head of the queue atomically; `None` when the queue is empty.
    pub async fn queues_get_next_task(&self, queue: &str) -> Result<Option<NextTask>> {
        #[derive(serde::Deserialize)]
        struct R {
            #[serde(default)]
            entry: Option<QueueEntry>,
            #[serde(default)]
            task_info: Option<TaskInfo>,
        }
        // 2.14 adds get_task_info, which tells whose task it is without another call.
        let r: R = self
            .call_at(
                "queues.get_next_task",
                "2.14",
                &json!({ "queue": queue, "get_task_info": true }),
            )
            .await?;
        Ok(r.entry.map(|entry| NextTask {
            entry,
            task_info: r.task_info,
        }))
    }

    /// Appends a task to a queue (does not change the task's status).
    pub async fn queues_add_task(&self, queue: &str, task: &str) -> Result<()> {
        let _: Value = self
            .call("queues.add_task", &json!({ "queue": queue, "task": task }))
            .await?;
        Ok(())
    }

    /// Removes a task from a queue; returns how many entries were removed.
    pub async fn queues_remove_task(&self, queue: &str, task: &str) -> Result<u32> {
        #[derive(serde::Deserialize)]
        struct R {
            #[serde(default)]
            removed: u32,
        }
        Ok(self
            .call::<_, R>(
                "queues.remove_task",
                &json!({ "queue": queue, "task": task }),
            )
            .await?
            .removed)
    }

    // === tasks ===

    /// `tasks.get_by_id`: the whole task document ([`crate::codes::INVALID_TASK_ID`] when there is none).
    pub async fn tasks_get_by_id(&self, task: &str) -> Result<Task> {
        #[derive(serde::Deserialize)]
        struct R {
            task: Task,
        }
        Ok(self
            .call::<_, R>("tasks.get_by_id", &json!({ "task": task }))
            .await?
            .task)
    }

    /// `tasks.get_all`: the tasks matching the filters (ask for `only_fields` to keep answers small).
    pub async fn tasks_get_all(&self, req: &TasksGetAll) -> Result<Vec<Task>> {
        #[derive(serde::Deserialize)]
        struct R {
            tasks: Vec<Task>,
        }
        Ok(self.call::<_, R>("tasks.get_all", req).await?.tasks)
    }

    /// `tasks.enqueue`: queues the task (see [`Enqueue`]); sent at 2.31 when `update_execution_queue` is set.
    pub async fn tasks_enqueue(&self, req: &Enqueue) -> Result<Enqueued> {
        // queue_name needs 2.19 and update_execution_queue 2.31; plain enqueues stay on the default version.
        if req.update_execution_queue.is_some() {
            self.call_at("tasks.enqueue", "2.31", req).await
        } else {
            self.call("tasks.enqueue", req).await
        }
    }

    /// `tasks.dequeue`: takes the task out of its queue (see [`Dequeue`]); sent at 2.26 when `new_status` or
    /// `remove_from_all_queues` is set.
    pub async fn tasks_dequeue(&self, req: &Dequeue) -> Result<Dequeued> {
        if req.new_status.is_some() || req.remove_from_all_queues {
            self.call_at("tasks.dequeue", "2.26", req).await
        } else {
            self.call("tasks.dequeue", req).await
        }
    }

    /// `tasks.update`: sets plain fields, with no state-machine check.
    pub async fn tasks_update(&self, req: &TaskUpdate) -> Result<Updated> {
        self.call("tasks.update", req).await
    }

    /// Sets only `status_message` (what users see while a pod is pending), with no status change.
    pub async fn tasks_set_status_message(&self, task: &str, message: &str) -> Result<Updated> {
        self.tasks_update(&TaskUpdate {
            task: task.into(),
            status_message: Some(message.into()),
            ..Default::default()
        })
        .await
    }

    /// `tasks.started`: → in_progress (stamps `started`).
    pub async fn tasks_started(&self, req: &StatusChange) -> Result<Updated> {
        self.call("tasks.started", req).await
    }

    /// `tasks.stopped`: → stopped, what a worker calls once it has stopped a task it was asked to abort.
    pub async fn tasks_stopped(&self, req: &StatusChange) -> Result<Updated> {
        self.call("tasks.stopped", req).await
    }

    /// `tasks.failed`: → failed (with `force` from any status, as the agent does when a task cannot run).
    pub async fn tasks_failed(&self, req: &StatusChange) -> Result<Updated> {
        self.call("tasks.failed", req).await
    }

    /// Abort (`tasks.stop`): a queued or unattended task stops at once; a running one gets `status_message:
    /// "stopping"` for its worker to act on.
    pub async fn tasks_stop(&self, req: &StatusChange) -> Result<Updated> {
        self.call("tasks.stop", req).await
    }

    /// Abort many at once, as the web UI does (`tasks.stop_many`): per-id results, failures listed not raised.
    pub async fn tasks_stop_many(
        &self,
        ids: &[String],
        status_reason: Option<&str>,
        force: bool,
    ) -> Result<StopMany> {
        let mut body = json!({ "ids": ids, "force": force });
        if let Some(reason) = status_reason {
            body["status_reason"] = json!(reason);
        }
        self.call("tasks.stop_many", &body).await
    }

    /// `tasks.edit`: replaces or merges whole fields (see [`TaskEdit`]).
    pub async fn tasks_edit(&self, req: &TaskEdit) -> Result<Updated> {
        self.call("tasks.edit", req).await
    }

    /// Adds or replaces hyperparameters (section `properties` may change on any status).
    pub async fn tasks_edit_hyper_params(
        &self,
        task: &str,
        items: &[HyperParamItem],
        force: bool,
    ) -> Result<()> {
        let body = json!({ "task": task, "hyperparams": items, "force": force });
        let _: Value = self.call("tasks.edit_hyper_params", &body).await?;
        Ok(())
    }

    // === events ===

    /// Task console lines (`events.add_batch`). An empty batch is refused by the server (400/17), so it is not
    /// sent: `Ok` with nothing added.
    pub async fn events_add_log_batch(&self, events: &[LogEvent]) -> Result<EventsAdded> {
        if events.is_empty() {
            return Ok(EventsAdded::default());
        }
        self.call("events.add_batch", events).await
    }

    /// The newest `batch_size` console lines of a task, newest first (`events.get_task_log` at 2.9).
    pub async fn events_get_task_log(&self, task: &str, batch_size: u32) -> Result<TaskLog> {
        let body = json!({ "task": task, "batch_size": batch_size });
        self.call_at("events.get_task_log", "2.9", &body).await
    }

    // === workers ===

    /// `workers.register`: announces the worker and its queues (an unknown queue id is
    /// [`crate::codes::INVALID_QUEUE_ID`]).
    pub async fn workers_register(&self, req: &WorkerRegister) -> Result<()> {
        let _: Value = self.call("workers.register", req).await?;
        Ok(())
    }

    /// `workers.unregister`: the worker leaves the workers list at once instead of timing out.
    pub async fn workers_unregister(&self, worker: &str) -> Result<()> {
        let _: Value = self
            .call("workers.unregister", &json!({ "worker": worker }))
            .await?;
        Ok(())
    }

    /// `workers.status_report`: the heartbeat that keeps the worker listed (see [`StatusReport`]).
    pub async fn workers_status_report(&self, req: &StatusReport) -> Result<()> {
        let _: Value = self.call("workers.status_report", req).await?;
        Ok(())
    }

    /// Enterprise-only. Returns `Ok(false)` when the server does not have the endpoint (open-source server), so
    /// callers can report unconditionally.
    pub async fn workers_cluster_report(&self, req: &ClusterReport) -> Result<bool> {
        match self.call::<_, Value>("workers.cluster_report", req).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_endpoint_missing() => {
                tracing::debug!(error = %e, "server has no workers.cluster_report (not enterprise)");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

fn log_retry(err: &Error, delay: Duration) {
    tracing::warn!(endpoint = err.endpoint(), error = %err, retry_in_ms = delay.as_millis() as u64, "transient ClearML API failure, retrying");
}
