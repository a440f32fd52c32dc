//! The HTTP layer: one axum fallback route that parses `/{version}/{service}.{action}`, authenticates, decodes
//! the body, runs the call against the store and wraps the result in ClearML's envelope.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::{self, Authenticated, Claims};
use crate::endpoints::{self, Version};
use crate::error::{ApiError, Error};
use crate::requests as rq;
use crate::store::{Identity, Store};
use crate::time::Ts;
use crate::wire::{Meta, envelope, header_str, parse_path, request_data, session_cookie};

/// Access key of the default credentials (also what `clearml-k8s-agent emulator` uses unless told otherwise).
pub const DEFAULT_ACCESS_KEY: &str = "EMULATOR_ACCESS_KEY";
/// Secret key of the default credentials.
pub const DEFAULT_SECRET_KEY: &str = "emulator-secret-key";
/// Largest request body accepted.
const MAX_BODY_BYTES: usize = 64 << 20;
/// Longest token a client may ask for (one year), as on the server.
const MAX_EXPIRATION_SEC: i64 = 31_536_000;

/// How to run an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Address to listen on; `127.0.0.1:0` picks a free port (tests).
    pub bind: SocketAddr,
    /// Accepted (access key, secret key) pairs.
    pub credentials: Vec<(String, String)>,
    /// Loaded at start when it exists, written on shutdown.
    pub state_file: Option<PathBuf>,
    /// Lifetime of tokens when the client does not ask for one. Default 30 days, like the server: clients refresh
    /// when fewer than 12 h remain, so anything shorter makes them log in before every call.
    pub token_ttl_secs: i64,
    /// The `api_version` claim: the newest version served (2.31 = clearml-server 2.0).
    pub api_version: String,
    /// The `server_version` claim and `server.info` version. `None`: [`OPEN_SOURCE_SERVER_VERSION`] for the
    /// `basic` feature set, [`ENTERPRISE_SERVER_VERSION`] otherwise.
    pub server_version: Option<String>,
    /// The `feature_set` claim. `basic` is the open-source server; anything else also serves the enterprise
    /// endpoints (`workers.cluster_report`, `workers.cluster_unregister`).
    pub feature_set: String,
    /// `services.tasks.non_responsive_tasks_watchdog.threshold_sec`: running tasks with no update for this long
    /// are stopped ("Forced stop (non-responsive)"). `None` disables the watchdog.
    pub non_responsive_task_timeout_secs: Option<i64>,
}

/// What the open-source feature set reports as `server_version` (clearml-server 2.0).
pub const OPEN_SOURCE_SERVER_VERSION: &str = "2.0.0";
/// What the enterprise feature set reports. clearml-agent's k8s glue takes its enterprise path (no stop before
/// re-enqueueing into the pending queue, `update_execution_queue: false`) from feature set != basic and server
/// >= 3.22.3 (`glue/k8s.py` `_server_supports_same_state_transition`).
pub const ENTERPRISE_SERVER_VERSION: &str = "3.24.0";
/// The server's default `threshold_sec` (`config/default/services/tasks.conf`): two hours.
pub const DEFAULT_NON_RESPONSIVE_TASK_TIMEOUT_SECS: i64 = 7200;

impl EmulatorConfig {
    /// The `server_version` this configuration reports.
    pub fn effective_server_version(&self) -> &str {
        match &self.server_version {
            Some(v) => v,
            None if self.feature_set == "basic" => OPEN_SOURCE_SERVER_VERSION,
            None => ENTERPRISE_SERVER_VERSION,
        }
    }

    /// Whether the server this configuration stands for enqueues a task that is already queued (see
    /// [`Store::enqueues_queued`]): open source from 1.17.0, Enterprise from 3.22.3. A version that does not parse
    /// counts as new.
    pub fn enqueues_queued_tasks(&self) -> bool {
        let first = if self.feature_set == "basic" {
            (1, 17, 0)
        } else {
            (3, 22, 3)
        };
        release(self.effective_server_version()).is_none_or(|found| found >= first)
    }
}

