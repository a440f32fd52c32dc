//! Child processes that cannot outlive the test binary that started them.
//!
//! Three layers, because each covers a way of dying the others miss:
//! 1. [`Guarded`] kills and reaps its process on `Drop` (normal end, unwinding panic).
//! 2. An `atexit` hook kills every process still registered. The shared control plane lives in a `static`, which
//!    Rust never drops; libtest leaves through `exit()`, which runs `atexit` hooks.
//! 3. `PR_SET_PDEATHSIG(SIGKILL)`: the kernel kills the child when the test binary is killed outright (SIGKILL,
//!    abort, Ctrl-C), where no Rust code runs. The signal fires when the *thread* that forked the child exits, and
//!    libtest runs each test on its own short-lived thread, so every guarded child is forked from one supervisor
//!    thread that lives as long as the process.
//!
//! Processes are only ever signalled by the pid they were spawned with, and only while not yet reaped (so the pid
//! cannot have been recycled).

use std::{
    io,
    path::{Path, PathBuf},
    process::{Child, Command},
    sync::{Mutex, Once, OnceLock, mpsc},
    time::{Duration, Instant},
};

/// Errors from spawning or stopping a guarded process.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The program could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program path.
        program: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The supervisor thread that forks guarded children is gone (it only stops if it panicked).
    #[error("the process supervisor thread is not running")]
    SupervisorGone,
}

/// A request to the supervisor thread: the command and where to send the spawned child.
type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Pids of guarded children that have not been reaped yet; the `atexit` hook kills these.
static LIVE_PIDS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
/// Directories to delete at exit, after their processes are dead (etcd data, certs, logs of the shared plane).
static EXIT_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static SUPERVISOR: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
static ATEXIT: Once = Once::new();

/// A child process that is killed (SIGKILL) and reaped when this value is dropped, at process exit, or by the kernel
/// when the test binary dies.
#[derive(Debug)]
pub struct Guarded {
    /// Short name for logs and errors ("etcd", "kube-apiserver").
    name: String,
    child: Child,
    /// Set once the child was reaped, so `Drop` does not signal a pid that may have been recycled.
    reaped: bool,
}

impl Guarded {
    /// Spawn `cmd` from the supervisor thread with the parent-death signal set.
    pub fn spawn(name: &str, cmd: Command) -> Result<Self, ProcessError> {
        register_atexit();
        let program = cmd.get_program().to_string_lossy().into_owned();
        let (tx, rx) = mpsc::channel();
        supervisor()?
            .lock()
            .map_err(|_| ProcessError::SupervisorGone)?
            .send((cmd, tx))
            .map_err(|_| ProcessError::SupervisorGone)?;
        let child = rx
            .recv()
            .map_err(|_| ProcessError::SupervisorGone)?
            .map_err(|source| ProcessError::Spawn { program, source })?;
        if let Ok(mut pids) = LIVE_PIDS.lock() {
            pids.push(child.id());
        }
        tracing::debug!(process = name, pid = child.id(), "started");
        Ok(Self {
            name: name.to_owned(),
            child,
            reaped: false,
        })
    }

