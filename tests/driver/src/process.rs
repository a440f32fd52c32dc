//! A child process with its output in a log file: signalled by pid through `kill(1)` (the workspace denies unsafe
//! code, so no libc), waited for, killed if dropped.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};

/// A child process could not be started, signalled or waited for, or ended when it should not have.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The log file or the process could not be created.
    #[error("starting {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It exited while it should be running.
    #[error("{name} exited with {status} (log {log}):\n{tail}")]
    Exited {
        /// Short name.
        name: String,
        /// How it ended.
        status: ExitStatus,
        /// Its log file.
        log: PathBuf,
        /// The last lines of its log.
        tail: String,
    },
    /// It did not exit in time after the signal (it was killed).
    #[error("{name} did not stop within {within:?} of SIG{signal} (killed)")]
    StopTimeout {
        /// Short name.
        name: String,
        /// The signal sent.
        signal: &'static str,
        /// How long the driver waited.
        within: Duration,
    },
    /// Sending a signal or waiting failed.
    #[error("signalling {name}: {source}")]
    Signal {
        /// Short name.
        name: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A running child; killed when dropped.
pub struct LoggedChild {
    name: String,
    child: Child,
    pid: u32,
    log: PathBuf,
}

impl LoggedChild {
    /// Spawn `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Self, ProcessError> {
        let program = cmd.as_std().get_program().to_string_lossy().into_owned();
        let spawn_err = |source| ProcessError::Spawn {
            program: program.clone(),
            source,
        };
        let file = std::fs::File::create(log).map_err(spawn_err)?;
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone().map_err(spawn_err)?)
            .stderr(file)
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(spawn_err)?;
        Ok(Self {
            name: name.to_string(),
            pid: child.id().unwrap_or_default(),
            child,
            log: log.to_path_buf(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// An error if the process has exited.
    pub fn check_alive(&mut self) -> Result<(), ProcessError> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(ProcessError::Exited {
                name: self.name.clone(),
                status,
                log: self.log.clone(),
                tail: self.log_tail(20),
            }),
            Ok(None) => Ok(()),
            Err(source) => Err(self.signal_err(source)),
        }
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Send `signal` (`TERM`, `INT`), then wait for the exit (killed after `within`). Returns how it exited.
    pub async fn stop(
        mut self,
        signal: &'static str,
        within: Duration,
    ) -> Result<ExitStatus, ProcessError> {
        self.check_alive()?;
        let sent = Command::new("kill")
            .args([format!("-{signal}"), self.pid.to_string()])
            .status()
            .await
            .map_err(|e| self.signal_err(e))?;
        if !sent.success() {
            let err = std::io::Error::other(format!("kill -{signal} {} failed", self.pid));
            return Err(self.signal_err(err));
        }
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => status.map_err(|e| self.signal_err(e)),
            Err(_) => {
                let _ = self.child.kill().await;
                Err(ProcessError::StopTimeout {
                    name: self.name.clone(),
                    signal,
                    within,
                })
            }
        }
    }

    fn signal_err(&self, source: std::io::Error) -> ProcessError {
        ProcessError::Signal {
            name: self.name.clone(),
            source,
        }
    }
}
