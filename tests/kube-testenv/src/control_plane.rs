//! Start etcd + kube-apiserver on free loopback ports, wait for `/readyz`, hand out clients and a kubeconfig.
//! What is decided before start-up lives in `plan`; a control plane that outlives this process in `detached`.

use std::{
    fs, io,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};

use crate::{
    bins::{self, BinError, Binaries},
    plan::{Plan, kubeconfig_yaml},
    process::{Guarded, ProcessError},
};

/// Environment variable: seconds to wait for `/readyz` (default 90; a loaded 2-core CI box needs the headroom).
pub const START_TIMEOUT_ENV: &str = "KUBE_TESTENV_START_TIMEOUT";
const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(90);
/// User name of the static admin token (member of `system:masters`).
pub const ADMIN_USER: &str = "kube-testenv-admin";

/// Prefix of the temporary run directories.
const RUN_DIR_PREFIX: &str = "kube-testenv-";
/// File in a temporary run directory holding the pid of the test process that owns it.
const OWNER_FILE: &str = "owner.pid";

/// Errors starting or talking to the control plane.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The binaries are not built.
    #[error(transparent)]
    Binaries(#[from] BinError),
    /// A process could not be spawned.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// Preparing the run directory (tokens, keys, kubeconfig) failed.
    #[error("preparing {what}: {source}")]
    Io {
        /// What was being prepared.
        what: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// `openssl genrsa` (the service-account signing key) failed.
    #[error("generating the service-account key with openssl failed: {0}")]
    KeyGen(String),
    /// etcd or kube-apiserver exited during start-up; the log tail says why.
    #[error("{process} exited during start-up ({status}); last log lines:\n{log_tail}")]
    Exited {
        /// Which process.
        process: &'static str,
        /// Its exit status.
        status: String,
        /// The end of its log.
        log_tail: String,
    },
    /// `/readyz` did not answer 200 in time.
    #[error(
        "kube-apiserver not ready after {waited:?} (last /readyz result: {last}); apiserver log tail:\n{log_tail}"
    )]
    NotReady {
        /// How long we waited.
        waited: Duration,
        /// The last readiness error or body.
        last: String,
        /// The end of the apiserver log.
        log_tail: String,
    },
    /// The generated kubeconfig could not be turned into a client.
    #[error("building a kube client: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    /// A Kubernetes API call failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// A running kube-apiserver + etcd. Dropping it stops both and deletes its directory.
///
/// Without controllers or a scheduler: no default ServiceAccount (the ServiceAccount admission plugin is off),
/// no garbage collection, deleted namespaces stay `Terminating`, and pods stay `Pending` until something binds
/// them (see the `kubelet-sim` crate).
#[derive(Debug)]
pub struct TestEnv {
    dir: PathBuf,
    /// Whether `dir` is our temporary directory (deleted on stop) or the caller's (kept).
    owns_dir: bool,
    etcd: Guarded,
    apiserver: Guarded,
    server: String,
    token: String,
    ca_pem: String,
    kubeconfig_path: PathBuf,
    kubeconfig_yaml: String,
    startup: Duration,
}

/// Options for [`TestEnv::start_with`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Binaries to run; default [`bins::locate`].
    pub binaries: Option<Binaries>,
    /// Where to put data, certs and logs (kept on stop); default a new temporary directory, deleted on stop.
    pub dir: Option<PathBuf>,
    /// How long to wait for `/readyz`; default `KUBE_TESTENV_START_TIMEOUT` or 90 s.
    pub start_timeout: Option<Duration>,
}

impl TestEnv {
    /// Start a control plane with the default options.
    pub async fn start() -> Result<Self, Error> {
        Self::start_with(Options::default()).await
    }

