//! The in-pod side: what the stock `clearml-agent execute --full-monitoring --require-queue --id <task>` does in a
//! task container, played by the simulator for pods labelled `clearml-task-id` (`--in-pod-agent`).
//!
//! It follows clearml-agent's `commands/worker.py` (`Worker.execute`, `TaskStopSignal`,
//! `handle_task_process_termination`):
//! 1. Read the server and credentials from the container's environment (`CLEARML_API_HOST`,
//!    `CLEARML_API_ACCESS_KEY`, `CLEARML_API_SECRET_KEY`; the kubelet resolved the `secretKeyRef`s from the Secret).
//!    Log in, and fetch the task (unknown task: exit 1).
//! 2. `tasks.dequeue {task, new_status: in_progress}`; with `--require-queue` a task that was not queued (an error,
//!    or `updated: 0`) ends the process with exit 1 and no other call ("Execution required enqueued task").
//! 3. `tasks.started` (forced, `status_reason: "starting execution soon"`).
//! 4. Report the worker running the task (`workers.status_report` with `task`, then every
//!    [`InPodAgent::status_report`]), so the server turns an abort into `stopping` for this worker to act on. A pod
//!    annotated [`crate::decide::SILENT_AFTER_ANNOTATION`] stops these reports that long after the start (a task
//!    ClearML no longer hears from while its pod runs on: what the agent's no-update watchdog is for).
//!    While the task runs, read its status every [`InPodAgent::abort_poll`]: `in_progress` with `stopping` in the
//!    status message → `tasks.stopped` (`"task was stopped by tasks.stop"`) and exit 0; a status changed under it
//!    (`stopped`, `failed`, `closed`, `published`, `queued`, or `created` four times running) → exit 0 with no call.
//! 5. When the task's work ends: exit 0 → `tasks.completed` (`"worker execution done"`); else `tasks.failed` with
//!    `status_reason: "worker execution exit code N"` and `status_message: "Process failed, exit code N"`. The
//!    container then exits with the task's code (as with `CLEARML_AGENT_PROPAGATE_EXITCODE=1`; without it the stock
//!    agent exits 0 after reporting, which would hide the code from the pod).
//!
//!
//! It unregisters its worker when it exits. A process killed by the kubelet (OOM, eviction, preemption, deletion) reports nothing, as a killed container
//! could not. A `hang` pod's process never reads the task's status (a wedged container).

use std::collections::BTreeMap;
use std::time::Duration;

use clearml_api::{
    Client, ClientConfig, Dequeue, RetryPolicy, StatusChange, StatusReport, TaskStatus, codes,
};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::ObjectRef;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::config::InPodAgent;
use crate::decide::ProcessStart;

/// What the process tells the I/O loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProcessEvent {
    /// The task is dequeued and started: its run time counts from now on.
    Working,
    /// The process exited with this code.
    Exited(i32),
}

/// A [`ProcessEvent`] of the process in the pod with this uid.
#[derive(Debug)]
pub(crate) struct Report {
    pub key: ObjectRef<Pod>,
    pub uid: String,
    pub event: ProcessEvent,
}

/// A running in-pod agent process; dropping it kills it (as the kubelet kills a container).
#[derive(Debug)]
pub(crate) struct ProcessHandle {
    finish: Option<oneshot::Sender<i32>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ProcessHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ProcessHandle {
    /// The task's work is done with `code`: report it and exit. Only the first call counts.
    pub(crate) fn finish(&mut self, code: i32) {
        if let Some(tx) = self.finish.take() {
            let _ = tx.send(code);
        }
    }
}

/// What starts a process: the pod, the task, the task container's environment and the settings.
pub(crate) struct Launch {
    pub key: ObjectRef<Pod>,
    pub uid: String,
    pub task_id: String,
    /// Worker id in status messages: `CLEARML_WORKER_ID`, else the pod name (the container's hostname).
    pub worker: String,
    pub env: BTreeMap<String, String>,
    pub settings: InPodAgent,
    /// Whether it notices aborts (not in a wedged `hang` container) and when it goes silent.
    pub start: ProcessStart,
}

/// Start the in-pod agent for one pod; it reports on `reports`.
pub(crate) fn spawn(launch: Launch, reports: mpsc::UnboundedSender<Report>) -> ProcessHandle {
    let (finish_tx, finish_rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        let key = launch.key.clone();
        let uid = launch.uid.clone();
        let send = |event| {
            let _ = reports.send(Report {
                key: key.clone(),
                uid: uid.clone(),
                event,
            });
        };
        let code = run(&launch, finish_rx, || send(ProcessEvent::Working)).await;
        send(ProcessEvent::Exited(code));
    });
    ProcessHandle {
        finish: Some(finish_tx),
        task,
    }
}

