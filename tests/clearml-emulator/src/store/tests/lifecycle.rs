//! Status calls, abort, enqueue and dequeue (clearml-server `bll/task/task_operations.py`, `services/tasks.py`).

use super::*;

// task_operations.py stop_task: a live worker gets "stopping"; the status change still stamps status_changed.
#[test]
fn task_operations_stop_task_with_a_live_worker_sets_stopping_and_bumps_status_changed() {
    let mut s = store();
    let t = running(&mut s, "task", T0);
    let at = T0.plus_secs(30);
    let v = s.tasks_stop(req(json!({"task": t})), at).unwrap();
    let task = &s.tasks[&t];
    assert_eq!(
        (task.status, task.status_message.as_str()),
        (TaskStatus::InProgress, "stopping")
    );
    assert_eq!(task.status_changed, at);
    assert_eq!(v["fields"]["status_changed"], json!(at));
    assert_eq!(task.completed, None, "stop never stamps completed");
    // The in-pod agent then reports the stop itself.
    s.tasks_stopped(req(json!({"task": t})), at.plus_secs(1))
        .unwrap();
    assert_eq!(s.tasks[&t].status, TaskStatus::Stopped);
    assert_eq!(s.tasks[&t].completed, Some(at.plus_secs(1)));
}

// task_operations.py stop_task: queued, development, or no live worker -> stopped at once, "Stopped by <user>".
#[test]
fn task_operations_stop_task_without_a_live_worker_stops_at_once() {
    let mut s = store();
    let q = queue(&mut s, "queue");
    let queued = task(&mut s, "queued");
    s.tasks_enqueue(req(json!({"task": queued, "queue": q})), T0)
        .unwrap();
    s.tasks_stop(
        req(json!({"task": queued, "status_message": "ignored"})),
        T0,
    )
    .unwrap();
    assert_eq!(s.tasks[&queued].status, TaskStatus::Stopped);
    assert_eq!(s.tasks[&queued].status_message, "Stopped by emulator");
    assert!(entries(&s, &q).is_empty(), "a queued task leaves its queue");
    assert_eq!(s.tasks[&queued].completed, None);

    // A draft with no worker cannot go to stopped without force (state machine).
    let draft = s
        .tasks_create(req(json!({"name": "draft", "type": "training"})), T0)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let err = s.tasks_stop(req(json!({"task": draft})), T0).unwrap_err();
    assert_eq!(code(err), (400, 110));
    s.tasks_stop(req(json!({"task": draft, "force": true})), T0)
        .unwrap();
    assert_eq!(s.tasks[&draft].status, TaskStatus::Stopped);
}