/// `major.minor.patch` of a server version (`2.0.0`, `3.22.3-1234`); missing parts are 0.
fn release(version: &str) -> Option<(u32, u32, u32)> {
    let mut parts = version.split('.').map(|part| {
        let digits = part.bytes().take_while(u8::is_ascii_digit).count();
        part[..digits].parse::<u32>().ok()
    });
    let major = parts.next()??;
    Some((
        major,
        parts.next().flatten().unwrap_or(0),
        parts.next().flatten().unwrap_or(0),
    ))
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            credentials: vec![(DEFAULT_ACCESS_KEY.into(), DEFAULT_SECRET_KEY.into())],
            state_file: None,
            token_ttl_secs: 30 * 24 * 3600,
            api_version: "2.31".into(),
            server_version: None,
            feature_set: "basic".into(),
            non_responsive_task_timeout_secs: Some(DEFAULT_NON_RESPONSIVE_TASK_TIMEOUT_SECS),
        }
    }
}

/// A scripted failure: the next `remaining` calls to `endpoint` answer `code`/`subcode` (tests of client retries).
#[derive(Debug, Clone)]
struct Fault {
    endpoint: String,
    code: u16,
    remaining: u32,
}

/// State shared by every request.
struct Shared {
    config: EmulatorConfig,
    max_version: Version,
    store: Mutex<Store>,
    /// HMAC key for tokens; replacing it revokes every token issued so far.
    token_secret: Mutex<Vec<u8>>,
    calls: Mutex<BTreeMap<String, u64>>,
    faults: Mutex<Vec<Fault>>,
}

/// Poison only means another request panicked mid-call; the data is still the best we have, so keep serving.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn random_secret() -> Vec<u8> {
    (0..32).map(|_| fastrand::u8(..)).collect()
}

/// An emulator: state plus configuration, not yet bound to a socket.
#[derive(Clone)]
pub struct Emulator {
    shared: Arc<Shared>,
}

