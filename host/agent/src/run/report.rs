//! The periodic worker report: `workers.status_report`, and the enterprise cluster (GPU) report.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clearml_api::{ClusterReport, StatusReport};

use super::Shared;

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `workers.status_report` every `statusReportFrequencySeconds`, and the enterprise GPU report where it is served.
pub(super) async fn report_status(
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