// services/tasks.py stop_many + bll/util.py run_batch_operation: the web UI's abort.
#[test]
fn services_tasks_stop_many_answers_succeeded_and_failed() {
    let mut s = store();
    let live = running(&mut s, "live", T0);
    let draft = s
        .tasks_create(req(json!({"name": "draft", "type": "training"})), T0)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let v = s
        .tasks_stop_many(
            req(json!({"ids": [live, "nope", draft], "status_reason": "aborted from the UI"})),
            T0.plus_secs(1),
        )
        .unwrap();
    assert_eq!(v["succeeded"][0]["id"], json!(live));
    assert_eq!(
        v["succeeded"][0]["fields"]["status_message"],
        json!("stopping")
    );
    assert_eq!(s.tasks[&live].status_reason, "aborted from the UI");
    let failed: Vec<(Value, Value)> = v["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["id"].clone(), f["error"]["codes"].clone()))
        .collect();
    assert_eq!(
        failed,
        [
            (json!("nope"), json!([400, 101])),
            (json!(draft), json!([400, 110]))
        ]
    );
}

// Which calls refresh last_update (the liveness is_run_by_worker reads): tasks.update (services/tasks.py update:
// last_change only) and properties-only hyper-parameter edits (bll/task/hyperparams.py set_last_update=not
// properties_only) do not; event batches (event_bll.py add_events -> set_last_update) and pings do.
#[test]
fn liveness_is_refreshed_by_events_and_pings_not_by_glue_writes() {
    let mut s = store();
    let t = running(&mut s, "task", T0);
    let later = T0.plus_secs(400);
    s.tasks_update(
        req(json!({"task": t, "status_message": "K8S glue status: Running"})),
        later,
    )
    .unwrap();
    s.tasks_edit_hyper_params(
        req(json!({"task": t, "hyperparams": [{"section": "Properties", "name": "k8s-queue", "value": "q"}]})),
        later,
    )
    .unwrap();
    assert_eq!(s.tasks[&t].last_update, T0);
    assert_eq!(s.tasks[&t].last_change, later);
    s.tasks_stop(req(json!({"task": t})), T0.plus_secs(601))
        .unwrap();
    assert_eq!(
        s.tasks[&t].status,
        TaskStatus::Stopped,
        "no sign of life for 600 s"
    );

    let t2 = running(&mut s, "task2", T0);
    s.events_add(
        vec![json!({"type": "log", "task": t2, "msg": "step 1", "level": "info"})],
        "w",
        later,
    )
    .unwrap();
    assert_eq!(s.tasks[&t2].last_update, later);
    assert_eq!(s.tasks[&t2].active_duration, Some(400.0));
    s.tasks_ping(req(json!({"task": t2})), later.plus_secs(100))
        .unwrap();
    s.tasks_stop(req(json!({"task": t2})), T0.plus_secs(601))
        .unwrap();
    assert_eq!(s.tasks[&t2].status_message, "stopping");
}

// bll/task/non_responsive_tasks_watchdog.py: running tasks not updated for threshold_sec are stopped.
#[test]
fn non_responsive_tasks_watchdog_stops_stale_running_tasks() {
    let mut s = store();
    let stale = running(&mut s, "stale", T0);
    let fresh = running(&mut s, "fresh", T0.plus_secs(50));
    assert_eq!(s.stop_non_responsive_tasks(T0.plus_secs(100), 60), 1);
    let t = &s.tasks[&stale];
    assert_eq!(
        (
            t.status,
            t.status_reason.as_str(),
            t.status_message.as_str()
        ),
        (
            TaskStatus::Stopped,
            "Forced stop (non-responsive)",
            "Forced stop (non-responsive)"
        )
    );
    assert_eq!(s.tasks[&fresh].status, TaskStatus::InProgress);
}

// task_operations.py enqueue_task: queued -> queued is a same-status change (allowed without force); the task
// keeps the enqueue_status of its first enqueue, and a later dequeue reverts to that.
#[test]
fn task_operations_enqueue_task_re_enqueue_keeps_the_first_enqueue_status() {
    let mut s = store();
    let (a, b) = (queue(&mut s, "queue-a"), queue(&mut s, "queue-b"));
    let t = task(&mut s, "task");
    s.tasks_enqueue(req(json!({"task": t, "queue": a})), T0)
        .unwrap();
    s.tasks_enqueue(req(json!({"task": t, "queue": b})), T0)
        .unwrap();
    assert_eq!(
        (entries(&s, &a), entries(&s, &b)),
        (vec![], vec![t.clone()])
    );
    assert_eq!(s.tasks[&t].enqueue_status, Some(TaskStatus::Created));
    s.tasks_enqueue(req(json!({"task": t, "queue": a, "force": true})), T0)
        .unwrap();
    assert_eq!(s.tasks[&t].enqueue_status, Some(TaskStatus::Created));
    let v = s.tasks_dequeue(req(json!({"task": t})), T0).unwrap();
    assert_eq!(v["updated"], json!(1));
    assert_eq!(s.tasks[&t].status, TaskStatus::Created);
    assert_eq!(s.tasks[&t].enqueue_status, None);
}

// utils.py before 1.17.0 (commit fa41e14): enqueue_task passed allow_same_state_transition=False, so a queued
// task could not be enqueued again without force (400/110), and the glue stops it first; the failed call changes
// nothing.
#[test]
fn utils_change_status_before_1_17_refuses_queued_to_queued_unless_forced() {
    let mut s = store();
    s.enqueues_queued = false;
    let (a, b) = (queue(&mut s, "queue-a"), queue(&mut s, "queue-b"));
    let t = task(&mut s, "task");
    s.tasks_enqueue(req(json!({"task": t, "queue": a})), T0)
        .unwrap();
    let refused = s
        .tasks_enqueue(req(json!({"task": t, "queue": b})), T0)
        .unwrap_err();
    assert_eq!((refused.code, refused.subcode), (400, 110));
    assert!(refused.msg.contains("Task already in requested status"));
    assert_eq!(
        (entries(&s, &a), entries(&s, &b)),
        (vec![t.clone()], vec![])
    );
    // Stopped first (what the glue does), or forced: accepted.
    s.tasks_stop(req(json!({"task": t, "force": true})), T0)
        .unwrap();
    s.tasks_enqueue(req(json!({"task": t, "queue": b})), T0)
        .unwrap();
    assert_eq!(entries(&s, &b), vec![t.clone()]);
    s.tasks_enqueue(req(json!({"task": t, "queue": a, "force": true})), T0)
        .unwrap();
    assert_eq!(entries(&s, &a), vec![t.clone()]);
}

// task_operations.py dequeue_task: a task that does not exist (never did, or was deleted) is purged from every
// queue and answers dequeued=1, updated=0; a bad new_status is 400/12 first.
#[test]
fn task_operations_dequeue_task_of_an_unknown_or_deleted_task() {
    let mut s = store();
    let q = queue(&mut s, "queue");
    let t = task(&mut s, "task");
    s.tasks_enqueue(req(json!({"task": t, "queue": q})), T0)
        .unwrap();
    s.tasks.remove(&t);
    let v = s.tasks_dequeue(req(json!({"task": t})), T0).unwrap();
    assert_eq!(v, json!({"dequeued": 1, "updated": 0}));
    assert!(entries(&s, &q).is_empty());
    let v = s.tasks_dequeue(req(json!({"task": "never"})), T0).unwrap();
    assert_eq!(v, json!({"dequeued": 1, "updated": 0}));
    let err = s
        .tasks_dequeue(req(json!({"task": "never", "new_status": "running"})), T0)
        .unwrap_err();
    assert_eq!(code(err), (400, 12));
}

// services/tasks.py started: only tasks.started sets `started`, and a second call keeps the first one.
#[test]
fn services_tasks_started_sets_started_once() {
    let mut s = store();
    let q = queue(&mut s, "queue");
    let t = task(&mut s, "task");
    s.tasks_enqueue(req(json!({"task": t, "queue": q})), T0)
        .unwrap();
    s.tasks_dequeue(req(json!({"task": t, "new_status": "in_progress"})), T0)
        .unwrap();
    assert_eq!(
        (s.tasks[&t].status, s.tasks[&t].started),
        (TaskStatus::InProgress, None),
        "the in-pod agent's dequeue does not start the clock"
    );
    s.tasks_started(req(json!({"task": t})), T0.plus_secs(5))
        .unwrap();
    s.tasks_started(req(json!({"task": t, "force": true})), T0.plus_secs(9))
        .unwrap();
    assert_eq!(s.tasks[&t].started, Some(T0.plus_secs(5)));
}