    /// Spawn without any guard: the process outlives this one (`kube-testenv up` for manual use).
    pub fn spawn_detached(cmd: &mut Command) -> io::Result<u32> {
        // Its own process group, so a Ctrl-C in the terminal that ran `up` does not reach the control plane.
        std::os::unix::process::CommandExt::process_group(cmd, 0);
        let child = cmd.spawn()?;
        Ok(child.id())
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the process has already exited (reaps it).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        if self.reaped {
            return None;
        }
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.mark_reaped();
                Some(status)
            }
            _ => None,
        }
    }

    /// SIGKILL and reap. Idempotent.
    pub fn kill(&mut self) {
        if self.reaped {
            return;
        }
        // Kill by the pid we spawned; it is still ours because it has not been reaped.
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.mark_reaped();
        tracing::debug!(process = %self.name, pid = self.child.id(), "stopped");
    }

    fn mark_reaped(&mut self) {
        self.reaped = true;
        let pid = self.child.id();
        if let Ok(mut pids) = LIVE_PIDS.lock() {
            pids.retain(|p| *p != pid);
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Delete `dir` at process exit, after the guarded processes are dead.
pub fn remove_at_exit(dir: PathBuf) {
    register_atexit();
    if let Ok(mut dirs) = EXIT_DIRS.lock() {
        dirs.push(dir);
    }
}

/// Forget a directory registered with [`remove_at_exit`] (it was already removed by its owner).
pub fn forget_exit_dir(dir: &std::path::Path) {
    if let Ok(mut dirs) = EXIT_DIRS.lock() {
        dirs.retain(|d| d != dir);
    }
}

/// Wait until `pid` is gone or `timeout` passes. For processes we did not spawn in this process (`down`).
pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return true;
        }
        // Polling /proc is the only portable way to wait for a process that is not our child.
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn supervisor() -> Result<&'static Mutex<mpsc::Sender<SpawnRequest>>, ProcessError> {
    if let Some(s) = SUPERVISOR.get() {
        return Ok(s);
    }
    let (tx, rx) = mpsc::channel::<SpawnRequest>();
    let spawned = std::thread::Builder::new()
        .name("kube-testenv-supervisor".into())
        .spawn(move || {
            // Lives until the process exits (the sender sits in a static), so PDEATHSIG fires only then.
            while let Ok((mut cmd, reply)) = rx.recv() {
                set_parent_death_signal(&mut cmd);
                let _ = reply.send(cmd.spawn());
            }
        });
    if spawned.is_err() {
        return Err(ProcessError::SupervisorGone);
    }
    // If another thread raced us, its supervisor wins and ours exits when `tx` is dropped.
    Ok(SUPERVISOR.get_or_init(|| Mutex::new(tx)))
}

// `pre_exec` is unsafe because the closure runs between fork and exec, where only async-signal-safe calls are
// allowed; prctl, getppid and _exit are. There is no safe std API for a parent-death signal.
#[allow(unsafe_code)]
fn set_parent_death_signal(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: the closure only makes async-signal-safe syscalls and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl; then nobody would ever send the signal.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

// `atexit` is an FFI call; registering a plain `extern "C"` function with it is sound.
#[allow(unsafe_code)]
fn register_atexit() {
    ATEXIT.call_once(|| {
        // SAFETY: `kill_all_at_exit` is a valid `extern "C" fn()` with static lifetime.
        let rc = unsafe { libc::atexit(kill_all_at_exit) };
        if rc != 0 {
            tracing::warn!(
                "atexit registration failed; the parent-death signal still stops the children"
            );
        }
    });
}

// Signalling and reaping pids from an exit hook needs libc; these pids are our own unreaped children.
#[allow(unsafe_code)]
extern "C" fn kill_all_at_exit() {
    // try_lock: never block process exit on a lock held by a thread that was torn down mid-update.
    if let Ok(pids) = LIVE_PIDS.try_lock() {
        for &pid in pids.iter() {
            let Ok(pid) = libc::pid_t::try_from(pid) else {
                continue;
            };
            // SAFETY: plain syscalls on a pid we spawned and have not reaped.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
    }
    if let Ok(dirs) = EXIT_DIRS.try_lock() {
        for dir in dirs.iter() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exists(pid: u32) -> bool {
        // A killed child is reaped by `kill`, so its /proc entry disappears.
        Path::new(&format!("/proc/{pid}")).exists()
    }

    #[test]
    fn drop_kills_and_reaps() {
        let mut cmd = Command::new("sleep");
        cmd.arg("300");
        let child = Guarded::spawn("sleep", cmd).unwrap();
        let pid = child.pid();
        assert!(exists(pid));
        assert!(LIVE_PIDS.lock().unwrap().contains(&pid));
        drop(child);
        assert!(!exists(pid));
        assert!(!LIVE_PIDS.lock().unwrap().contains(&pid));
    }

    #[test]
    fn exited_reports_and_reaps() {
        let mut child = Guarded::spawn("true", Command::new("true")).unwrap();
        let pid = child.pid();
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.exited() {
                break status;
            }
            assert!(Instant::now() < deadline, "`true` did not exit");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(status.success());
        assert!(!LIVE_PIDS.lock().unwrap().contains(&pid));
    }

    #[test]
    fn spawn_error_names_the_program() {
        let err = Guarded::spawn("x", Command::new("/nonexistent/kube-apiserver")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/kube-apiserver"),
            "{err}"
        );
    }
}
