//! Worker rules (clearml-server `bll/workers/__init__.py`, `services/workers.py`, `apimodels/workers.py`).

use super::*;

fn workers(s: &mut Store, body: Value, at: Ts) -> Vec<Value> {
    s.workers_get_all(req(body), at).unwrap()["workers"]
        .as_array()
        .unwrap()
        .clone()
}

// WorkerBLL.get_all: `if last_seen:` - 0 means every live worker, not "seen in the last 0 s".
#[test]
fn workers_bll_get_all_last_seen_zero_is_every_worker() {
    let mut s = store();
    s.workers_register(req(json!({"worker": "w", "timeout": 7200})), T0)
        .unwrap();
    let later = T0.plus_secs(4000);
    assert!(
        workers(&mut s, json!({}), later).is_empty(),
        "default 3600 s"
    );
    assert_eq!(workers(&mut s, json!({"last_seen": 0}), later).len(), 1);
}

// WorkerBLL.status_report: queue ids are not checked; `queue` is shown only when it is one of `queues`;
// running_time is active_duration * 1000 (milliseconds).
#[test]
fn workers_bll_status_report_and_listing() {
    let mut s = store();
    let q = queue(&mut s, "queue");
    let t = running(&mut s, "task", T0);
    s.workers_status_report(
        req(json!({"worker": "w", "timestamp": 0, "task": t, "queue": "gone", "queues": ["gone", "too"]})),
        T0,
    )
    .unwrap();
    s.tasks_ping(req(json!({"task": t})), T0.plus_secs(3))
        .unwrap();
    let w = &workers(&mut s, json!({}), T0.plus_secs(3))[0];
    assert_eq!(w["queue"]["id"], json!("gone"));
    assert_eq!(w["task"]["running_time"], json!(3000));
    s.workers_status_report(
        req(json!({"worker": "w", "timestamp": 0, "queue": q, "queues": []})),
        T0.plus_secs(4),
    )
    .unwrap();
    let w = &workers(&mut s, json!({}), T0.plus_secs(4))[0];
    assert_eq!(
        w["queue"],
        Value::Null,
        "{q} is not among the worker's queues"
    );
    assert_eq!(
        w["queues"][0]["id"],
        json!("gone"),
        "an empty list keeps the queues"
    );
    assert_eq!(w["task"], Value::Null);
}

// services/workers.py register: resources (schema 2.34) are recorded on the worker's queues; a negative timeout
// is 400/1002; unknown queues are 400/701.
#[test]
fn services_workers_register_resources_timeout_and_queues() {
    let mut s = store();
    let q = queue(&mut s, "queue");
    s.workers_register(
        req(json!({"worker": "w", "queues": [q], "resources": {"gpu_usage": 2.0}})),
        T0,
    )
    .unwrap();
    assert_eq!(s.queues[&q].resources, Some(json!({"gpu_usage": 2.0})));
    let err = s
        .workers_register(req(json!({"worker": "w", "timeout": -1})), T0)
        .unwrap_err();
    assert_eq!(code(err), (400, 1002));
    let err = s
        .workers_register(req(json!({"worker": "w", "queues": ["nope"]})), T0)
        .unwrap_err();
    assert_eq!(code(err), (400, 701));
}

// clearml-agent helper/resource_monitor.py send_cluster_report: the body the real agent posts.
#[test]
fn resource_monitor_cluster_report_body() {
    let mut s = store();
    let body = json!({
        "worker": "k8s-agent:glue", "partial": false, "key": "k8s-agent", "timestamp": 1,
        "timeout": 120, "resource_groups": ["k8s-agent:glue"], "properties": {"max_gpus": 8},
    });
    s.workers_cluster_report(req(body), T0).unwrap();
    assert_eq!(
        s.cluster_reports["k8s-agent"]["properties"],
        json!({"max_gpus": 8})
    );
    let old: Result<rq::ClusterReport, _> = serde_json::from_value(json!({"max_gpus": 8}));
    assert!(old.is_err(), "a bare max_gpus is not what the agent sends");
    s.workers_cluster_unregister(req(json!({"key": "k8s-agent"})))
        .unwrap();
    assert!(s.cluster_reports.is_empty());
}
