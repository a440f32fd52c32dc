//! The ClearML emulator served twice over one state: the agent's listener counts every request by endpoint (with
//! the time of the first of each), the driver's does not, so the figures are the agent's own requests.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use clearml_emulator::{Emulator, EmulatorConfig};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum CountingError {
    /// The emulator refused its config.
    #[error("starting the ClearML emulator: {0}")]
    Emulator(#[from] clearml_emulator::Error),
    /// A loopback port could not be bound.
    #[error("binding a loopback port for the emulator: {0}")]
    Bind(#[source] std::io::Error),
}

/// One endpoint's requests.
#[derive(Debug, Clone, Copy)]
pub struct EndpointCount {
    /// How many.
    pub count: u64,
    /// When the first arrived.
    pub first: Instant,
}

/// Requests per endpoint on the agent's listener.
#[derive(Debug, Default)]
pub struct Counts {
    by_endpoint: Mutex<BTreeMap<String, EndpointCount>>,
    /// First request per endpoint since the last [`Counts::restart_firsts`] (e.g. the first pop of a burst).
    firsts: Mutex<BTreeMap<String, Instant>>,
}

impl Counts {
    fn record(&self, endpoint: &str) {
        let now = Instant::now();
        let mut map = self
            .by_endpoint
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.entry(endpoint.to_string())
            .and_modify(|c| c.count += 1)
            .or_insert(EndpointCount {
                count: 1,
                first: now,
            });
        drop(map);
        let mut firsts = self.firsts.lock().unwrap_or_else(PoisonError::into_inner);
        firsts.entry(endpoint.to_string()).or_insert(now);
    }

    /// Forget the first-request times (counts go on): [`Counts::first`] then answers for requests from now on.
    pub fn restart_firsts(&self) {
        self.firsts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// A copy of the counts now.
    pub fn snapshot(&self) -> BTreeMap<String, EndpointCount> {
        self.by_endpoint
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// All requests so far.
    pub fn total(&self) -> u64 {
        self.snapshot().values().map(|c| c.count).sum()
    }

    /// When `endpoint` was first called since the start or the last [`Counts::restart_firsts`], if it was.
    pub fn first(&self, endpoint: &str) -> Option<Instant> {
        self.firsts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(endpoint)
            .copied()
    }
}

/// Per-endpoint differences between two snapshots, largest first.
pub fn delta(
    before: &BTreeMap<String, EndpointCount>,
    after: &BTreeMap<String, EndpointCount>,
) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = after
        .iter()
        .map(|(k, a)| (k.clone(), a.count - before.get(k).map_or(0, |b| b.count)))
        .filter(|(_, n)| *n > 0)
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// A running emulator with its two listeners; stopped when dropped.
pub struct CountedEmulator {
    /// What the agent is pointed at (its requests are counted).
    pub agent_url: String,
    /// What the driver itself calls (not counted).
    pub driver_url: String,
    /// The agent listener's counts.
    pub counts: Arc<Counts>,
    /// The emulator (store access).
    pub emulator: Emulator,
    servers: Vec<JoinHandle<()>>,
}

impl Drop for CountedEmulator {
    fn drop(&mut self) {
        for server in &self.servers {
            server.abort();
        }
    }
}

impl CountedEmulator {
    /// An emulator accepting [`crate::ACCESS_KEY`] / [`crate::SECRET_KEY`], on two loopback ports.
    pub async fn start() -> Result<Self, CountingError> {
        let emulator = Emulator::new(EmulatorConfig {
            credentials: vec![(crate::ACCESS_KEY.into(), crate::SECRET_KEY.into())],
            ..EmulatorConfig::default()
        })?;
        let counts = Arc::new(Counts::default());
        let counted = emulator.router().layer(middleware::from_fn_with_state(
            counts.clone(),
            count_request,
        ));
        let (agent_url, agent_server) = serve(counted).await?;
        let (driver_url, driver_server) = serve(emulator.router()).await?;
        Ok(Self {
            agent_url,
            driver_url,
            counts,
            emulator,
            servers: vec![agent_server, driver_server],
        })
    }
}

async fn serve(router: axum::Router) -> Result<(String, JoinHandle<()>), CountingError> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(CountingError::Bind)?;
    let addr = listener.local_addr().map_err(CountingError::Bind)?;
    let task = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, router).await {
            tracing::warn!(error = %err, "emulator listener stopped");
        }
    });
    Ok((format!("http://{addr}"), task))
}

async fn count_request(
    State(counts): State<Arc<Counts>>,
    request: Request,
    next: Next,
) -> Response {
    counts.record(endpoint_of(request.uri().path()));
    next.run(request).await
}

/// `/v2.31/queues.get_all` → `queues.get_all` (the version prefix is optional, as the server's is).
fn endpoint_of(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_names_without_version_or_slash() {
        assert_eq!(endpoint_of("/v2.31/queues.get_all"), "queues.get_all");
        assert_eq!(endpoint_of("/tasks.enqueue/"), "tasks.enqueue");
        assert_eq!(endpoint_of("/auth.login"), "auth.login");
    }

    #[test]
    fn deltas_largest_first() {
        let counts = Counts::default();
        counts.record("a");
        let before = counts.snapshot();
        for e in ["a", "b", "b", "c"] {
            counts.record(e);
        }
        let d = delta(&before, &counts.snapshot());
        assert_eq!(d, vec![("b".into(), 2), ("a".into(), 1), ("c".into(), 1)]);
        assert_eq!(counts.total(), 5);
        assert!(counts.first("b").is_some() && counts.first("z").is_none());
        counts.restart_firsts();
        assert!(counts.first("b").is_none());
        counts.record("b");
        assert!(counts.first("b").is_some());
        assert_eq!(counts.total(), 6);
    }
}
