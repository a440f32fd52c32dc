//! The real `clearml-k8s-agent run` as a subprocess: started with the flags and env a user would give it, ready
//! when its `/readyz` says so, stopped with SIGTERM (the caller checks the exit code: 0 is the contract), measured
//! through `/proc`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::process::Command;

use crate::process::{LoggedChild, ProcessError};
use crate::stats::{self, ProcError, ProcSample};

/// The agent did not start or did not become ready.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Starting, signalling or waiting for the process failed, or it exited.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// No loopback port for its metrics.
    #[error("picking a loopback port for the agent's metrics: {0}")]
    Port(#[source] std::io::Error),
    /// `/readyz` did not answer 200 in time.
    #[error("the agent was not ready after {waited:?} (log {log}):\n{tail}")]
    NotReady {
        /// How long the driver waited.
        waited: Duration,
        /// Its log file.
        log: PathBuf,
        /// The last lines of its log.
        tail: String,
    },
    /// Its HTTP endpoint failed.
    #[error("GET {path} on the agent: {source}")]
    Http {
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// How to run the agent.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    /// The values file.
    pub config: PathBuf,
    /// `--namespace`.
    pub namespace: String,
    /// `--instance`.
    pub instance: String,
    /// `KUBECONFIG`.
    pub kubeconfig: PathBuf,
    /// `CLEARML_API_HOST` (with the driver's credentials in `CLEARML_API_ACCESS_KEY` / `_SECRET_KEY`).
    pub clearml_url: String,
    /// `--max-in-flight` (the agent's default when `None`).
    pub max_in_flight: Option<usize>,
    /// `--no-policies` (benchmark baseline).
    pub no_policies: bool,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

/// A running agent; killed if dropped without [`AgentProcess::stop`].
pub struct AgentProcess {
    child: LoggedChild,
    /// Where `/metrics`, `/healthz`, `/readyz` are served.
    pub metrics_addr: SocketAddr,
}

impl AgentProcess {
    /// Start `bin run ...` per `spec` and wait (at most `ready_within`) for `/readyz`.
    pub async fn start(
        bin: &Path,
        spec: &AgentSpec,
        ready_within: Duration,
    ) -> Result<Self, AgentError> {
        let metrics_addr = free_loopback_port().map_err(AgentError::Port)?;
        let mut cmd = Command::new(bin);
        cmd.arg("run")
            .arg("--config")
            .arg(&spec.config)
            .args(["--namespace", &spec.namespace, "--instance", &spec.instance])
            .args(["--metrics-addr", &metrics_addr.to_string()]);
        if let Some(n) = spec.max_in_flight {
            cmd.args(["--max-in-flight", &n.to_string()]);
        }
        if spec.no_policies {
            cmd.arg("--no-policies");
        }
        cmd.env("KUBECONFIG", &spec.kubeconfig)
            .env("CLEARML_API_HOST", &spec.clearml_url)
            .env("CLEARML_API_ACCESS_KEY", crate::ACCESS_KEY)
            .env("CLEARML_API_SECRET_KEY", crate::SECRET_KEY)
            .env_remove("CLEARML_K8S_AGENT_INSTANCE");
        let child = LoggedChild::spawn("the agent", cmd, &spec.log)?;
        let mut agent = Self {
            child,
            metrics_addr,
        };
        agent.wait_ready(ready_within).await?;
        Ok(agent)
    }

    async fn wait_ready(&mut self, within: Duration) -> Result<(), AgentError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            self.child.check_alive()?;
            if let Ok((200, _)) = http_get(self.metrics_addr, "/readyz").await {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(AgentError::NotReady {
                    waited: within,
                    log: self.child.log_path().to_path_buf(),
                    tail: self.child.log_tail(20),
                });
            }
            // Start-up is login, queue resolution, the Secret and the first pod list: a readiness probe's pace.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An error if the agent has exited.
    pub fn check_alive(&mut self) -> Result<(), AgentError> {
        Ok(self.child.check_alive()?)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Its CPU time and memory now.
    pub fn sample(&self) -> Result<ProcSample, ProcError> {
        stats::sample(self.child.pid())
    }

    /// Its `/metrics` text.
    pub async fn metrics(&self) -> Result<String, AgentError> {
        http_get(self.metrics_addr, "/metrics")
            .await
            .map(|(_, body)| body)
            .map_err(|source| AgentError::Http {
                path: "/metrics".into(),
                source,
            })
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        self.child.log_path()
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        self.child.log_tail(n)
    }

    /// SIGTERM, then wait for the exit (killed after `within`). Returns how it exited.
    pub async fn stop(self, within: Duration) -> Result<ExitStatus, AgentError> {
        Ok(self.child.stop("TERM", within).await?)
    }
}

/// A loopback address with a port that was free a moment ago (the agent binds it right after).
fn free_loopback_port() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// A minimal HTTP/1.0 GET (the agent's endpoints are plain loopback HTTP): status code and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response from {addr}{path}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, body))
}
