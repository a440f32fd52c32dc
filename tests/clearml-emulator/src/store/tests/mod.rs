//! Store rules, tested without HTTP. Each behaviour taken from clearml-server names its source file in the test
//! name or a comment; the fixtures here are shared by the per-service modules.

use super::*;

mod events;
mod lifecycle;
mod queues;
mod tasks;
mod workers;

const T0: Ts = Ts(1_700_000_000_000);

fn store() -> Store {
    Store::new(Identity::default(), T0)
}

fn req<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

fn task(s: &mut Store, name: &str) -> String {
    let v = s.tasks_create(
        req(json!({"name": name, "type": "training", "system_tags": ["development"]})),
        T0,
    );
    v.unwrap()["id"].as_str().unwrap().to_owned()
}

fn queue(s: &mut Store, name: &str) -> String {
    s.queues_create(req(json!({ "name": name })), T0).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn entries(s: &Store, q: &str) -> Vec<String> {
    s.queues[q].entries.iter().map(|e| e.task.clone()).collect()
}

#[test]
fn enqueue_moves_the_task_between_queues_and_dequeue_restores_status() {
    let mut s = store();
    let (a, b) = (queue(&mut s, "queue-a"), queue(&mut s, "queue-b"));
    let t = task(&mut s, "task");
    s.tasks_enqueue(req(json!({"task": t, "queue": a})), T0)
        .unwrap();
    assert_eq!(s.tasks[&t].status, TaskStatus::Queued);
    assert_eq!(s.tasks[&t].enqueue_status, Some(TaskStatus::Created));
    assert!(
        !s.tasks[&t].system_tags.contains(&"development".to_owned()),
        "enqueue drops the development tag"
    );
    s.tasks_enqueue(req(json!({"task": t, "queue": b, "force": true})), T0)
        .unwrap();
    assert_eq!(
        (entries(&s, &a), entries(&s, &b)),
        (vec![], vec![t.clone()])
    );
    assert_eq!(s.tasks[&t].execution_queue(), Some(b.as_str()));

    let err = s
        .tasks_enqueue(req(json!({"task": t, "queue": b, "force": true})), T0)
        .unwrap_err();
    assert_eq!((err.code, err.subcode), (400, 706));
    assert_eq!(s.tasks[&t].status, TaskStatus::Queued);

    let d = s.tasks_dequeue(req(json!({"task": t})), T0).unwrap();
    assert_eq!(d["updated"], json!(1));
    assert_eq!(
        s.tasks[&t].status,
        TaskStatus::Created,
        "back to the status before enqueue"
    );
    assert!(entries(&s, &b).is_empty());
    let d = s.tasks_dequeue(req(json!({"task": t})), T0).unwrap();
    assert_eq!(
        d["updated"],
        json!(0),
        "a task that is not queued keeps its status"
    );
}

#[test]
fn re_enqueueing_can_keep_the_execution_queue() {
    let mut s = store();
    let (a, b) = (queue(&mut s, "queue-a"), queue(&mut s, "queue-b"));
    let t = task(&mut s, "task");
    s.tasks_enqueue(req(json!({"task": t, "queue": a})), T0)
        .unwrap();
    s.tasks_enqueue(
        req(json!({"task": t, "queue": b, "update_execution_queue": false})),
        T0,
    )
    .unwrap();
    assert_eq!(
        s.tasks[&t].execution_queue(),
        Some(a.as_str()),
        "the execution queue is kept"
    );
    assert_eq!(entries(&s, &b), vec![t.clone()]);
}

#[test]
fn remove_task_can_revert_the_status() {
    let mut s = store();
    let q = queue(&mut s, "queue");
    let t = task(&mut s, "task");
    s.tasks_enqueue(req(json!({"task": t, "queue": q})), T0)
        .unwrap();
    s.queues_remove_task(
        req(json!({"queue": q, "task": t, "update_task_status": true})),
        T0,
    )
    .unwrap();
    assert_eq!(s.tasks[&t].status, TaskStatus::Created);
}

#[test]
fn stop_depends_on_a_live_worker() {
    let mut s = store();
    let t = task(&mut s, "task");
    s.tasks.get_mut(&t).unwrap().system_tags.clear();
    s.tasks_started(req(json!({"task": t})), T0).unwrap();
    s.workers_status_report(req(json!({"worker": "w", "timestamp": 0, "task": t})), T0)
        .unwrap();
    s.tasks_stop(req(json!({"task": t})), T0.plus_secs(60))
        .unwrap();
    assert_eq!(s.tasks[&t].status, TaskStatus::InProgress);
    assert_eq!(s.tasks[&t].status_message, "stopping");
    // No update for more than 600 s (the "stopping" write above counts): the worker is gone.
    s.tasks_stop(req(json!({"task": t})), T0.plus_secs(60 + 601))
        .unwrap();
    assert_eq!(s.tasks[&t].status, TaskStatus::Stopped);
    assert_eq!(s.tasks[&t].status_message, "Stopped by emulator");
}

#[test]
fn stop_on_a_development_task_is_immediate() {
    let mut s = store();
    let t = task(&mut s, "task");
    s.tasks_started(req(json!({"task": t})), T0).unwrap();
    s.workers_status_report(req(json!({"worker": "w", "timestamp": 0, "task": t})), T0)
        .unwrap();
    s.tasks_stop(req(json!({"task": t})), T0).unwrap();
    assert_eq!(s.tasks[&t].status, TaskStatus::Stopped);
}

#[test]
fn get_next_task_pops_in_order_and_honours_the_head_check() {
    let mut s = store();
    let q = queue(&mut s, "queue");
    let (t1, t2) = (task(&mut s, "one"), task(&mut s, "two"));
    for t in [&t1, &t2] {
        s.tasks_enqueue(req(json!({"task": t, "queue": q})), T0)
            .unwrap();
    }
    assert_eq!(
        s.queues_get_next_task(req(json!({"queue": q, "task": t2})), T0)
            .unwrap(),
        json!({})
    );
    let v = s
        .queues_get_next_task(req(json!({"queue": q, "get_task_info": true})), T0)
        .unwrap();
    assert_eq!(v["entry"]["task"], json!(t1));
    assert_eq!(v["task_info"]["user"], json!(Identity::default().user));
    // A task stopped (not aborted) while queued stays in the queue and is re-queued when popped.
    s.tasks_stopped(req(json!({"task": t2})), T0).unwrap();
    let v = s
        .queues_get_next_task(req(json!({"queue": q})), T0)
        .unwrap();
    assert_eq!(v["entry"]["task"], json!(t2));
    assert_eq!(s.tasks[&t2].status, TaskStatus::Queued);
    assert_eq!(
        s.queues_get_next_task(req(json!({"queue": q})), T0)
            .unwrap(),
        json!({})
    );
}

#[test]
fn entries_of_deleted_tasks_are_still_popped() {
    let mut s = store();
    let q = queue(&mut s, "queue");
    let t1 = task(&mut s, "one");
    s.queues_add_task(req(json!({"queue": q, "task": t1})), T0)
        .unwrap();
    s.tasks.remove(&t1);
    let v = s
        .queues_get_next_task(req(json!({"queue": q, "get_task_info": true})), T0)
        .unwrap();
    assert_eq!(v, json!({"entry": {"task": t1, "added": T0}}));
}

#[test]
fn force_deleting_a_queue_reverts_its_tasks() {
    let mut s = store();
    let q = queue(&mut s, "queue");
    let t = task(&mut s, "task");
    s.tasks_enqueue(req(json!({"task": t, "queue": q})), T0)
        .unwrap();
    let err = s.queues_delete(req(json!({"queue": q})), T0).unwrap_err();
    assert_eq!((err.code, err.subcode), (400, 702));
    s.queues_delete(req(json!({"queue": q, "force": true})), T0)
        .unwrap();
    assert!(!s.queues.contains_key(&q));
    let task = &s.tasks[&t];
    assert_eq!(
        (task.status, task.status_reason.as_str()),
        (
            TaskStatus::Created,
            format!("Queue {q} was deleted").as_str()
        )
    );
}

#[test]
fn edit_merges_execution_and_replaces_container() {
    let mut s = store();
    let t = task(&mut s, "task");
    s.tasks_edit(
        req(json!({"task": t, "execution": {"queue": "q1", "docker_cmd": "x"}})),
        T0,
    )
    .unwrap();
    s.tasks_edit(
        req(json!({"task": t, "execution": {"docker_cmd": "y"}, "container": {"image": "a"}})),
        T0,
    )
    .unwrap();
    s.tasks_edit(
        req(json!({"task": t, "container": {"arguments": "--ipc=host"}})),
        T0,
    )
    .unwrap();
    assert_eq!(
        s.tasks[&t].execution,
        req::<Object>(json!({"queue": "q1", "docker_cmd": "y"}))
    );
    assert_eq!(
        s.tasks[&t].container,
        req::<Object>(json!({"arguments": "--ipc=host"}))
    );
}

#[test]
fn workers_expire_after_their_timeout() {
    let mut s = store();
    s.workers_register(req(json!({"worker": "w", "timeout": 10})), T0)
        .unwrap();
    let listed =
        |s: &mut Store, at| s.workers_get_all(req(json!({})), at).unwrap()["workers"].clone();
    assert_eq!(listed(&mut s, T0.plus_secs(5))[0]["id"], json!("w"));
    assert_eq!(listed(&mut s, T0.plus_secs(11)), json!([]));
}

#[test]
fn hidden_tasks_and_queues_need_search_hidden() {
    let mut s = store();
    let t = task(&mut s, "task");
    s.tasks.get_mut(&t).unwrap().system_tags = vec!["hidden".into()];
    assert_eq!(
        s.tasks_get_all(req(json!({})),).unwrap()["tasks"],
        json!([])
    );
    assert_eq!(
        s.tasks_get_all(req(json!({"search_hidden": true})))
            .unwrap()["tasks"][0]["id"],
        json!(t)
    );
    assert_eq!(
        s.tasks_get_all(req(json!({"id": t}))).unwrap()["tasks"][0]["id"],
        json!(t)
    );
    s.queues_create(
        req(json!({"name": "k8s_scheduler", "system_tags": [HIDDEN_QUEUE_TAG]})),
        T0,
    )
    .unwrap();
    let names = |v: Value| {
        v["queues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["name"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(s.queues_get_all(req(json!({}))).unwrap()),
        [json!("default")]
    );
    assert_eq!(
        names(s.queues_get_all(req(json!({"name": "k8s"}))).unwrap()),
        [json!("k8s_scheduler")]
    );
}

#[test]
fn get_all_orders_and_pages() {
    let mut s = store();
    let ids: Vec<String> = ["bbb", "aaa", "ccc"]
        .iter()
        .map(|n| task(&mut s, n))
        .collect();
    let names = |v: Value| {
        v["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(s.tasks_get_all(req(json!({}))).unwrap()),
        ["bbb", "aaa", "ccc"],
        "creation order"
    );
    assert_eq!(
        names(
            s.tasks_get_all(req(json!({"order_by": ["-name"]})))
                .unwrap()
        ),
        ["ccc", "bbb", "aaa"]
    );
    let page = s
        .tasks_get_all(req(
            json!({"order_by": ["name"], "page": 1, "page_size": 2}),
        ))
        .unwrap();
    assert_eq!(names(page), ["ccc"]);
    let only = s
        .tasks_get_all(req(json!({"id": [ids[0]], "only_fields": ["status"]})))
        .unwrap();
    assert_eq!(only["tasks"], json!([{"id": ids[0], "status": "created"}]));
    let err = s
        .queues_get_all(req(json!({"page_size": 501})))
        .unwrap_err();
    assert_eq!((err.code, err.subcode), (400, 12));
}

#[test]
fn reset_clears_the_run() {
    let mut s = store();
    let q = queue(&mut s, "queue");
    let t = task(&mut s, "task");
    s.tasks_enqueue(req(json!({"task": t, "queue": q})), T0)
        .unwrap();
    s.tasks_started(req(json!({"task": t})), T0).unwrap();
    s.tasks_completed(req(json!({"task": t, "publish": true})), T0)
        .unwrap();
    assert_eq!(s.tasks[&t].status, TaskStatus::Published);
    let err = s.tasks_reset(req(json!({"task": t})), T0).unwrap_err();
    assert_eq!((err.code, err.subcode), (400, 110));
    s.tasks_reset(req(json!({"task": t, "force": true})), T0)
        .unwrap();
    let task = &s.tasks[&t];
    assert_eq!(
        (task.status, task.started, task.execution_queue()),
        (TaskStatus::Created, None, None)
    );
}

#[test]
fn enqueue_by_name_creates_the_queue_and_default_needs_exactly_one() {
    let mut s = store();
    let t = task(&mut s, "task");
    s.tasks_enqueue(req(json!({"task": t, "queue_name": "fresh"})), T0)
        .unwrap();
    assert!(
        s.queues
            .values()
            .any(|q| q.name == "fresh" && q.entries.len() == 1)
    );
    let t2 = task(&mut s, "task2");
    s.tasks_enqueue(req(json!({"task": t2})), T0).unwrap();
    assert_eq!(
        s.tasks[&t2].execution_queue(),
        Some(s.queues_get_default().unwrap()["id"].as_str().unwrap())
    );
    queue(&mut s, "second-default");
    for q in s.queues.values_mut() {
        q.system_tags = vec!["default".into()];
    }
    assert_eq!(s.queues_get_default().unwrap_err().subcode, 708);
}

/// A task that is not a `development` one (those stop at once), started by worker `w` at `at`.
fn running(s: &mut Store, name: &str, at: Ts) -> String {
    let v = s
        .tasks_create(req(json!({"name": name, "type": "training"})), at)
        .unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    s.tasks_started(req(json!({"task": id})), at).unwrap();
    s.workers_status_report(req(json!({"worker": "w", "timestamp": 0, "task": id})), at)
        .unwrap();
    id
}

fn code(err: ApiError) -> (u16, u32) {
    (err.code, err.subcode)
}