impl Emulator {
    /// Builds the state, loading `config.state_file` when it exists.
    pub fn new(config: EmulatorConfig) -> Result<Self, Error> {
        let identity = Identity::default();
        let store = match &config.state_file {
            Some(path) if path.exists() => {
                let text = std::fs::read_to_string(path).map_err(|source| Error::ReadState {
                    path: path.clone(),
                    source,
                })?;
                let mut store: Store =
                    serde_json::from_str(&text).map_err(|source| Error::ParseState {
                        path: path.clone(),
                        source,
                    })?;
                store.identity = identity;
                store
            }
            _ => Store::new(identity, Ts::now()),
        };
        let mut store = store;
        store.enqueues_queued = config.enqueues_queued_tasks();
        let max_version = Version::parse(&config.api_version).unwrap_or(Version(2, 31));
        Ok(Emulator {
            shared: Arc::new(Shared {
                config,
                max_version,
                store: Mutex::new(store),
                token_secret: Mutex::new(random_secret()),
                calls: Mutex::new(BTreeMap::new()),
                faults: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The axum router (usable without a socket, e.g. with `tower::ServiceExt::oneshot`).
    pub fn router(&self) -> Router {
        Router::new()
            .fallback(handle)
            // Event batches (logs, scalars) can exceed axum's 2 MB default; the server accepts them.
            .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(self.shared.clone())
    }

    /// Binds `config.bind` and serves in a background task until the handle is shut down or dropped.
    pub async fn start(config: EmulatorConfig) -> Result<EmulatorHandle, Error> {
        let emulator = Emulator::new(config)?;
        let addr = emulator.shared.config.bind;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        let (tx, rx) = oneshot::channel::<()>();
        let server = emulator.clone();
        let task = tokio::spawn(async move {
            server
                .serve(listener, async move {
                    // A dropped sender also means "stop": a test that forgets to shut down does not leak a server.
                    let _ = rx.await;
                })
                .await
        });
        Ok(EmulatorHandle {
            base_url: format!("http://{local}"),
            addr: local,
            emulator,
            shutdown: Some(tx),
            task,
        })
    }

    /// Serves on `listener` until `shutdown` resolves, then saves the state file (if configured).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(Error::Serve)?;
        self.save()
    }

    /// Writes the state file now (no-op without one).
    pub fn save(&self) -> Result<(), Error> {
        let Some(path) = &self.shared.config.state_file else {
            return Ok(());
        };
        let text = serde_json::to_string_pretty(&*lock(&self.shared.store)).map_err(|source| {
            Error::ParseState {
                path: path.clone(),
                source,
            }
        })?;
        std::fs::write(path, text).map_err(|source| Error::WriteState {
            path: path.clone(),
            source,
        })?;
        tracing::info!(path = %path.display(), "emulator state saved");
        Ok(())
    }

    /// How many calls `endpoint` has received (any outcome).
    pub fn call_count(&self, endpoint: &str) -> u64 {
        lock(&self.shared.calls).get(endpoint).copied().unwrap_or(0)
    }

    /// Invalidates every token issued so far (clients then get 401/30 and must log in again).
    pub fn revoke_tokens(&self) {
        *lock(&self.shared.token_secret) = random_secret();
    }

    /// Makes the next `count` calls to `endpoint` fail with `code`/0 (e.g. 503) before reaching the store.
    pub fn fail_next(&self, endpoint: &str, code: u16, count: u32) {
        lock(&self.shared.faults).push(Fault {
            endpoint: endpoint.into(),
            code,
            remaining: count,
        });
    }

    /// A token for the emulator's user that expires `exp_in_secs` from now (negative: already expired).
    pub fn issue_token(&self, exp_in_secs: i64) -> String {
        let now = Ts::now();
        let claims = self.claims(now, now.plus_secs(exp_in_secs).unix_secs());
        auth::issue(&lock(&self.shared.token_secret), &claims)
    }

    /// Runs `f` on the store (inspection and seeding in tests).
    pub fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        f(&mut lock(&self.shared.store))
    }

    fn claims(&self, now: Ts, exp: i64) -> Claims {
        let c = &self.shared.config;
        Claims {
            identity: lock(&self.shared.store).identity.clone(),
            iat: now.unix_secs(),
            exp,
            session_id: format!("{:032x}", fastrand::u128(..)),
            api_version: c.api_version.clone(),
            server_version: c.effective_server_version().to_owned(),
            feature_set: c.feature_set.clone(),
            auth_type: "Bearer".into(),
        }
    }
}

/// A running emulator. Dropping it stops the server (without saving); [`EmulatorHandle::shutdown`] stops it
/// gracefully and saves the state file.
pub struct EmulatorHandle {
    base_url: String,
    addr: SocketAddr,
    emulator: Emulator,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), Error>>,
}

impl EmulatorHandle {
    /// `http://127.0.0.1:<port>`, what clients take as the API host.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound socket address (with the real port when port 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The emulator behind the socket (call counts, fault injection, store access).
    pub fn emulator(&self) -> &Emulator {
        &self.emulator
    }

    /// Stops accepting, finishes in-flight calls, saves the state file.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result,
            Err(join) => Err(Error::Serve(std::io::Error::other(join))),
        }
    }
}

