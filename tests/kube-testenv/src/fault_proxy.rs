//! [`FaultProxy`]: a plain-HTTP proxy in front of a [`TestEnv`]'s real kube-apiserver that can cut the API off
//! ([`FaultProxy::cut`], an outage) or answer chosen requests with an apiserver error itself
//! ([`FaultProxy::inject`]: 409, 422, 429, 5xx, ... as a Kubernetes `Status`), and counts what reached it
//! ([`FaultProxy::seen`]). Every fault is switched by the test, never by a timer, so outage tests are deterministic.
//!
//! Requests are forwarded as they come (method, path and query, headers with `Authorization`, body), both ways
//! streamed, so `?watch=true` streams flow event by event. Protocol upgrades (`exec`, `attach`, `portforward`) are
//! not supported.

use std::{
    io,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use http::{Method, Request, Response};
use hyper::body::Incoming;
use hyper_util::{
    client::legacy::{self, connect::Connect},
    rt::{TokioExecutor, TokioIo},
};
use kube::{
    Client, Config,
    client::ConfigExt as _,
    config::{KubeConfigOptions, Kubeconfig, KubeconfigError},
};
use tokio::{
    net::{TcpListener, TcpStream},
    task::{JoinHandle, JoinSet},
};

use crate::TestEnv;

mod forward;

use forward::{ProxyBody, Upstream, forward, status_response};

/// Errors starting the proxy or building a client for it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Binding the loopback listener failed.
    #[error("binding the fault proxy's listener: {0}")]
    Bind(#[source] io::Error),
    /// A kubeconfig (the control plane's, or the proxy's) could not be read.
    #[error("reading a kubeconfig for the fault proxy: {0}")]
    Kubeconfig(#[from] KubeconfigError),
    /// Building the upstream TLS connector or a client failed.
    #[error("building a kube client for the fault proxy: {0}")]
    Kube(#[from] kube::Error),
}

/// An apiserver error the proxy answers itself, instead of forwarding, for the next `times` matching requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Only requests with this method; `None`: any method.
    pub method: Option<Method>,
    /// Only requests whose path and query (`/api/v1/namespaces/ns/pods?watch=true&...`) contain this.
    pub path_contains: String,
    /// The HTTP status to answer, 400 to 599; the `Status` body's `reason` follows from it (see
    /// [`FaultProxy::inject`]).
    pub status: u16,
    /// How many matching requests get the fault; then it is gone.
    pub times: u32,
}

/// A running fault proxy; dropping it stops it and closes every connection.
///
/// Start one per test (it lives on the calling test's tokio runtime): `FaultProxy::start(ctx.env)`.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    admin_token: String,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

/// What the accept loop, the connections and the test's handle share.
#[derive(Debug, Default)]
struct Shared {
    /// The outage flag and the live connections, under one lock: a connection is either accepted before a cut
    /// (and then aborted by it) or dropped at accept, never missed in between.
    conns: Mutex<Conns>,
    /// Injected faults, checked in order.
    faults: Mutex<Vec<Fault>>,
    /// Every request that reached the proxy (forwarded or faulted): method and path with query.
    seen: Mutex<Vec<(Method, String)>>,
    /// Connections accepted and dropped during an outage.
    dropped: Mutex<u64>,
}

#[derive(Debug, Default)]
struct Conns {
    cut: bool,
    tasks: JoinSet<()>,
}

/// The service's error while the proxy is cut: hyper then closes the connection without an answer.
#[derive(Debug, thiserror::Error)]
#[error("the fault proxy is cut (simulated outage)")]
struct Outage;

/// Lock a mutex, ignoring poisoning: a test that panicked while holding it has failed already, and the data (flags,
/// counters, lists) stays consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FaultProxy {
    /// Bind `127.0.0.1:0` and start forwarding to `env`'s apiserver, over TLS trusting [`TestEnv::ca_pem`].
    pub async fn start(env: &TestEnv) -> Result<Self, Error> {
        let kubeconfig = Kubeconfig::from_yaml(env.kubeconfig_yaml())?;
        // kube's own connector: the same rustls set-up (ring provider, the kubeconfig's CA) as `env.client()`.
        let config =
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        let connector = config.rustls_https_connector()?;
        let upstream = Upstream {
            server: env.server().trim_end_matches('/').to_owned(),
            client: legacy::Client::builder(TokioExecutor::new()).build(connector),
        };
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(Error::Bind)?;
        let addr = listener.local_addr().map_err(Error::Bind)?;
        let shared = Arc::new(Shared::default());
        let accept = tokio::spawn(accept_loop(listener, shared.clone(), upstream));
        tracing::debug!(%addr, upstream = env.server(), "fault proxy listening");
        Ok(Self {
            addr,
            admin_token: env.admin_token().to_owned(),
            shared,
            accept,
        })
    }

    /// The proxy's URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig pointing at the proxy (plain http, no CA) with `token` as bearer token, namespace `default`.
    pub fn kubeconfig_yaml(&self, token: &str) -> String {
        let server = self.url();
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fault-proxy\n  cluster:\n    server: {server}\n\
             users:\n- name: fault-proxy-user\n  user:\n    token: {token}\ncontexts:\n- name: fault-proxy\n  \
             context:\n    cluster: fault-proxy\n    user: fault-proxy-user\n    namespace: default\n\
             current-context: fault-proxy\n"
        )
    }

    /// The kube [`Config`] of [`kubeconfig_yaml`](Self::kubeconfig_yaml), to adjust before building a client.
    ///
    /// kube's default `default_retry: true` retries 429, 503 and 504 itself (up to 15 times, honouring
    /// `Retry-After`), so a client built from it sees those faults only after that many; set it to `false` to see
    /// each one.
    pub async fn config(&self, token: &str) -> Result<Config, Error> {
        let kubeconfig = Kubeconfig::from_yaml(&self.kubeconfig_yaml(token))?;
        Ok(Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?)
    }

    /// A client through the proxy authenticated with `token`, configured as the agent's would be (defaults).
    pub async fn client(&self, token: &str) -> Result<Client, Error> {
        Ok(Client::try_from(self.config(token).await?)?)
    }

    /// A client through the proxy authenticated as the control plane's admin (`system:masters`).
    pub async fn admin_client(&self) -> Result<Client, Error> {
        self.client(&self.admin_token).await
    }

    /// Start an outage: every open connection is closed (requests and watches in flight end with an error), and
    /// every new connection is accepted and closed at once, until [`restore`](Self::restore).
    ///
    /// When this returns, every connection that was open is closed, so a request issued after it fails.
    pub async fn cut(&self) {
        let mut tasks = {
            let mut conns = lock(&self.shared.conns);
            conns.cut = true;
            std::mem::take(&mut conns.tasks)
        };
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        tracing::debug!(addr = %self.addr, "fault proxy cut");
    }

    /// End an outage: connections accepted from now on are served again.
    pub fn restore(&self) {
        lock(&self.shared.conns).cut = false;
        tracing::debug!(addr = %self.addr, "fault proxy restored");
    }

    /// Whether the proxy is in an outage ([`cut`](Self::cut) without [`restore`](Self::restore) since).
    pub fn is_cut(&self) -> bool {
        lock(&self.shared.conns).cut
    }

    /// Queue a fault: the next `fault.times` requests that match it are answered by the proxy with `fault.status`
    /// and a Kubernetes `Status` body, not forwarded. A request gets the first queued fault it matches.
    ///
    /// The body's `reason`: 409 `AlreadyExists` for a POST, `Conflict` otherwise; 422 `Invalid`; 429
    /// `TooManyRequests` (with `Retry-After: 1`); 500 `InternalError`; 503 `ServiceUnavailable`; 504 `Timeout`;
    /// 400 `BadRequest`, 401 `Unauthorized`, 403 `Forbidden`, 404 `NotFound`, 405 `MethodNotAllowed`, 410
    /// `Expired`, 413 `RequestEntityTooLarge`, 415 `UnsupportedMediaType`; any other 4xx `BadRequest`, 5xx
    /// `InternalError`.
    ///
    /// # Panics
    /// When `fault.status` is not in 400..=599 (a mistake in the test).
    pub fn inject(&self, fault: Fault) {
        assert!(
            (400..=599).contains(&fault.status),
            "FaultProxy::inject: status {} is not an HTTP error status (400..=599)",
            fault.status
        );
        if fault.times > 0 {
            lock(&self.shared.faults).push(fault);
        }
    }

    /// Drop every queued fault (those not used up yet).
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// How many requests with `method` (`None`: any) whose path and query contain `path_contains` reached the proxy,
    /// forwarded or faulted. Requests sent during an outage never reach it (their connections are dropped).
    pub fn seen(&self, method: Option<Method>, path_contains: &str) -> u64 {
        let seen = lock(&self.shared.seen);
        let n = seen
            .iter()
            .filter(|(m, p)| matches(method.as_ref(), path_contains, m, p))
            .count();
        u64::try_from(n).unwrap_or(u64::MAX)
    }

    /// Every request that reached the proxy, in order: method and path with query.
    pub fn requests(&self) -> Vec<(Method, String)> {
        lock(&self.shared.seen).clone()
    }

    /// How many connections were accepted and dropped during outages (clients trying to reach the API).
    pub fn dropped_connections(&self) -> u64 {
        *lock(&self.shared.dropped)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Dropping the set aborts every connection task (they hold `shared`, so it would not drop on its own).
        drop(std::mem::take(&mut lock(&self.shared.conns).tasks));
    }
}

