//! The demo and benchmark driver: not shipped, not a test double. Its binaries run the REAL `clearml-k8s-agent`
//! binary as a subprocess, as a user would, next to the project's test doubles: the ClearML emulator (in-process,
//! behind a request-counting listener), the real kube-apiserver + etcd (`kube-testenv`) and the `kubelet-sim`
//! binary.
//!
//! # Start here
//! - `src/bin/demo-driver.rs` (`just demo`): the Enterprise page's queues plus a policy queue, example tasks, a table
//!   of what became of each task.
//! - `src/bin/bench-agent/` (`just bench-agent`): the agent's throughput, latency, CPU, memory and ClearML request
//!   figures recorded in BENCHMARKS.md.
//!
//! # Layout
//! - [`bench`]: the agent benchmark's figures, its Markdown report and values.
//! - [`bins`]: where the agent and kubelet-sim binaries are (next to the driver's own binary).
//! - [`agent_process`]: start the agent, wait for `/readyz`, stop it with SIGTERM, read its CPU time and memory.
//! - [`counting`]: the emulator on two listeners: one for the agent (every request counted by endpoint, with the
//!   time of the first), one for the driver's own calls (not counted).
//! - [`process`]: a child process with a log file, signalled by pid, killed if dropped.
//! - [`sim_process`]: the `kubelet-sim` binary, ready once its nodes are registered.
//! - [`pod_watch`]: one pod watch per namespace recording when each pod was first seen and its last state (the whole
//!   pod, or its metadata only).
//! - [`clearml`]: the driver's ClearML calls (project, tasks, enqueue).
//! - [`cpu`]: the machine's CPU time and each benchmark part's (agent, apiserver, etcd, kubelet-sim, driver).
//! - [`demo`]: the demo's task list, checked against its values file.
//! - [`stats`]: percentiles and `/proc` parsing (pure).
//! - [`table`]: the demo's table (pure).

#![warn(missing_docs)]

pub mod agent_process;
pub mod bench;
pub mod bins;
pub mod clearml;
pub mod counting;
pub mod cpu;
pub mod demo;
pub mod pod_watch;
pub mod process;
pub mod sim_process;
pub mod stats;
pub mod table;

/// Credentials the emulator accepts and the agent logs in with (loopback only; the demo prints none of them).
pub const ACCESS_KEY: &str = "DRIVER-ACCESS-KEY";
/// See [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "driver-secret-key-not-for-production";

/// The binaries' logs on stderr: `RUST_LOG`, else warnings only and none of kube's client (the driver says itself
/// what goes wrong; the client logs every refused probe of a starting apiserver); colour only on a terminal.
pub fn init_logs() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,kube_client=off".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// The agent's pod name for a task (a fixed contract: `clearml-id-<task id>`).
pub fn pod_name(task_id: &str) -> String {
    format!("clearml-id-{task_id}")
}

/// A new kube-apiserver + etcd and an admin client for it.
pub async fn control_plane() -> Result<(kube_testenv::TestEnv, kube::Client), kube_testenv::Error> {
    let env = kube_testenv::TestEnv::start().await?;
    let kube = env.client().await?;
    Ok((env, kube))
}