/// The server and credentials a container's environment gives the agent.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub api_host: String,
    pub access_key: String,
    pub secret_key: String,
}

impl Credentials {
    /// From the container's environment; the error names the missing variables (never a value).
    pub(crate) fn from_env(env: &BTreeMap<String, String>) -> Result<Self, String> {
        let get = |k: &str| env.get(k).filter(|v| !v.is_empty()).cloned();
        let names = [
            "CLEARML_API_HOST",
            "CLEARML_API_ACCESS_KEY",
            "CLEARML_API_SECRET_KEY",
        ];
        let missing: Vec<&str> = names.into_iter().filter(|k| get(k).is_none()).collect();
        match (get(names[0]), get(names[1]), get(names[2])) {
            (Some(api_host), Some(access_key), Some(secret_key)) => Ok(Self {
                api_host,
                access_key,
                secret_key,
            }),
            _ => Err(format!(
                "the container's environment has no {}",
                missing.join(", ")
            )),
        }
    }
}

/// What the abort watch makes of the task's status (`TaskStopSignal._test`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Watch {
    /// Keep running.
    Continue,
    /// Stop the task and exit 0; `report_stopped`: call `tasks.stopped` first (an abort requested by `tasks.stop`).
    Stop { report_stopped: bool },
}

/// Consecutive `created` readings that mean the task was reset under the process.
const RESETS_TO_STOP: u32 = 4;

/// One reading of the task's status; `resets` counts consecutive `created` readings.
pub(crate) fn watch(status: Option<TaskStatus>, message: &str, resets: &mut u32) -> Watch {
    match status {
        Some(TaskStatus::InProgress) if message.contains("stopping") => Watch::Stop {
            report_stopped: true,
        },
        Some(
            TaskStatus::Closed
            | TaskStatus::Stopped
            | TaskStatus::Failed
            | TaskStatus::Published
            | TaskStatus::Queued,
        ) => Watch::Stop {
            report_stopped: false,
        },
        Some(TaskStatus::Created) => {
            *resets += 1;
            if *resets >= RESETS_TO_STOP {
                Watch::Stop {
                    report_stopped: false,
                }
            } else {
                Watch::Continue
            }
        }
        _ => {
            *resets = 0;
            Watch::Continue
        }
    }
}

/// The call that reports the end of the task's process with `code` (`handle_task_process_termination`).
pub(crate) fn end_report(
    task: &str,
    code: i32,
    change_message: &str,
) -> (&'static str, StatusChange) {
    if code == 0 {
        (
            "tasks.completed",
            StatusChange::new(task)
                .reason("worker execution done")
                .message(change_message),
        )
    } else {
        (
            "tasks.failed",
            StatusChange::new(task)
                .reason(format!("worker execution exit code {code}"))
                .message(format!("Process failed, exit code {code}")),
        )
    }
}

/// Whether the process still reports to ClearML, `working_for` after the task started.
pub(crate) fn reporting(silent_after: Option<Duration>, working_for: Duration) -> bool {
    silent_after.is_none_or(|after| working_for < after)
}