    /// Start a control plane.
    pub async fn start_with(options: Options) -> Result<Self, Error> {
        let started = Instant::now();
        let binaries = match options.binaries {
            Some(b) => b,
            None => bins::locate(cache_paths::process_env)?,
        };
        let owns_dir = options.dir.is_none();
        let dir = match options.dir {
            Some(d) => {
                fs::create_dir_all(&d).map_err(io_err("the run directory"))?;
                d
            }
            None => {
                remove_stale_run_dirs();
                let dir = tempfile::Builder::new()
                    .prefix(RUN_DIR_PREFIX)
                    .tempdir()
                    .map_err(io_err("a temporary directory"))?
                    .keep();
                fs::write(dir.join(OWNER_FILE), std::process::id().to_string())
                    .map_err(io_err("the owner file"))?;
                dir
            }
        };
        let timeout = options.start_timeout.unwrap_or_else(start_timeout_from_env);
        let plan = Plan::prepare(&dir)?;

        let etcd = Guarded::spawn("etcd", plan.etcd_command(&binaries.etcd, &dir)?)?;
        let apiserver = Guarded::spawn(
            "kube-apiserver",
            plan.apiserver_command(&binaries.apiserver, &dir)?,
        )?;
        tracing::info!(
            dir = %dir.display(),
            apiserver_port = plan.apiserver_port,
            etcd_pid = etcd.pid(),
            apiserver_pid = apiserver.pid(),
            "control plane starting"
        );
        let mut env = Self {
            server: format!("https://127.0.0.1:{}", plan.apiserver_port),
            token: plan.token,
            dir,
            owns_dir,
            etcd,
            apiserver,
            ca_pem: String::new(),
            kubeconfig_path: PathBuf::new(),
            kubeconfig_yaml: String::new(),
            startup: Duration::ZERO,
        };
        // On any error below, dropping `env` kills both processes.
        let ca_pem = wait_ready(
            &env.dir.clone(),
            &env.server.clone(),
            &env.token.clone(),
            started,
            timeout,
            || env.check_alive(),
        )
        .await?;
        env.kubeconfig_yaml = kubeconfig_yaml(&env.server, &ca_pem, ADMIN_USER, &env.token);
        env.kubeconfig_path = env.dir.join("kubeconfig");
        env.ca_pem = ca_pem;
        env.startup = started.elapsed();
        tracing::info!(server = %env.server, startup_ms = env.startup.as_millis(), "control plane ready");
        Ok(env)
    }

    fn check_alive(&mut self) -> Result<(), Error> {
        if let Some(status) = self.etcd.exited() {
            return Err(Error::Exited {
                process: "etcd",
                status: status.to_string(),
                log_tail: log_tail(&self.dir.join("etcd.log")),
            });
        }
        if let Some(status) = self.apiserver.exited() {
            return Err(Error::Exited {
                process: "kube-apiserver",
                status: status.to_string(),
                log_tail: log_tail(&self.dir.join("kube-apiserver.log")),
            });
        }
        Ok(())
    }

    /// A client authenticated as the admin (`system:masters`). Build one per test: a client's connection pool
    /// belongs to the tokio runtime it was first used on, and each `#[tokio::test]` has its own runtime.
    pub async fn client(&self) -> Result<Client, Error> {
        self.client_with_token(&self.token).await
    }

    /// A client for the same server authenticated with another bearer token (e.g. a ServiceAccount token).
    pub async fn client_with_token(&self, token: &str) -> Result<Client, Error> {
        let yaml = kubeconfig_yaml(&self.server, &self.ca_pem, "token-user", token);
        let kubeconfig = Kubeconfig::from_yaml(&yaml)?;
        let config =
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        Ok(Client::try_from(config)?)
    }

    /// Server URL (`https://127.0.0.1:<port>`).
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The static admin bearer token.
    pub fn admin_token(&self) -> &str {
        &self.token
    }

    /// PEM of the apiserver's self-signed serving cert and its CA.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Path of the admin kubeconfig (inside the run directory).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// The admin kubeconfig as YAML.
    pub fn kubeconfig_yaml(&self) -> &str {
        &self.kubeconfig_yaml
    }

