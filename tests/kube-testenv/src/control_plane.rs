//! Start etcd + kube-apiserver on free loopback ports, wait for `/readyz`, hand out clients and a kubeconfig.

use std::{
    fs,
    io::{self, Read as _},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use base64::Engine as _;
use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};

use crate::{
    bins::{self, BinError, Binaries},
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
            None => bins::locate()?,
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
async fn wait_ready(
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

/// A control plane started by [`start_detached`]: it outlives this process until [`stop_detached`].
#[derive(Debug, Clone)]
pub struct Detached {
    /// Server URL.
    pub server: String,
    /// The admin kubeconfig (`<dir>/kubeconfig`).
    pub kubeconfig: PathBuf,
    /// Pids of etcd and kube-apiserver, also written to `<dir>/pids`.
    pub pids: [u32; 2],
    /// Time to ready.
    pub startup: Duration,
}

/// Start a control plane in `dir` that keeps running after this process exits (manual use, the demo).
/// Pids go to `<dir>/pids` so [`stop_detached`] kills exactly these processes.
pub async fn start_detached(
    binaries: &Binaries,
    dir: &Path,
    timeout: Duration,
) -> Result<Detached, Error> {
    let started = Instant::now();
    fs::create_dir_all(dir).map_err(io_err("the run directory"))?;
    let plan = Plan::prepare(dir)?;
    let etcd = Guarded::spawn_detached(&mut plan.etcd_command(&binaries.etcd, dir)?).map_err(
        |source| ProcessError::Spawn {
            program: binaries.etcd.display().to_string(),
            source,
        },
    )?;
    let apiserver = Guarded::spawn_detached(&mut plan.apiserver_command(&binaries.apiserver, dir)?)
        .map_err(|source| ProcessError::Spawn {
            program: binaries.apiserver.display().to_string(),
            source,
        })?;
    let pids = [etcd, apiserver];
    fs::write(dir.join("pids"), format!("{etcd}\n{apiserver}\n"))
        .map_err(io_err("the pid file"))?;
    let server = format!("https://127.0.0.1:{}", plan.apiserver_port);
    let alive = || {
        for (pid, process, log) in [
            (etcd, "etcd", "etcd.log"),
            (apiserver, "kube-apiserver", "kube-apiserver.log"),
        ] {
            if !running_child(pid) {
                let state = fs::read_to_string(format!("/proc/{pid}/stat")).map_or_else(
                    |_| "no such process".to_owned(),
                    |s| format!("/proc/{pid}/stat: {}", s.trim()),
                );
                return Err(Error::Exited {
                    process,
                    status: format!("pid {pid} gone: {state}"),
                    log_tail: log_tail(&dir.join(log)),
                });
            }
        }
        Ok(())
    };
    match wait_ready(dir, &server, &plan.token, started, timeout, alive).await {
        Ok(_) => Ok(Detached {
            server,
            kubeconfig: dir.join("kubeconfig"),
            pids,
            startup: started.elapsed(),
        }),
        Err(e) => {
            stop_detached(dir);
            Err(e)
        }
    }
}

/// Kill the processes listed in `<dir>/pids` (only if they still run the expected binary, so a recycled pid is
/// never signalled) and wait for them to go. Returns the pids that were stopped.
pub fn stop_detached(dir: &Path) -> Vec<u32> {
    let Ok(text) = fs::read_to_string(dir.join("pids")) else {
        return Vec::new();
    };
    let mut stopped = Vec::new();
    // The apiserver first (second line), so it does not log etcd errors while shutting down.
    let pids: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    for (pid, process) in pids.into_iter().zip(["etcd", "kube-apiserver"]).rev() {
        if pid_is(pid, process) {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
            if !crate::process::wait_gone(pid, Duration::from_secs(10)) {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
                crate::process::wait_gone(pid, Duration::from_secs(5));
            }
            stopped.push(pid);
        }
    }
    let _ = fs::remove_file(dir.join("pids"));
    stopped
}

/// Whether our own, unreaped child `pid` still runs (exists and is not a zombie). Its pid cannot have been reused
/// while we have not reaped it. Not by name: right after exec, `/proc/<pid>/cmdline` is briefly empty.
fn running_child(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) S ...": the state follows the last ')', since comm may contain spaces or parentheses.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X") | None)
}

/// Whether `pid` runs a program whose file name is `process` (and is not a zombie). For processes started long
/// ago by another invocation (`down`, `status`), where the pid may have been recycled.
pub fn pid_is(pid: u32, process: &str) -> bool {
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    Path::new(&*String::from_utf8_lossy(argv0))
        .file_name()
        .is_some_and(|n| n == process)
}

/// Everything decided before the processes start: ports, token, key files.
pub(crate) struct Plan {
    pub(crate) etcd_port: u16,
    pub(crate) etcd_peer_port: u16,
    pub(crate) apiserver_port: u16,
    pub(crate) token: String,
}