/// The process: start the task, run it until told to finish or aborted, report; returns the exit code.
async fn run(launch: &Launch, finish: oneshot::Receiver<i32>, working: impl FnOnce()) -> i32 {
    let task = launch.task_id.as_str();
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        tracing::warn!(task_id = %task, error = %e, "in-pod agent: {what}; exit 1");
        1
    };
    let creds = match Credentials::from_env(&launch.env) {
        Ok(c) => c,
        Err(e) => return fail("no ClearML connection", &e),
    };
    let mut config = ClientConfig::new(creds.api_host, creds.access_key, creds.secret_key);
    config.retry = RetryPolicy {
        max_retries: launch.settings.max_retries,
        ..RetryPolicy::default()
    };
    let client = match Client::new(config) {
        Ok(c) => c,
        Err(e) => return fail("bad ClearML connection", &e),
    };
    if let Err(e) = client.login().await {
        return fail("login failed", &e);
    }
    if let Err(e) = client.tasks_get_by_id(task).await {
        return fail("could not find the task", &e);
    }
    let dequeued = client
        .tasks_dequeue(&Dequeue {
            task: task.to_owned(),
            new_status: Some(TaskStatus::InProgress),
            ..Dequeue::default()
        })
        .await;
    match dequeued {
        Ok(d) if d.updated >= 1 => {}
        Ok(_) => {
            return fail(
                "execution required an enqueued task, but the task is not queued",
                &"updated 0",
            );
        }
        Err(e) => {
            return fail(
                "execution required an enqueued task, but the task is not queued",
                &e,
            );
        }
    }
    let started = StatusChange::new(task)
        .force()
        .reason("starting execution soon")
        .message("");
    if let Err(e) = client.tasks_started(&started).await {
        return fail("tasks.started failed", &e);
    }
    tracing::info!(task_id = %task, "in-pod agent: task dequeued and started");
    report_worker(&client, &launch.worker, task).await;
    working();
    let code = follow(&client, launch, finish).await;
    if let Err(e) = client.workers_unregister(&launch.worker).await {
        tracing::debug!(task_id = %task, error = %e, "in-pod agent: workers.unregister failed");
    }
    code
}

/// `workers.status_report` naming the task (the resource monitor's report); a failure is only logged.
async fn report_worker(client: &Client, worker: &str, task: &str) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let report = StatusReport {
        worker: worker.to_owned(),
        timestamp: now_ms,
        task: Some(task.to_owned()),
        ..StatusReport::default()
    };
    if let Err(e) = client.workers_status_report(&report).await {
        tracing::debug!(task_id = %task, error = %e, "in-pod agent: workers.status_report failed");
    }
}