    /// The run directory (data, certs, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Pids of etcd and kube-apiserver.
    pub fn pids(&self) -> (u32, u32) {
        (self.etcd.pid(), self.apiserver.pid())
    }

    /// Time from `start` to ready.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// Stop both processes and delete the run directory. Also what `Drop` does.
    pub fn stop(&mut self) {
        self.apiserver.kill();
        self.etcd.kill();
        if self.owns_dir && self.dir.exists() {
            let _ = fs::remove_dir_all(&self.dir);
            crate::process::forget_exit_dir(&self.dir);
        }
    }

    /// Delete the run directory at process exit: the shared instance lives in a `static` and is never dropped.
    pub(crate) fn remove_dir_at_exit(&self) {
        if self.owns_dir {
            crate::process::remove_at_exit(self.dir.clone());
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Poll until the serving cert exists and `/readyz` answers, failing fast when `alive` reports a dead process.
/// Writes `<dir>/kubeconfig` and returns the CA PEM.
pub(crate) async fn wait_ready(
    dir: &Path,
    server: &str,
    token: &str,
    started: Instant,
    timeout: Duration,
    mut alive: impl FnMut() -> Result<(), Error>,
) -> Result<String, Error> {
    let cert = dir.join("pki/apiserver.crt");
    let mut ready_client: Option<(Client, String)> = None;
    let mut last = String::from("not tried yet");
    loop {
        alive()?;
        if ready_client.is_none() && cert.is_file() {
            // The apiserver writes its self-signed cert (leaf + its CA) before it serves.
            let pem =
                fs::read_to_string(&cert).map_err(io_err("reading the apiserver certificate"))?;
            if pem.trim_end().ends_with("END CERTIFICATE-----") {
                let yaml = kubeconfig_yaml(server, &pem, ADMIN_USER, token);
                fs::write(dir.join("kubeconfig"), &yaml).map_err(io_err("the kubeconfig"))?;
                let config = Config::from_custom_kubeconfig(
                    Kubeconfig::from_yaml(&yaml)?,
                    &KubeConfigOptions::default(),
                )
                .await?;
                ready_client = Some((Client::try_from(config)?, pem));
            }
        }
        if let Some((client, pem)) = &ready_client {
            match http::Request::get("/readyz").body(Vec::new()) {
                Ok(req) => match client.request_text(req).await {
                    Ok(body) if body.trim() == "ok" => return Ok(pem.clone()),
                    Ok(body) => last = body,
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
        }
        if started.elapsed() > timeout {
            return Err(Error::NotReady {
                waited: started.elapsed(),
                last,
                log_tail: log_tail(&dir.join("kube-apiserver.log")),
            });
        }
        // Readiness of a child process has no watch to wait on; a short poll is the only option here.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Delete run directories left behind by test processes that were killed outright (SIGKILL runs no cleanup; the
/// parent-death signal already took their etcd and apiserver down). Only directories whose owner is gone.
fn remove_stale_run_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(RUN_DIR_PREFIX));
        if !ours {
            continue;
        }
        let Ok(owner) = fs::read_to_string(path.join(OWNER_FILE)) else {
            continue;
        };
        let alive = owner
            .trim()
            .parse::<u32>()
            .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            tracing::debug!(dir = %path.display(), "removing a stale run directory");
            let _ = fs::remove_dir_all(&path);
        }
    }
}

fn start_timeout_from_env() -> Duration {
    cache_paths::process_env(START_TIMEOUT_ENV)
        .and_then(|s| s.to_str()?.parse::<u64>().ok())
        .map_or(DEFAULT_START_TIMEOUT, Duration::from_secs)
}

/// The last 30 lines of a log, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|e| format!("<cannot read {}: {e}>", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

pub(crate) fn io_err(what: &str) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        what: what.to_owned(),
        source,
    }
}
