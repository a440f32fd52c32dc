//! The dispatch loop: ask ClearML once per round which monitored queues have entries (one `queues.get_all` for all
//! of them, so an idle agent costs about one request per poll interval whatever the number of queues), ask
//! [`crate::dispatch::plan`] what to pop given the pod watch's counts, pop exactly that, and hand each task to a
//! submission ([`crate::submit`]) running concurrently. While queues yield tasks it re-polls at once; when idle it
//! waits for the poll interval, or for a pod to finish when capacity is what holds tasks back.

use std::sync::Arc;
use std::time::Duration;

use clearml_api::QueuesGetAll;
use kube::api::ListParams;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::Shared;
use crate::dispatch::{self, QueueState};
use crate::health::Dependency;
use crate::kube::PodTracker;
use crate::submit;

/// How many tasks wait in each monitored queue, in one request.
async fn waiting_counts(shared: &Shared, cap: u32) -> Result<Vec<u32>, clearml_api::Error> {
    let found = shared
        .clearml
        .queues_get_all(&QueuesGetAll {
            id: shared.queues.iter().map(|q| q.id.clone()).collect(),
            only_fields: vec!["id".into(), "entries".into()],
            max_task_entries: Some(cap),
            search_hidden: true,
            ..QueuesGetAll::default()
        })
        .await?;
    Ok(shared
        .queues
        .iter()
        .map(|q| {
            found
                .iter()
                .find(|f| f.id == q.id)
                .map_or(0, |f| u32::try_from(f.entries.len()).unwrap_or(u32::MAX))
        })
        .collect())
}