/// Run the started task until told to finish (report the end) or aborted; returns the exit code.
async fn follow(client: &Client, launch: &Launch, finish: oneshot::Receiver<i32>) -> i32 {
    let task = launch.task_id.as_str();
    let change_message = format!("Changed by clearml-agent {}", launch.worker);
    let mut finish = std::pin::pin!(finish);
    let mut resets = 0;
    let mut reports = tokio::time::interval(launch.settings.status_report);
    reports.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate, and the first report was just sent.
    reports.tick().await;
    let started = tokio::time::Instant::now();
    let mut silent = false;
    loop {
        tokio::select! {
            _ = reports.tick(), if !silent => {
                if reporting(launch.start.silent_after, started.elapsed()) {
                    report_worker(client, &launch.worker, task).await;
                } else {
                    tracing::info!(task_id = %task, "in-pod agent: silent from now on (no more reports)");
                    silent = true;
                }
            }
            code = &mut finish => {
                // A dropped sender means the loop is gone with the pod; the process is killed with it anyway.
                let Ok(code) = code else { return 0 };
                let (endpoint, body) = end_report(task, code, &change_message);
                if let Err(e) = client.call::<_, Value>(endpoint, &body).await {
                    tracing::warn!(task_id = %task, endpoint, error = %e, "in-pod agent: could not report the end");
                }
                tracing::info!(task_id = %task, code, endpoint, "in-pod agent: task process ended");
                return code;
            }
            () = tokio::time::sleep(launch.settings.abort_poll), if launch.start.watch_aborts => {
                let reading = match client.tasks_get_by_id(task).await {
                    Ok(t) => watch(t.status, t.status_message.as_deref().unwrap_or_default(), &mut resets),
                    // TaskNotFoundError: the process ends; anything else is retried on the next reading.
                    Err(e) if e.is(codes::INVALID_TASK_ID) => Watch::Stop { report_stopped: false },
                    Err(e) => {
                        tracing::debug!(task_id = %task, error = %e, "in-pod agent: status reading failed");
                        Watch::Continue
                    }
                };
                if let Watch::Stop { report_stopped } = reading {
                    if report_stopped {
                        let body = StatusChange::new(task)
                            .reason("task was stopped by tasks.stop")
                            .message(change_message.as_str());
                        if let Err(e) = client.tasks_stopped(&body).await {
                            tracing::warn!(task_id = %task, error = %e, "in-pod agent: tasks.stopped failed");
                        }
                    }
                    tracing::info!(task_id = %task, report_stopped, "in-pod agent: task aborted; exit 0");
                    return 0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_the_env_and_a_gap_is_named() {
        let env: BTreeMap<String, String> = [
            ("CLEARML_API_HOST", "http://api"),
            ("CLEARML_API_ACCESS_KEY", "AK"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let err = Credentials::from_env(&env).err().unwrap();
        assert_eq!(
            err,
            "the container's environment has no CLEARML_API_SECRET_KEY"
        );
        let mut full = env.clone();
        full.insert("CLEARML_API_SECRET_KEY".into(), "SK".into());
        let c = Credentials::from_env(&full).unwrap();
        assert_eq!(
            (c.api_host.as_str(), c.secret_key.as_str()),
            ("http://api", "SK")
        );
    }

    #[test]
    fn the_abort_watch_follows_the_real_agent() {
        let mut resets = 0;
        let stop = |report_stopped| Watch::Stop { report_stopped };
        assert_eq!(
            watch(Some(TaskStatus::InProgress), "", &mut resets),
            Watch::Continue
        );
        assert_eq!(
            watch(Some(TaskStatus::InProgress), "stopping", &mut resets),
            stop(true)
        );
        for s in [
            TaskStatus::Stopped,
            TaskStatus::Failed,
            TaskStatus::Queued,
            TaskStatus::Closed,
        ] {
            assert_eq!(watch(Some(s), "", &mut resets), stop(false));
        }
        // A reset is believed after four readings in a row.
        for _ in 0..3 {
            assert_eq!(
                watch(Some(TaskStatus::Created), "", &mut resets),
                Watch::Continue
            );
        }
        assert_eq!(
            watch(Some(TaskStatus::Created), "", &mut resets),
            stop(false)
        );
    }

    #[test]
    fn a_silent_agent_stops_reporting_after_its_delay() {
        let secs = Duration::from_secs;
        assert!(reporting(None, secs(86_400)));
        assert!(reporting(Some(secs(10)), secs(9)));
        assert!(!reporting(Some(secs(10)), secs(10)));
        // Silent right after the first report (sent before this loop).
        assert!(!reporting(Some(Duration::ZERO), Duration::ZERO));
    }

    #[test]
    fn the_end_report_names_the_exit_code() {
        let (endpoint, body) = end_report("t1", 0, "Changed by clearml-agent w");
        assert_eq!(endpoint, "tasks.completed");
        assert_eq!(body.status_reason.as_deref(), Some("worker execution done"));
        let (endpoint, body) = end_report("t1", 3, "Changed by clearml-agent w");
        assert_eq!(endpoint, "tasks.failed");
        assert_eq!(
            body.status_reason.as_deref(),
            Some("worker execution exit code 3")
        );
        assert_eq!(
            body.status_message.as_deref(),
            Some("Process failed, exit code 3")
        );
    }
}
