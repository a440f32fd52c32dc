//! The threads that run policy work off the async reactor ([`crate::PolicyEngine::run_blocking`]).
//!
//! A fixed set of long-lived threads takes jobs from one queue. In a burst a thread goes from one chain to the next
//! without sleeping, with the components' code and pool slots still in its caches; behind a semaphore in front of
//! tokio's blocking pool, every job took three cross-thread wake-ups (permit, blocking thread, result) and started
//! cold. The agent's CPU per task fell ~15% with the chain (BENCHMARKS.md).

use std::any::Any;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};

/// A job's outcome: its value, or the panic it raised (re-raised in the caller, as a direct call would).
type Outcome<R> = Result<R, Box<dyn Any + Send>>;

type Job = Box<dyn FnOnce() + Send>;

/// The worker threads could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the policy worker threads: {0}")]
pub struct WorkersError(#[source] std::io::Error);

/// The queue in front of the workers. They stop when it is dropped, after the jobs already queued.
pub(crate) struct Workers {
    queue: Sender<Job>,
}

impl Workers {
    /// Start `count` threads (at least one).
    pub(crate) fn start(count: usize) -> Result<Self, WorkersError> {
        let (queue, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..count.max(1) {
            let jobs = jobs.clone();
            std::thread::Builder::new()
                .name(format!("policy-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next job, never while running one.
                        let next = match jobs.lock() {
                            Ok(jobs) => jobs.recv(),
                            Err(_) => return,
                        };
                        match next {
                            Ok(job) => job(),
                            Err(_) => return, // the engine is gone
                        }
                    }
                })
                .map_err(WorkersError)?;
        }
        Ok(Self { queue })
    }

    /// Run `work` on a worker and wait for it without blocking the reactor. A panic in `work` is re-raised here.
    pub(crate) async fn run<R, F>(&self, work: F) -> R
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (done, outcome) = tokio::sync::oneshot::channel::<Outcome<R>>();
        let job: Job = Box::new(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            // The caller may have gone (its future dropped): nobody is left to tell.
            let _ = done.send(outcome);
        });
        if let Err(mpsc::SendError(job)) = self.queue.send(job) {
            // Only if every worker thread died, which a panicking job cannot cause: run it on tokio's pool.
            tokio::task::spawn_blocking(job);
        }
        match outcome.await {
            Ok(Ok(value)) => value,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            // A queued job always runs and always answers (workers drain the queue before they stop, and the
            // queue outlives this call), so the answer cannot be lost.
            Err(_) => unreachable!("a policy job was dropped without running"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_job_reaches_its_caller_and_the_workers_carry_on() {
        let workers = Arc::new(Workers::start(1).unwrap());
        let w = workers.clone();
        let panicked = tokio::spawn(async move { w.run(|| panic!("boom in a job")).await }).await;
        let message = panicked.unwrap_err().into_panic();
        assert_eq!(message.downcast_ref::<&str>(), Some(&"boom in a job"));
        // The one worker survived the panic.
        assert_eq!(workers.run(|| 40 + 2).await, 42);
    }

    #[tokio::test]
    async fn jobs_queued_behind_a_busy_worker_all_run() {
        let workers = Arc::new(Workers::start(1).unwrap());
        let runs: Vec<_> = (0..20)
            .map(|i| {
                let w = workers.clone();
                tokio::spawn(async move { w.run(move || i * 2).await })
            })
            .collect();
        for (i, run) in runs.into_iter().enumerate() {
            assert_eq!(run.await.unwrap(), i * 2);
        }
    }
}
