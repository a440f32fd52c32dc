//! A control plane that outlives the process that started it (`kube-testenv up`, the demo), stopped by pid file.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use crate::bins::Binaries;
use crate::control_plane::{Error, io_err, log_tail, wait_ready};
use crate::plan::Plan;
use crate::process::{Guarded, ProcessError};

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
