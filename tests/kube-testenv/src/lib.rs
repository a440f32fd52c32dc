//! Test support: a real kube-apiserver + etcd, built from Go modules (`tests/testenv`), started for a test run.
//!
//! A test double (not shipped; `kube-testenv up` also serves the demo): the real control plane the agent submits
//! to in end-to-end tests, where the pipeline (clearml-api → pod-template → policy-runtime → agent → cli) ends.
//!
//! # Start here
//! In an integration test:
//! ```no_run
//! # async fn t() {
//! let Some(ctx) = kube_testenv::test_context("my-test").await else { return };
//! // ctx.client: admin kube::Client; ctx.namespace: a fresh namespace for this test
//! # }
//! ```
//! [`test_context`] starts one control plane per test binary on first use ([`shared`]), builds a client for the
//! calling test's runtime and creates a unique namespace. When the binaries are missing it skips the test with a
//! printed reason, except under `CI=true`, where it panics with the reason; a control plane that is present but
//! fails to start always fails the test.
//!
//! # Layout
//! - [`bins`]: where the binaries are (`KUBE_TESTENV_BIN_DIR` or the versioned build cache).
//! - [`control_plane`]: [`TestEnv`]: ports, token, service-account key, flags, `/readyz`, kubeconfig, clients.
//! - [`detached`]: a control plane that outlives this process (`up`/`down`), stopped through its pid file.
//! - [`fault_proxy`]: [`FaultProxy`]: a plain-HTTP proxy in front of the apiserver for outage and error tests: cut the
//!   API off and restore it, answer chosen requests with 409/422/429/5xx `Status` errors, count what reached it.
//! - `plan`: ports, token, service-account key, the two command lines and the kubeconfig text.
//! - [`process`]: child processes that die with the test binary (Drop, `atexit`, parent-death signal).
//! - `src/bin/kube-testenv.rs`: `up`/`down` for manual use (`just testenv-up`).
//!
//! Binaries are built by `tests/testenv/build.sh` (`just testenv-build`); see `tests/testenv/README.md`.

#![warn(missing_docs, clippy::disallowed_methods)]

pub mod bins;
pub mod control_plane;
pub mod detached;
pub mod fault_proxy;
mod plan;
pub mod process;

use std::{
    io::Write as _,
    sync::atomic::{AtomicU32, Ordering},
};

use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, Client, api::PostParams};
use tokio::sync::OnceCell;

pub use control_plane::{Error, Options, TestEnv};
pub use fault_proxy::{Error as FaultProxyError, Fault, FaultProxy};

/// Label put on every namespace created by [`create_namespace`], with the test name as value.
pub const TEST_LABEL: &str = "kube-testenv/test";

/// The shared control plane, or why it could not start (kept so later tests fail or skip without retrying).
static SHARED: OnceCell<Result<TestEnv, SharedError>> = OnceCell::const_new();

/// Why the shared control plane is unavailable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SharedError {
    /// The binaries are not built (a skip outside CI).
    #[error("{0}")]
    NotBuilt(String),
    /// The control plane failed to start (always a failure).
    #[error("{0}")]
    Failed(String),
}

/// The control plane shared by every test in this test binary, started on first call.
///
/// It lives in a `static`, so it is stopped at process exit (see [`process`]), never by `Drop`.
pub async fn shared() -> Result<&'static TestEnv, SharedError> {
    let result = SHARED
        .get_or_init(|| async {
            match TestEnv::start().await {
                Ok(env) => {
                    env.remove_dir_at_exit();
                    let _ = writeln!(
                        std::io::stderr(),
                        "kube-testenv: control plane ready at {} in {:.1}s (kubeconfig {})",
                        env.server(),
                        env.startup_time().as_secs_f64(),
                        env.kubeconfig_path().display()
                    );
                    Ok(env)
                }
                Err(Error::Binaries(e)) => Err(SharedError::NotBuilt(e.to_string())),
                Err(e) => Err(SharedError::Failed(e.to_string())),
            }
        })
        .await;
    result.as_ref().map_err(Clone::clone)
}

/// Whether we run under CI (`CI=true` or `CI=1`), where a missing control plane is a failure, not a skip.
pub fn in_ci() -> bool {
    cache_paths::process_env("CI").is_some_and(|v| v == "true" || v == "1")
}

