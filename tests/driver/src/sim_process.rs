//! The `kubelet-sim` binary as a subprocess (binds the agent's pods to fake nodes and runs them; with
//! `--in-pod-agent` it also plays the in-pod `clearml-agent execute`, so tasks end completed or failed).

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::ListParams;
use tokio::process::Command;

use crate::process::{LoggedChild, ProcessError};

/// Label kubelet-sim puts on the nodes it registers.
const SIM_NODE_LABEL: &str = "sim.clearml-k8s-agent/node";

/// kubelet-sim did not start.
#[derive(Debug, thiserror::Error)]
pub enum SimProcessError {
    /// Starting or stopping the process failed, or it exited.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// This kubelet-sim has no `--in-pod-agent` flag (built from an older tree?).
    #[error("{0} has no --in-pod-agent flag: rebuild it (`just agent-bin`)")]
    NoInPodAgent(PathBuf),
    /// Its nodes did not appear in time.
    #[error("kubelet-sim registered {found} of {expected} nodes within {waited:?} (log {log})")]
    Nodes {
        /// Nodes found.
        found: usize,
        /// Nodes asked for.
        expected: usize,
        /// How long the driver waited.
        waited: Duration,
        /// Its log file.
        log: PathBuf,
    },
}

/// How to run kubelet-sim.
#[derive(Debug, Clone)]
pub struct SimSpec {
    /// `KUBECONFIG`.
    pub kubeconfig: PathBuf,
    /// `--namespace` (all namespaces when `None`).
    pub namespace: Option<String>,
    /// `--node` specs (`name=N,cpu=8,memory=32Gi,gpu=0`).
    pub nodes: Vec<String>,
    /// `--run-seconds`: how long a pod runs before its outcome.
    pub run_seconds: f64,
    /// `--in-pod-agent`.
    pub in_pod_agent: bool,
    /// Where its output goes.
    pub log: PathBuf,
}

/// A running kubelet-sim; killed if dropped without [`SimProcess::stop`].
pub struct SimProcess {
    child: LoggedChild,
}

impl SimProcess {
    /// Start `bin` per `spec` and wait until its nodes are registered (at most `within`).
    pub async fn start(
        bin: &Path,
        spec: &SimSpec,
        kube: &kube::Client,
        within: Duration,
    ) -> Result<Self, SimProcessError> {
        if spec.in_pod_agent && !supports_in_pod_agent(bin).await {
            return Err(SimProcessError::NoInPodAgent(bin.to_path_buf()));
        }
        let mut cmd = Command::new(bin);
        cmd.env("KUBECONFIG", &spec.kubeconfig)
            .env("RUST_LOG", "info,kube=warn")
            .args(["--run-seconds", &spec.run_seconds.to_string()]);
        for node in &spec.nodes {
            cmd.args(["--node", node]);
        }
        if let Some(ns) = &spec.namespace {
            cmd.args(["--namespace", ns]);
        }
        if spec.in_pod_agent {
            cmd.arg("--in-pod-agent");
        }
        let mut child = LoggedChild::spawn("kubelet-sim", cmd, &spec.log)?;
        let nodes: Api<Node> = Api::all(kube.clone());
        let selector = ListParams::default().labels(SIM_NODE_LABEL);
        let deadline = tokio::time::Instant::now() + within;
        loop {
            child.check_alive()?;
            let found = nodes
                .list(&selector)
                .await
                .map(|l| l.items.len())
                .unwrap_or(0);
            if found >= spec.nodes.len() {
                return Ok(Self { child });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(SimProcessError::Nodes {
                    found,
                    expected: spec.nodes.len(),
                    waited: within,
                    log: spec.log.clone(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Stop it (SIGINT, what it handles) and wait.
    pub async fn stop(self, within: Duration) -> Result<std::process::ExitStatus, SimProcessError> {
        Ok(self.child.stop("INT", within).await?)
    }
}

async fn supports_in_pod_agent(bin: &Path) -> bool {
    Command::new(bin)
        .arg("--help")
        .output()
        .await
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("--in-pod-agent"))
}
