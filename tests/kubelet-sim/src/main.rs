//! `kubelet-sim`: run the kubelet simulator against the cluster in `KUBECONFIG` (e.g. from `just testenv-up`).

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use kubelet_sim::{InPodAgent, NodeSpec, SimConfig, Simulator};

/// Simulated scheduler + kubelets: binds pods to fake nodes and advances their status like kwok.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// A node: `name=N[,cpu=8][,memory=32Gi][,gpu=0][,label.KEY=VALUE...]`. Repeatable.
    #[arg(long = "node", default_values = ["name=sim-cpu-0,cpu=8,memory=32Gi", "name=sim-gpu-0,cpu=32,memory=128Gi,gpu=4"])]
    nodes: Vec<String>,
    /// Only act on pods in this namespace (default: all namespaces).
    #[arg(long, short)]
    namespace: Option<String>,
    /// Seconds a pod runs before its outcome, unless annotated `sim.clearml-k8s-agent/run-seconds`.
    #[arg(long, default_value_t = 5.0)]
    run_seconds: f64,
    /// Images matching this regex never pull (ErrImagePull, then ImagePullBackOff).
    #[arg(long, default_value = r"^(registry\.invalid/|.*:does-not-exist$)")]
    image_pull_error: String,
    /// Play the stock in-pod `clearml-agent execute` in pods labelled `clearml-task-id`: dequeue and start the task
    /// with the credentials from the pod's env (Secrets read through the API), then complete or fail it.
    #[arg(long)]
    in_pod_agent: bool,
    /// With --in-pod-agent: seconds between the task status readings that notice an abort (the real agent: 5).
    #[arg(long, default_value_t = 5.0)]
    abort_poll_seconds: f64,
    /// Do not write the scheduler's and kubelet's Events (saves API calls, e.g. in benchmarks).
    #[arg(long)]
    no_events: bool,
}

// The binary's edge: RUST_LOG is read here.
#[allow(clippy::disallowed_methods)]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // An empty RUST_LOG (set by some shells and CI) would mean "errors only"; treat it as unset.
    let filter = match std::env::var("RUST_LOG") {
        Ok(f) if !f.trim().is_empty() => tracing_subscriber::EnvFilter::new(f),
        _ => tracing_subscriber::EnvFilter::new("info,kube=warn"),
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .init();
    let args = Args::parse();
    let nodes = args
        .nodes
        .iter()
        .map(|s| NodeSpec::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let config = SimConfig {
        nodes,
        default_run: Duration::try_from_secs_f64(args.run_seconds).context("--run-seconds")?,
        image_pull_error: Some(
            regex::Regex::new(&args.image_pull_error).context("--image-pull-error")?,
        ),
        in_pod_agent: match args.in_pod_agent {
            true => Some(InPodAgent {
                abort_poll: Duration::try_from_secs_f64(args.abort_poll_seconds)
                    .context("--abort-poll-seconds")?,
                ..InPodAgent::default()
            }),
            false => None,
        },
        events: !args.no_events,
    };
    let client = kube::Client::try_default()
        .await
        .context("connecting to the cluster in KUBECONFIG")?;
    let sim = Simulator::new(client, config, args.namespace);
    sim.register_nodes().await?;
    tracing::info!("kubelet-sim running; Ctrl-C to stop");
    sim.run(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