pub(super) async fn dispatch_loop(
    shared: Arc<Shared>,
    max_in_flight: usize,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let mut submissions = JoinSet::new();
    let mut cursor = 0;
    let poll = shared
        .config
        .queue_poll_frequency
        .max(Duration::from_millis(50));
    let batch_cap = u32::try_from(max_in_flight.max(1) * 2).unwrap_or(u32::MAX);
    // After a round that popped tasks, an empty round waits only briefly (doubling up to the poll interval): a busy
    // queue's next task is picked up in tens of milliseconds, while an idle agent settles at one query per poll.
    let mut idle_wait = poll;
    let mut outages_seen = shared.metrics.health.outages_ended();
    while !*stop.borrow() {
        // Reap finished submissions so the set does not grow.
        while submissions.try_join_next().is_some() {}
        // Up to one batch of popped tasks may wait for a submission slot (rendered meanwhile, see
        // `submit::submit`), so a slot that frees up starts its next hand-over at once instead of after another
        // query, pop and render. They are counted as reserved capacity from the pop on, so `maxPods` still holds.
        let lookahead = max_in_flight.max(1) * 2;
        let free_slots = u32::try_from(lookahead.saturating_sub(submissions.len())).unwrap_or(0);
        if free_slots == 0 {
            // Every slot is busy and a batch waits: nothing more can be taken now, so do not ask ClearML.
            wake_on(&mut stop, poll, None, &mut submissions).await;
            continue;
        }
        // Never pop while a popped task could not get its pod: a down Kubernetes API is probed here each round
        // (the pod watch and pod creates mark it down).
        if !shared.metrics.health.is_up(Dependency::Kubernetes) && !probe_kubernetes(&shared).await
        {
            wake_on(&mut stop, poll, None, &mut submissions).await;
            continue;
        }
        let waiting = match waiting_counts(&shared, batch_cap).await {
            Ok(waiting) => {
                shared.metrics.health.record_up(Dependency::ClearMl);
                waiting
            }
            Err(err) => {
                shared.metrics.clearml_error(err.endpoint());
                shared
                    .metrics
                    .health
                    .record_down(Dependency::ClearMl, &err.to_string());
                tracing::warn!(error = %err, "cannot read the queues; retrying");
                wake_on(&mut stop, poll, None, &mut submissions).await;
                continue;
            }
        };
        // An outage just ended: a submission it interrupted may have left a task half-way (popped but not handed
        // over, or handed over without a pod). Recovery finds those now, not only at the next start.
        let ended = shared.metrics.health.outages_ended();
        if ended != outages_seen {
            outages_seen = ended;
            tracing::info!("an outage ended: looking for interrupted submissions");
            crate::recover::recover(&shared).await;
        }
        let counts = shared.tracker.counts();
        let states: Vec<QueueState> = shared
            .queues
            .iter()
            .zip(&waiting)
            .map(|(queue, &waiting)| QueueState {
                waiting,
                active: counts.per_queue.get(&queue.id).copied().unwrap_or(0),
                max_pods: queue.config.settings.max_pods,
            })
            .collect();
        let limits = dispatch::Limits {
            global_free: shared
                .config
                .max_pods
                .map_or(u32::MAX, |max| max.saturating_sub(counts.total)),
            batch: free_slots,
        };
        let plan = dispatch::plan(&states, limits, cursor);
        cursor = plan.next_cursor;
        if plan.pops.is_empty() {
            // Tasks wait but capacity holds them back: a finishing pod or submission is what changes that.
            let held_back = waiting.iter().any(|&w| w > 0);
            let delay = if held_back { poll } else { idle_wait };
            wake_on(
                &mut stop,
                delay,
                held_back.then_some(&shared.tracker),
                &mut submissions,
            )
            .await;
            idle_wait = (idle_wait * 2).min(poll);
            continue;
        }
        let clearml = &shared.clearml;
        let pops = plan.pops.iter().map(|&index| {
            let queue_id = shared.queues[index].id.clone();
            async move { (index, clearml.queues_get_next_task(&queue_id).await) }
        });
        let mut popped = Vec::new();
        for (index, result) in futures::future::join_all(pops).await {
            let queue = &shared.queues[index];
            match result {
                Ok(Some(next)) => {
                    crate::metrics::Metrics::per_queue(
                        &shared.metrics.tasks_popped,
                        &queue.config.name,
                    );
                    shared.tracker.reserve(&next.entry.task, &queue.id);
                    popped.push((queue.clone(), next));
                }
                Ok(None) => {}
                Err(err) => {
                    shared.metrics.clearml_error(err.endpoint());
                    tracing::warn!(queue = %queue.config.name, error = %err, "pop failed");
                }
            }
        }
        // One read for the whole round's tasks; a submission whose task is missing here reads it itself.
        let ids: Vec<String> = popped
            .iter()
            .map(|(_, next)| next.entry.task.clone())
            .collect();
        let mut documents = if ids.is_empty() {
            Default::default()
        } else {
            submit::fetch_tasks(&shared, &ids)
                .await
                .unwrap_or_else(|err| {
                    shared.metrics.clearml_error(err.endpoint());
                    Default::default()
                })
        };
        let popped_count = popped.len();
        // The tasks read with the round are rendered together (`submit::render_round`: their chains back to back);
        // a task missing from the read is read and rendered by its own submission.
        let (mut round, mut contexts, mut alone) = (Vec::new(), Vec::new(), Vec::new());
        for (queue, next) in popped {
            match documents.remove(&next.entry.task) {
                Some(task) => {
                    let user = next.task_info.as_ref().and_then(|i| i.user.clone());
                    contexts.push((queue.clone(), submit::task_context(&task, &queue, user)));
                    round.push((queue, next));
                }
                None => alone.push((queue, next)),
            }
        }
        let rendered = submit::render_round(shared.render_context(), contexts).await;
        for ((queue, next), rendered) in round.into_iter().zip(rendered) {
            submissions.spawn(submit::submit(
                shared.clone(),
                queue,
                next,
                submit::Prefetched::Rendered(Box::new(rendered)),
                permits.clone(),
            ));
        }
        for (queue, next) in alone {
            submissions.spawn(submit::submit(
                shared.clone(),
                queue,
                next,
                submit::Prefetched::Nothing,
                permits.clone(),
            ));
        }
        if popped_count == 0 {
            wake_on(&mut stop, idle_wait, None, &mut submissions).await;
            idle_wait = (idle_wait * 2).min(poll);
        } else {
            idle_wait = Duration::from_millis(25).min(poll);
        }
    }
    // Shutdown: no more pops; let what was popped reach its pod (or its failure) so no task is left half-way.
    while submissions.join_next().await.is_some() {}
}

/// One cheap call to a Kubernetes API marked down (list at most one of the agent's pods): `true` when it answered.
async fn probe_kubernetes(shared: &Shared) -> bool {
    let params = ListParams::default()
        .labels(&crate::kube::instance_selector(&shared.identity.instance))
        .limit(1);
    match shared.pods.list_metadata(&params).await {
        Ok(_) => {
            shared.metrics.health.record_up(Dependency::Kubernetes);
            true
        }
        Err(err) => {
            shared.metrics.kube_error("probe");
            tracing::debug!(error = %err, "the Kubernetes API still does not answer");
            false
        }
    }
}

/// Wait `delay`, or less: until a submission ends, a pod frees capacity (when `capacity` is given), or shutdown.
async fn wake_on(
    stop: &mut tokio::sync::watch::Receiver<bool>,
    delay: Duration,
    capacity: Option<&PodTracker>,
    submissions: &mut JoinSet<()>,
) {
    let capacity_changed = async {
        match capacity {
            Some(tracker) => tracker.changed().await,
            None => std::future::pending().await,
        }
    };
    let submission_ended = async {
        if submissions.join_next().await.is_none() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        () = capacity_changed => {}
        () = submission_ended => {}
        _ = stop.wait_for(|s| *s) => {}
    }
}