impl Plan {
    /// Pick ports, write the token file and generate the service-account key in `dir`.
    pub(crate) fn prepare(dir: &Path) -> Result<Self, Error> {
        let [etcd_port, etcd_peer_port, apiserver_port] = free_ports()?;
        let token = random_token()?;
        fs::create_dir_all(dir.join("pki")).map_err(io_err("the cert directory"))?;
        fs::write(
            dir.join("tokens.csv"),
            format!("{token},{ADMIN_USER},{ADMIN_USER},\"system:masters\"\n"),
        )
        .map_err(io_err("the token file"))?;
        let out = Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(dir.join("sa.key"))
            .arg("2048")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::KeyGen(e.to_string()))?;
        if !out.status.success() {
            return Err(Error::KeyGen(
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ));
        }
        Ok(Self {
            etcd_port,
            etcd_peer_port,
            apiserver_port,
            token,
        })
    }

    pub(crate) fn etcd_command(&self, bin: &Path, dir: &Path) -> Result<Command, Error> {
        let client = format!("http://127.0.0.1:{}", self.etcd_port);
        let peer = format!("http://127.0.0.1:{}", self.etcd_peer_port);
        let mut cmd = Command::new(bin);
        cmd.arg("--name=kube-testenv")
            .arg(format!("--data-dir={}", dir.join("etcd").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=kube-testenv={peer}"))
            // Test data is thrown away; fsync only costs time.
            .arg("--unsafe-no-fsync")
            .arg("--log-level=warn");
        redirect_output(&mut cmd, &dir.join("etcd.log"))?;
        Ok(cmd)
    }

    pub(crate) fn apiserver_command(&self, bin: &Path, dir: &Path) -> Result<Command, Error> {
        let port = self.apiserver_port;
        let mut cmd = Command::new(bin);
        cmd.arg(format!(
            "--etcd-servers=http://127.0.0.1:{}",
            self.etcd_port
        ))
        .arg("--bind-address=127.0.0.1")
        // Without it, a host with no default route fails with "no default routes found".
        .arg("--advertise-address=127.0.0.1")
        .arg(format!("--secure-port={port}"))
        .arg(format!("--cert-dir={}", dir.join("pki").display()))
        .arg(format!(
            "--token-auth-file={}",
            dir.join("tokens.csv").display()
        ))
        .arg("--authorization-mode=RBAC")
        .arg(format!("--service-account-issuer=https://127.0.0.1:{port}"))
        .arg(format!(
            "--service-account-key-file={}",
            dir.join("sa.key").display()
        ))
        .arg(format!(
            "--service-account-signing-key-file={}",
            dir.join("sa.key").display()
        ))
        .arg("--service-cluster-ip-range=10.0.0.0/24")
        .arg("--allow-privileged=true")
        // Nothing creates the `default` ServiceAccount (no controller-manager), so pods would be rejected.
        .arg("--disable-admission-plugins=ServiceAccount")
        .arg("--endpoint-reconciler-type=none")
        .arg("--enable-priority-and-fairness=false")
        .arg("--profiling=false");
        redirect_output(&mut cmd, &dir.join("kube-apiserver.log"))?;
        Ok(cmd)
    }
}

/// The admin kubeconfig; the same text shape serves every token-authenticated client.
pub(crate) fn kubeconfig_yaml(server: &str, ca_pem: &str, user: &str, token: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-testenv\n  cluster:\n    server: {server}\n    \
         certificate-authority-data: {ca}\nusers:\n- name: {user}\n  user:\n    token: {token}\ncontexts:\n\
         - name: kube-testenv\n  context:\n    cluster: kube-testenv\n    user: {user}\n    namespace: default\n\
         current-context: kube-testenv\n"
    )
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

fn redirect_output(cmd: &mut Command, log: &Path) -> Result<(), Error> {
    let file = fs::File::create(log).map_err(io_err("a log file"))?;
    let err = file.try_clone().map_err(io_err("a log file"))?;
    cmd.stdin(Stdio::null()).stdout(file).stderr(err);
    Ok(())
}

/// Three distinct free loopback ports. Held open together so they differ; a small race with other programs
/// remains between closing them and the servers binding (a start-up failure then names the port).
fn free_ports() -> Result<[u16; 3], Error> {
    let bind = || TcpListener::bind("127.0.0.1:0").map_err(io_err("a free port"));
    let (a, b, c) = (bind()?, bind()?, bind()?);
    let port = |l: &TcpListener| {
        l.local_addr()
            .map(|a| a.port())
            .map_err(io_err("a free port"))
    };
    Ok([port(&a)?, port(&b)?, port(&c)?])
}

fn random_token() -> Result<String, Error> {
    let mut buf = [0u8; 24];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(io_err("a random token"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn start_timeout_from_env() -> Duration {
    std::env::var(START_TIMEOUT_ENV)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(DEFAULT_START_TIMEOUT, Duration::from_secs)
}

/// The last 30 lines of a log, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|e| format!("<cannot read {}: {e}>", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn io_err(what: &str) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        what: what.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_parses() {
        let yaml = kubeconfig_yaml("https://127.0.0.1:1234", "PEM", "u", "tok");
        let kc = Kubeconfig::from_yaml(&yaml).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("kube-testenv"));
        assert_eq!(
            kc.clusters[0].cluster.as_ref().unwrap().server.as_deref(),
            Some("https://127.0.0.1:1234")
        );
    }

    #[test]
    fn ports_are_distinct() {
        let [a, b, c] = free_ports().unwrap();
        assert!(a != b && b != c && a != c);
    }

    #[test]
    fn tokens_are_random_hex() {
        let (a, b) = (random_token().unwrap(), random_token().unwrap());
        assert_eq!(a.len(), 48);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