/// Test logs, captured per test by libtest (shown when a test fails): `RUST_LOG` when set, else `default` (an
/// `EnvFilter` directive such as `kubelet_sim=debug`). Safe to call from every test.
pub fn test_logs(default: &str) {
    let filter = cache_paths::process_env("RUST_LOG")
        .and_then(|f| f.into_string().ok())
        .filter(|f| !f.trim().is_empty())
        .unwrap_or_else(|| default.to_owned());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_test_writer()
        .try_init();
}

/// What one test gets: the shared control plane, an admin client for this test's runtime, its own namespace.
#[derive(Clone)]
pub struct TestContext {
    /// The shared control plane.
    pub env: &'static TestEnv,
    /// Admin client (system:masters).
    pub client: Client,
    /// A namespace created for this test.
    pub namespace: String,
}

/// The shared control plane plus a client and a fresh namespace, or `None` (test skipped, reason printed).
///
/// # Panics
/// When the control plane is unavailable under CI, when it was built but failed to start, or when the client or
/// namespace cannot be created: these are test failures, and the message says what failed.
pub async fn test_context(test: &str) -> Option<TestContext> {
    let env = match shared().await {
        Ok(env) => env,
        Err(SharedError::NotBuilt(why)) if !in_ci() => {
            // Straight to the process's stderr: libtest captures `eprintln!` of passing tests, and a skip must
            // never be silent.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: no Kubernetes control plane: {why}"
            );
            return None;
        }
        Err(e) => panic!("{test}: the kube-apiserver + etcd control plane is unavailable: {e}"),
    };
    let client = match env.client().await {
        Ok(c) => c,
        Err(e) => panic!("{test}: cannot build a client for {}: {e}", env.server()),
    };
    let namespace = match create_namespace(&client, test).await {
        Ok(ns) => ns,
        Err(e) => panic!("{test}: cannot create a test namespace: {e}"),
    };
    Some(TestContext {
        env,
        client,
        namespace,
    })
}

/// A control plane of the test's own (most tests share one via [`test_context`]; this is for tests that stop or
/// break theirs), or `None` when the binaries are missing outside CI (skipped, reason printed).
///
/// # Panics
/// Under CI when the binaries are missing, and whenever a built control plane fails to start.
pub async fn start_owned(test: &str) -> Option<TestEnv> {
    match TestEnv::start().await {
        Ok(env) => Some(env),
        Err(Error::Binaries(why)) if !in_ci() => {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: no Kubernetes control plane: {why}"
            );
            None
        }
        Err(e) => panic!("{test}: the kube-apiserver + etcd control plane is unavailable: {e}"),
    }
}

/// Create a namespace with a unique name derived from `test` and return its name.
///
/// Namespaces are never deleted: without the namespace controller they would stay `Terminating` anyway, and the
/// whole etcd goes away with the test binary.
pub async fn create_namespace(client: &Client, test: &str) -> Result<String, kube::Error> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = namespace_name(test, std::process::id(), n);
    let mut ns = Namespace::default();
    ns.metadata.name = Some(name.clone());
    ns.metadata.labels = Some([(TEST_LABEL.to_owned(), sanitize(test, 63))].into());
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    Ok(name)
}

/// `t-<test>-<pid>-<n>`, a valid DNS label (at most 63 characters).
fn namespace_name(test: &str, pid: u32, n: u32) -> String {
    let suffix = format!("-{pid}-{n}");
    let stem = sanitize(test, 63 - 2 - suffix.len());
    format!("t-{stem}{suffix}")
}

/// Lower-case alphanumerics and '-', no leading/trailing '-', at most `max` characters.
fn sanitize(s: &str, max: usize) -> String {
    let mapped: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let mut out: String = mapped.trim_matches('-').chars().take(max).collect();
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() { "x".to_owned() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names_are_dns_labels() {
        let long =
            "smoke::a_very_long_test_name_that_goes_on_and_on_and_on_for_quite_a_while_really";
        for name in [
            namespace_name("smoke::pod_crud", 42, 0),
            namespace_name(long, 4_294_967, 123),
        ] {
            assert!(name.len() <= 63, "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{name}"
            );
            assert!(!name.ends_with('-') && name.starts_with("t-"), "{name}");
        }
        assert_eq!(namespace_name("Smoke::Pod", 1, 2), "t-smoke--pod-1-2");
    }
}
