//! `clearml-k8s-agent run`: read the environment and the flags, load the values, hand over to `agent::run`.
//!
//! Exit codes (a fixed contract): 0 after a clean shutdown (SIGTERM/SIGINT), 64 for a bad config or bad flags
//! (reported before any connection is attempted), 1 for anything else.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use agent::config::{AgentConfig, Overrides};
use agent::run::{Prepared, RunOptions};
use anyhow::Context as _;

/// `EX_USAGE` from sysexits.h: bad config or bad flags.
pub const EXIT_CONFIG: u8 = 64;

/// Arguments of `clearml-k8s-agent run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The values file (the ClearML Enterprise agent chart's shape).
    #[arg(long)]
    pub config: PathBuf,
    /// Namespace for task pods. Default: the in-cluster namespace, else the kubeconfig context's.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Where to serve /metrics, /healthz and /readyz (`127.0.0.1:0` picks a free port and logs it).
    #[arg(long, default_value = "0.0.0.0:9090")]
    pub metrics_addr: SocketAddr,
    /// Who the agent is.
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// Hand-overs and pod creates in flight at once (popped tasks are rendered while they wait for a slot).
    #[arg(long, default_value_t = 16)]
    pub max_in_flight: usize,
    /// After SIGTERM, how long submissions in flight may take before the agent exits anyway (keep it below the
    /// pod's terminationGracePeriodSeconds, 30 by default); what is cut short is finished by recovery at the next start.
    #[arg(long, default_value_t = 25)]
    pub shutdown_grace_seconds: u64,
    /// Run as one of several replicas: only the one holding the Lease (coordination.k8s.io) dispatches, a standby
    /// takes over within 15 s of its death. Every replica needs the same --instance.
    #[arg(long)]
    pub leader_elect: bool,
    /// The Lease's name (in --namespace). Default: `<instance>-leader`.
    #[arg(long, requires = "leader_elect")]
    pub lease_name: Option<String>,
    /// This replica's name in the Lease. Default: env POD_NAME, else the host name (the pod's name in a pod).
    #[arg(long, env = "POD_NAME")]
    pub replica_id: Option<String>,
    /// Benchmarks only: submit the base pod as rendered, without any policy (not even template-overrides).
    #[arg(long, hide = true)]
    pub no_policies: bool,
}

/// Who the agent is, shared by `run` and `render` (so `render` shows the pod `run` would submit).
#[derive(clap::Args, Debug)]
pub struct IdentityArgs {
    /// This agent's name: its pods' `clearml-agent-instance` label and its ClearML worker id. Two agents in one
    /// namespace need different names; two replicas of one agent share it.
    #[arg(
        long,
        env = "CLEARML_K8S_AGENT_INSTANCE",
        default_value = "clearml-k8s-agent"
    )]
    pub instance: String,
    /// The Secret task pods read the ClearML credentials from; `run` creates or updates it at start-up.
    /// Default: `<instance>-credentials`.
    #[arg(long)]
    pub credentials_secret: Option<String>,
}

impl IdentityArgs {
    /// The agent's identity in `namespace`.
    pub fn identity(&self, namespace: String) -> agent::render::Identity {
        agent::render::Identity {
            credentials_secret: self
                .credentials_secret
                .clone()
                .unwrap_or_else(|| format!("{}-credentials", self.instance)),
            instance: self.instance.clone(),
            namespace,
        }
    }
}

/// The env-derived overrides of the values (a mounted Secret arrives as env).
// The config edge: the one place `run` reads the environment for its configuration.
#[allow(clippy::disallowed_methods)]
pub fn overrides_from_env() -> Overrides {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    Overrides {
        access_key: var("CLEARML_API_ACCESS_KEY"),
        secret_key: var("CLEARML_API_SECRET_KEY"),
        api_host: var("CLEARML_API_HOST"),
    }
}

/// This replica's default name: the host name (a pod's host name is its name), made unique by the process id
/// and start time when there is none.
fn replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    if host.is_empty() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        format!("replica-{}-{nanos:x}", std::process::id())
    } else {
        host
    }
}

/// Load the values and compile the policies, or say what is wrong (exit 64).
pub fn prepare(config: &std::path::Path) -> Result<Prepared, ExitCode> {
    prepare_with(config, true)
}

fn prepare_with(config: &std::path::Path, with_policies: bool) -> Result<Prepared, ExitCode> {
    let config = match AgentConfig::load(config, &overrides_from_env())
        .and_then(|c| c.validate_for_run().map(|()| c))
    {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return Err(ExitCode::from(EXIT_CONFIG));
        }
    };
    let prepared = if with_policies {
        Prepared::new(config, crate::cache::precompiled_dir())
    } else {
        Prepared::without_policies(config)
    };
    prepared.map_err(|err| {
        eprintln!("error: {err}");
        if err.is_config_error() {
            ExitCode::from(EXIT_CONFIG)
        } else {
            ExitCode::FAILURE
        }
    })
}

/// Compile the values' policies into the precompiled cache in a child process (`policy precompile`), so that this
/// process only loads them from there. Compiled here, Cranelift's code and what its compilation allocated stay in
/// the agent for good: a start that compiled the default chain ended the benchmark's 1,000-pod burst at ~62-66 MiB
/// against ~49 MiB (the target is 60 MB), and in a pod without a cache volume every start compiles. With a warm
/// cache the child only loads and exits (10-50 ms). Best effort: whatever the child could not do, `prepare` does
/// (and reports) itself.
fn precompile_in_child(config: &std::path::Path) {
    if crate::cache::precompiled_dir().is_none() {
        return;
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(err) => {
            tracing::debug!(error = %err, "cannot find this binary: compiling policies in-process");
            return;
        }
    };
    let status = std::process::Command::new(exe)
        .args(["policy", "precompile", "--config"])
        .arg(config)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => {
            tracing::debug!(%status, "precompiling in a child failed: compiling in-process")
        }
        Err(err) => {
            tracing::debug!(error = %err, "cannot start the precompiling child: compiling in-process")
        }
    }
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    if !args.no_policies {
        precompile_in_child(&args.config);
    }
    let prepared = match prepare_with(&args.config, !args.no_policies) {
        Ok(prepared) => prepared,
        Err(code) => return Ok(code),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let kube_config = kube::Config::infer()
            .await
            .context("finding the Kubernetes cluster (KUBECONFIG, ~/.kube/config or in-cluster)")?;
        let namespace = args
            .namespace
            .clone()
            .unwrap_or_else(|| kube_config.default_namespace.clone());
        let client =
            kube::Client::try_from(kube_config).context("creating the Kubernetes client")?;
        let identity = args.identity.identity(namespace);
        let options = RunOptions {
            namespace: identity.namespace,
            metrics_addr: args.metrics_addr,
            credentials_secret: identity.credentials_secret,
            instance: identity.instance,
            max_in_flight: args.max_in_flight,
            shutdown_grace: std::time::Duration::from_secs(args.shutdown_grace_seconds),
            leader_election: args.leader_elect.then(|| {
                agent::leader::LeaseSettings::new(
                    args.lease_name
                        .clone()
                        .unwrap_or_else(|| format!("{}-leader", args.identity.instance)),
                    args.replica_id.clone().unwrap_or_else(replica_id),
                )
            }),
            failpoint: None,
        };
        match agent::run::run(prepared, client, options, crate::signal::shutdown()).await {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(err) if err.is_config_error() => {
                eprintln!("error: {err}");
                Ok(ExitCode::from(EXIT_CONFIG))
            }
            Err(err) => Err(err.into()),
        }
    })
}