fn matches(want: Option<&Method>, path_contains: &str, method: &Method, path: &str) -> bool {
    want.is_none_or(|m| m == method) && path.contains(path_contains)
}

async fn accept_loop<C>(listener: TcpListener, shared: Arc<Shared>, upstream: Upstream<C>)
where
    C: Connect + Clone + Send + Sync + 'static,
{
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Transient (e.g. out of file descriptors); the next accept may succeed.
                tracing::warn!(error = %e, "fault proxy: accept failed");
                tokio::task::yield_now().await;
                continue;
            }
        };
        let mut conns = lock(&shared.conns);
        if conns.cut {
            drop(conns);
            drop(stream);
            *lock(&shared.dropped) += 1;
            continue;
        }
        // Reap finished connections so the set does not grow over a long test.
        while conns.tasks.try_join_next().is_some() {}
        conns
            .tasks
            .spawn(serve(stream, shared.clone(), upstream.clone()));
    }
}

async fn serve<C>(stream: TcpStream, shared: Arc<Shared>, upstream: Upstream<C>)
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let (shared, upstream) = (shared.clone(), upstream.clone());
        async move { handle(req, &shared, &upstream).await }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(e) = served {
        tracing::debug!(error = %e, "fault proxy: connection ended with an error");
    }
}