impl std::ops::Deref for EmulatorHandle {
    type Target = Emulator;
    fn deref(&self) -> &Emulator {
        &self.emulator
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method == Method::OPTIONS {
        return StatusCode::OK.into_response();
    }
    let trx = header_str(&headers, &["x-clearml-trx", "x-trains-trx"])
        .unwrap_or("")
        .to_owned();
    let path = uri.path();
    let Some((version, name)) = parse_path(path) else {
        let meta = Meta {
            trx,
            endpoint: None,
            requested: None,
            actual: None,
        };
        tracing::debug!(path, result_code = 400, "malformed request path");
        return envelope(
            &meta,
            Err(ApiError::bad_request(format!(
                "Invalid request path {path}"
            ))),
            None,
        );
    };
    let requested = match version {
        Some(v) => match Version::parse(v) {
            Some(v) => v,
            None => {
                let meta = Meta {
                    trx,
                    endpoint: Some(name),
                    requested: Some(v.to_owned()),
                    actual: None,
                };
                let err = ApiError::new(
                    400,
                    2,
                    format!("Request path has invalid version: version={v}"),
                );
                return envelope(&meta, Err(err), None);
            }
        },
        None => shared.max_version,
    };
    *lock(&shared.calls).entry(name.to_owned()).or_insert(0) += 1;
    let enterprise = shared.config.feature_set != "basic";
    let actual = endpoints::resolve(name, requested, enterprise);
    let mut meta = Meta {
        trx,
        endpoint: Some(name),
        requested: Some(requested.to_string()),
        actual: actual.map(|v| v.to_string()),
    };
    let mut cookie = None;
    let result = match actual {
        None => Err(ApiError::endpoint_not_found(name, &requested.to_string())),
        Some(_) => {
            let r = call(&shared, name, &headers, &body, uri.query());
            r.map(|(data, token)| {
                cookie = token;
                data
            })
        }
    };
    if actual.is_none() {
        meta.actual = None;
    }
    match &result {
        Ok(_) => tracing::debug!(endpoint = name, result_code = 200, "call"),
        Err(e) => {
            tracing::debug!(endpoint = name, result_code = e.code, result_subcode = e.subcode, msg = %e.msg, "call")
        }
    }
    envelope(&meta, result, cookie.as_deref())
}

/// Authentication, body decoding, scripted faults, then the call itself. Returns the data and, for
/// `auth.login`, the token to set as the session cookie.
fn call(
    shared: &Shared,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
    query: Option<&str>,
) -> Result<(Value, Option<String>), ApiError> {
    let now = Ts::now();
    let authorization = header_str(headers, &["authorization"]);
    let secret = lock(&shared.token_secret).clone();
    let authn = auth::authenticate(
        authorization,
        session_cookie(headers),
        &shared.config.credentials,
        &secret,
        now,
    )?;
    let data = request_data(headers, body, query)?;
    {
        let mut faults = lock(&shared.faults);
        if let Some(f) = faults
            .iter_mut()
            .find(|f| f.endpoint == name && f.remaining > 0)
        {
            f.remaining -= 1;
            return Err(ApiError::new(
                f.code,
                0,
                format!("Injected failure for {name}"),
            ));
        }
    }
    if name == "auth.login" {
        let token = login(shared, &authn, data, now, &secret)?;
        return Ok((json!({ "token": token }), Some(token)));
    }
    if !data.is_object() && name != "events.add_batch" {
        return Err(ApiError::validation("request data must be a JSON object"));
    }
    let mut store = lock(&shared.store);
    if let Some(threshold) = shared.config.non_responsive_task_timeout_secs {
        store.stop_non_responsive_tasks(now, threshold);
    }
    let ctx = endpoints::CallContext {
        now,
        worker: header_str(headers, &["x-clearml-worker", "x-trains-worker"]).unwrap_or(""),
        server_version: shared.config.effective_server_version(),
        api_version: &shared.config.api_version,
    };
    endpoints::dispatch(&mut store, name, data, &ctx).map(|v| (v, None))
}

fn login(
    shared: &Shared,
    authn: &Authenticated,
    data: Value,
    now: Ts,
    secret: &[u8],
) -> Result<String, ApiError> {
    let req: rq::Login = serde_json::from_value(data).map_err(ApiError::validation)?;
    let ttl = match req.expiration_sec {
        Some(s) if s > MAX_EXPIRATION_SEC => {
            return Err(ApiError::validation(format!(
                "Expiration time exceeds the maximum allowed ({MAX_EXPIRATION_SEC}): expiration_sec={s}"
            )));
        }
        Some(s) if s > 0 => s,
        _ => shared.config.token_ttl_secs,
    };
    let c = &shared.config;
    let identity = match authn {
        Authenticated::Bearer(claims) => claims.identity.clone(),
        Authenticated::Basic { .. } => lock(&shared.store).identity.clone(),
    };
    let claims = Claims {
        identity,
        iat: now.unix_secs(),
        exp: now.plus_secs(ttl).unix_secs(),
        session_id: format!("{:032x}", fastrand::u128(..)),
        api_version: c.api_version.clone(),
        server_version: c.effective_server_version().to_owned(),
        feature_set: c.feature_set.clone(),
        auth_type: "Bearer".into(),
    };
    Ok(auth::issue(secret, &claims))
}
