//! Event batches and the task log (clearml-server `services/events.py`, `bll/event/event_bll.py`).

use super::*;

// services/events.py add_batch: an empty batch is BatchContainsNoItems (400/17).
#[test]
fn services_events_add_batch_refuses_an_empty_batch() {
    let mut s = store();
    assert_eq!(code(s.events_add(vec![], "w", T0).unwrap_err()), (400, 17));
}

// event_bll.py add_events: bad events are counted per reason; nothing added is EventsNotAdded (400/131).
#[test]
fn event_bll_add_events_counts_errors() {
    let mut s = store();
    let t = task(&mut s, "task");
    let v = s
        .events_add(
            vec![
                json!({"type": "log", "task": t, "msg": "hi"}),
                json!({"type": "log", "task": "nope", "msg": "lost"}),
                json!({"task": t}),
                json!({"type": "training_stats_scalar", "task": t, "metric": "loss", "value": 1}),
            ],
            "w",
            T0,
        )
        .unwrap();
    assert_eq!(
        (v["added"].clone(), v["errors"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(v["errors_info"]["Invalid task id nope"], json!(1));
    let err = s
        .events_add(vec![json!({"type": "log", "task": "nope"})], "w", T0)
        .unwrap_err();
    assert_eq!(code(err), (400, 131));
}

// services/events.py get_task_log (2.9): newest first by default; order and from_timestamp page.
#[test]
fn services_events_get_task_log_reads_back_the_console() {
    let mut s = store();
    let t = task(&mut s, "task");
    let lines: Vec<Value> = (1..=3)
        .map(|i| json!({"type": "log", "task": t, "timestamp": i, "msg": format!("line {i}"), "level": "info"}))
        .collect();
    s.events_add(lines, "w", T0).unwrap();
    let log = |s: &Store, body: Value| {
        let v = s.events_get_task_log(req(body)).unwrap();
        let msgs: Vec<String> = v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["msg"].as_str().unwrap().to_owned())
            .collect();
        (msgs, v["total"].clone())
    };
    assert_eq!(
        log(&s, json!({"task": t})),
        (
            vec!["line 3".into(), "line 2".into(), "line 1".into()],
            json!(3)
        )
    );
    assert_eq!(
        log(&s, json!({"task": t, "order": "asc", "batch_size": 2})).0,
        ["line 2", "line 3"]
    );
    assert_eq!(
        log(
            &s,
            json!({"task": t, "navigate_earlier": false, "from_timestamp": 1})
        )
        .0,
        ["line 2", "line 3"]
    );
    assert_eq!(s.task_logs[&t][0]["worker"], json!("w"));
    let err = s
        .events_get_task_log(req(json!({"task": "nope"})))
        .unwrap_err();
    assert_eq!(code(err), (400, 101));
}