async fn handle<C>(
    req: Request<Incoming>,
    shared: &Shared,
    upstream: &Upstream<C>,
) -> Result<Response<ProxyBody>, Outage>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    // A connection accepted before a cut may still deliver a request while the cut aborts it.
    if lock(&shared.conns).cut {
        return Err(Outage);
    }
    let method = req.method().clone();
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    lock(&shared.seen).push((method.clone(), path.clone()));
    if let Some(status) = take_fault(shared, &method, &path) {
        tracing::debug!(%method, %path, status, "fault proxy: injected fault");
        return Ok(status_response(
            status,
            &method,
            &path,
            "fault injected by the test",
        ));
    }
    Ok(forward(req, &path, upstream).await)
}

/// The status of the first queued fault matching the request, using it up.
fn take_fault(shared: &Shared, method: &Method, path: &str) -> Option<u16> {
    let mut faults = lock(&shared.faults);
    let i = faults
        .iter()
        .position(|f| matches(f.method.as_ref(), &f.path_contains, method, path))?;
    let status = faults[i].status;
    faults[i].times -= 1;
    if faults[i].times == 0 {
        faults.remove(i);
    }
    Some(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_used_in_order_then_gone() {
        let shared = Shared::default();
        let fault = |method, path: &str, status, times| Fault {
            method,
            path_contains: path.to_owned(),
            status,
            times,
        };
        lock(&shared.faults).push(fault(Some(Method::POST), "/pods", 409, 1));
        lock(&shared.faults).push(fault(None, "/pods", 500, 2));
        let post = |p| take_fault(&shared, &Method::POST, p);
        assert_eq!(take_fault(&shared, &Method::GET, "/api/v1/pods"), Some(500));
        assert_eq!(post("/api/v1/namespaces/a/pods"), Some(409));
        assert_eq!(post("/api/v1/namespaces/a/pods"), Some(500));
        assert_eq!(post("/api/v1/namespaces/a/pods"), None);
        assert_eq!(post("/api/v1/secrets"), None);
    }
}
