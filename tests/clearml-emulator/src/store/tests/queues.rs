//! Queue rules (clearml-server `bll/queue/queue_bll.py`, `services/queues.py`, `apimodels/metadata.py`).

use super::*;

// queue_bll.py get_queue_with_task: remove_task and move_task_* answer 703 for an unknown queue too.
#[test]
fn queue_bll_remove_and_move_on_an_unknown_queue_are_703() {
    let mut s = store();
    let t = task(&mut s, "task");
    let body = json!({"queue": "nope", "task": t});
    assert_eq!(
        code(s.queues_remove_task(req(body.clone()), T0).unwrap_err()),
        (400, 703)
    );
    for to in [Move::Front, Move::Back, Move::Forward, Move::Backward] {
        assert_eq!(
            code(s.queues_move(req(body.clone()), to).unwrap_err()),
            (400, 703)
        );
    }
}

// queue_bll.py clear_queue + _update_task_status_on_removal_from_queue.
#[test]
fn queue_bll_clear_queue_reverts_its_tasks() {
    let mut s = store();
    let q = queue(&mut s, "queue");
    let (t1, t2) = (task(&mut s, "one"), task(&mut s, "two"));
    for t in [&t1, &t2] {
        s.tasks_enqueue(req(json!({"task": t, "queue": q})), T0)
            .unwrap();
    }
    let v = s.queues_clear(req(json!({"queue": q})), T0).unwrap();
    let mut removed: Vec<String> = serde_json::from_value(v["removed_tasks"].clone()).unwrap();
    removed.sort();
    let mut want = vec![t1.clone(), t2.clone()];
    want.sort();
    assert_eq!(removed, want);
    let t = &s.tasks[&t1];
    assert_eq!(
        (
            t.status,
            t.status_reason.clone(),
            t.execution_queue(),
            t.enqueue_status
        ),
        (
            TaskStatus::Created,
            format!("Queue {q} was cleared"),
            None,
            None
        )
    );
}

#[test]
fn queue_bll_remove_task_with_update_task_status_names_the_queue() {
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
    let task = &s.tasks[&t];
    assert_eq!(
        task.status_reason,
        format!("Task was removed from the queue {q}")
    );
    assert_eq!(task.execution_queue(), None);
}

// apimodels/queues.py CreateRequest.metadata = DictField(value_types=[MetadataItem]); MetadataItem has key, type
// and value, all required strings; add_or_update_metadata needs at least one item.
#[test]
fn apimodels_metadata_is_a_typed_map() {
    let mut s = store();
    let item = json!({"key": "gpu", "type": "str", "value": "a100"});
    let id = s
        .queues_create(
            req(json!({"name": "gpu-queue", "metadata": {"gpu": item}})),
            T0,
        )
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.queues[&id].metadata["gpu"], item);
    let bad: Result<rq::QueueCreate, _> = serde_json::from_value(
        json!({"name": "x-queue", "metadata": {"gpu": {"key": "gpu", "value": "a"}}}),
    );
    assert!(bad.is_err(), "type is required");
    let bad: Result<rq::QueueCreate, _> =
        serde_json::from_value(json!({"name": "x-queue", "metadata": [item]}));
    assert!(bad.is_err(), "a list is not the server's map");
    let err = s
        .queues_add_or_update_metadata(req(json!({"queue": id, "metadata": []})), T0)
        .unwrap_err();
    assert_eq!(code(err), (400, 12));
    s.queues_add_or_update_metadata(
        req(json!({"queue": id, "metadata": [{"key": "zone", "type": "str", "value": "eu"}]})),
        T0,
    )
    .unwrap();
    assert_eq!(s.queues[&id].metadata.len(), 2);
}

// services/queues.py peek_task: {"task": null} for an empty queue.
#[test]
fn services_queues_peek_task_of_an_empty_queue_is_null() {
    let mut s = store();
    let q = queue(&mut s, "queue");
    assert_eq!(
        s.queues_peek_task(req(json!({"queue": q}))).unwrap(),
        json!({"task": null})
    );
}

// queue_bll.py get_by_id/get_all: `if max_task_entries:` - a positive value slices the entries, 0 does not.
#[test]
fn queue_bll_max_task_entries_zero_is_every_entry() {
    let mut s = store();
    let q = queue(&mut s, "queue");
    for name in ["one", "two", "three"] {
        let t = task(&mut s, name);
        s.tasks_enqueue(req(json!({"task": t, "queue": q})), T0)
            .unwrap();
    }
    let n = |s: &Store, max: u64| {
        let v = s
            .queues_get_all(req(json!({"id": [q], "max_task_entries": max})))
            .unwrap();
        v["queues"][0]["entries"].as_array().unwrap().len()
    };
    assert_eq!((n(&s, 1), n(&s, 0)), (1, 3));
}
