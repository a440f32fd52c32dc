//! Prometheus metrics and the agent's HTTP endpoints: `/metrics` (text format), `/healthz` (the process is alive)
//! and `/readyz` (what [`crate::health::Health`] says: started, and ClearML and Kubernetes reachable).
//!
//! Every metric name starts with `clearml_agent_`; the README lists them.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label set `{queue}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// Queue name from the values.
    pub queue: String,
}

/// Label set `{queue, reason}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// Queue name from the values.
    pub queue: String,
    /// A stable reason label (`rejected`, `trap`, `guard`, `pod_rejected`, ...).
    pub reason: String,
}

/// Label set `{policy}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    /// Policy (plugin) name.
    pub policy: String,
}

/// Label set `{phase}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// Pod phase (`Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`).
    pub phase: String,
}

/// Label set `{kind}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// What failed, e.g. an endpoint (`queues.get_next_task`) or an HTTP status class.
    pub kind: String,
}

/// Label set `{dependency}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DependencyLabels {
    /// `clearml` or `kubernetes`.
    pub dependency: String,
}

/// The agent's metrics. Cheap to clone handles; one registry per agent.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Tasks popped from a queue.
    pub tasks_popped: Family<QueueLabels, Counter>,
    /// Pods created (or adopted) for tasks.
    pub tasks_submitted: Family<QueueLabels, Counter>,
    /// Tasks the agent failed, by reason.
    pub tasks_failed: Family<FailureLabels, Counter>,
    /// Time one policy took to evaluate, per policy.
    pub policy_seconds: Family<PolicyLabels, Histogram>,
    /// The agent's task pods by phase (from the pod watch).
    pub pods: Family<PhaseLabels, Gauge>,
    /// ClearML API calls that failed, by endpoint.
    pub clearml_errors: Family<ErrorLabels, Counter>,
    /// Kubernetes API calls that failed, by kind.
    pub kube_errors: Family<ErrorLabels, Counter>,
    /// 1 while this replica dispatches (holds the lease, or runs alone).
    pub leader: Gauge,
    /// Running tasks ClearML has heard nothing from for longer than `taskWatchdog.noUpdateMinutes`, per queue.
    pub tasks_stalled: Family<QueueLabels, Gauge>,
    /// Whether ClearML and the Kubernetes API answer (also what `/readyz` reports).
    pub health: crate::health::Health,
}

fn policy_histogram() -> Histogram {
    // 10 µs .. ~80 ms: Rust policies take ~0.1 ms, interpreted ones a few ms, the deadline is 100 ms.
    Histogram::new(exponential_buckets(1e-5, 2.0, 14))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("clearml_agent");
        let tasks_popped = Family::<QueueLabels, Counter>::default();
        let tasks_submitted = Family::<QueueLabels, Counter>::default();
        let tasks_failed = Family::<FailureLabels, Counter>::default();
        let policy_seconds = Family::<PolicyLabels, Histogram>::new_with_constructor(
            policy_histogram as fn() -> Histogram,
        );
        let pods = Family::<PhaseLabels, Gauge>::default();
        let clearml_errors = Family::<ErrorLabels, Counter>::default();
        let kube_errors = Family::<ErrorLabels, Counter>::default();
        let leader = Gauge::default();
        let tasks_stalled = Family::<QueueLabels, Gauge>::default();
        let dependency_up = Family::<DependencyLabels, Gauge>::default();
        registry.register(
            "tasks_popped",
            "Tasks popped from a ClearML queue",
            tasks_popped.clone(),
        );
        registry.register(
            "tasks_submitted",
            "Task pods created or adopted",
            tasks_submitted.clone(),
        );
        registry.register(
            "tasks_failed",
            "Tasks the agent failed, by reason",
            tasks_failed.clone(),
        );
        registry.register(
            "policy_evaluation_seconds",
            "Time one policy evaluation took",
            policy_seconds.clone(),
        );
        registry.register("pods", "The agent's task pods by phase", pods.clone());
        registry.register(
            "clearml_api_errors",
            "Failed ClearML API calls by endpoint",
            clearml_errors.clone(),
        );
        registry.register(
            "kube_api_errors",
            "Failed Kubernetes API calls by kind",
            kube_errors.clone(),
        );
        registry.register("leader", "1 while this replica dispatches", leader.clone());
        registry.register(
            "tasks_stalled",
            "Running tasks with no update in ClearML for longer than the watchdog's limit",
            tasks_stalled.clone(),
        );
        registry.register(
            "dependency_up",
            "1 while ClearML / the Kubernetes API answer, 0 during an outage",
            dependency_up.clone(),
        );
        Self {
            registry,
            tasks_popped,
            tasks_submitted,
            tasks_failed,
            policy_seconds,
            pods,
            clearml_errors,
            kube_errors,
            leader,
            tasks_stalled,
            health: crate::health::Health::new(dependency_up),
        }
    }

    /// Count a failed task.
    pub fn failed(&self, queue: &str, reason: &str) {
        self.tasks_failed
            .get_or_create(&FailureLabels {
                queue: queue.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Count one per-queue event.
    pub fn per_queue(family: &Family<QueueLabels, Counter>, queue: &str) {
        family
            .get_or_create(&QueueLabels {
                queue: queue.to_string(),
            })
            .inc();
    }

    /// Count a failed ClearML call.
    pub fn clearml_error(&self, endpoint: &str) {
        self.clearml_errors
            .get_or_create(&ErrorLabels {
                kind: endpoint.to_string(),
            })
            .inc();
    }

    /// Count a failed Kubernetes call.
    pub fn kube_error(&self, kind: &str) {
        self.kube_errors
            .get_or_create(&ErrorLabels {
                kind: kind.to_string(),
            })
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail; an encoding error would be a bug in a metric type.
        if let Err(err) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%err, "cannot encode metrics");
        }
        text
    }
}

/// The router serving `/metrics`, `/healthz` and `/readyz`.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(serve_ready))
        .with_state(metrics)
}

async fn serve_metrics(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
}

async fn serve_ready(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    match metrics.health.readiness() {
        Ok(body) => (StatusCode::OK, body),
        Err(body) => (StatusCode::SERVICE_UNAVAILABLE, body),
    }
}

/// Bind `addr` and serve the endpoints until `shutdown` completes. Returns the bound address (useful with port 0)
/// and the server task.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = router(metrics);
    let task = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(%err, "metrics server stopped");
        }
    });
    Ok((local, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_with_the_prefix() {
        let metrics = Metrics::new();
        Metrics::per_queue(&metrics.tasks_popped, "red");
        metrics.failed("red", "rejected");
        let text = metrics.encode();
        assert!(
            text.contains("clearml_agent_tasks_popped_total{queue=\"red\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("clearml_agent_tasks_failed_total{queue=\"red\",reason=\"rejected\"} 1"),
            "{text}"
        );
    }
}
