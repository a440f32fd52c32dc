//! The client against the in-process emulator: every endpoint the agent uses, each error path of the reference,
//! token refresh and re-login, retries.
// Helpers here are not #[test] fns, so clippy.toml's allow-unwrap-in-tests does not reach them; a panic is a
// test failure with a backtrace, which is what we want.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use clearml_api::{
    Client, ClientConfig, ClusterReport, Dequeue, Enqueue, Error, HyperParamItem, LogEvent,
    MachineStats, QueueCreate, QueuesGetAll, RetryPolicy, StatusChange, StatusReport, TaskEdit,
    TaskStatus, TasksGetAll, WorkerRegister, codes,
};
use clearml_emulator::{
    DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Emulator, EmulatorConfig, EmulatorHandle,
};
use serde_json::{Value, json};

#[path = "emulator/fixture.rs"]
mod fixture;
use fixture::{Fixture, fast_retry};

fn api_code(err: &Error) -> (String, u16, u32) {
    match err {
        Error::Api {
            endpoint,
            code,
            subcode,
            ..
        } => (endpoint.clone(), *code, *subcode),
        other => panic!("expected a ClearML error result, got {other:?}"),
    }
}

#[tokio::test]
async fn login_gives_the_claims_clients_rely_on() {
    let f = Fixture::start().await;
    let client = &f.client;
    let claims = client.server_claims().await.unwrap();
    assert_eq!(claims.api_version.as_deref(), Some("2.31"));
    assert_eq!(claims.feature_set.as_deref(), Some("basic"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        claims.exp.unwrap() - now > 43_200,
        "tokens must outlive the agent's 12 h refresh margin"
    );
}

#[tokio::test]
async fn queues_create_lookup_hidden_and_errors() {
    let f = Fixture::start().await;
    let client = &f.client;
    let id = client
        .queues_create(&QueueCreate {
            name: "1xGPU".into(),
            tags: vec!["gpu".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let pending = f.hidden_queue("k8s_scheduler").await;
    let found = client
        .queues_get_all(&QueuesGetAll {
            name: Some("^1xGPU$".into()),
            only_fields: vec!["id".into(), "name".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        found.iter().map(|q| q.id.as_str()).collect::<Vec<_>>(),
        [id.as_str()]
    );
    assert_eq!(client.queues_get_by_id(&id).await.unwrap().tags, ["gpu"]);

    let visible: Vec<String> = client
        .queues_get_all(&QueuesGetAll::default())
        .await
        .unwrap()
        .into_iter()
        .map(|q| q.name)
        .collect();
    assert_eq!(
        visible,
        ["default", "1xGPU"],
        "the k8s-glue queue is hidden"
    );
    let all = client
        .queues_get_all(&QueuesGetAll {
            search_hidden: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(all.iter().any(|q| q.id == pending));

    let dup = client
        .queues_create(&QueueCreate {
            name: "1xGPU".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(api_code(&dup), ("queues.create".into(), 400, 801));
    let short = client
        .queues_create(&QueueCreate {
            name: "q".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(api_code(&short), ("queues.create".into(), 400, 800));
    let unknown = client.queues_get_by_id("1xGPU").await.unwrap_err();
    assert_eq!(api_code(&unknown), ("queues.get_by_id".into(), 400, 701));
    assert!(
        unknown
            .to_string()
            .starts_with("queues.get_by_id: ClearML error 400/701: Invalid queue id")
    );
}

#[tokio::test]
async fn task_lifecycle_through_a_queue() {
    let f = Fixture::start().await;
    let client = &f.client;
    let queue = f.queue("cpu-queue").await;
    let task = f.task("train model").await;

    let enq = f.enqueue(&task, &queue).await;
    assert_eq!(enq.queued, 1);
    assert_eq!(enq.fields["execution.queue"], json!(queue));
    let t = client.tasks_get_by_id(&task).await.unwrap();
    assert_eq!(t.status, Some(TaskStatus::Queued));
    assert_eq!(t.execution_queue(), Some(queue.as_str()));

    let next = client.queues_get_next_task(&queue).await.unwrap().unwrap();
    assert_eq!(next.entry.task, task);
    assert!(next.task_info.unwrap().user.is_some());
    assert_eq!(
        client.queues_get_next_task(&queue).await.unwrap(),
        None,
        "empty queue answers no entry"
    );
    assert_eq!(
        client.tasks_get_by_id(&task).await.unwrap().status,
        Some(TaskStatus::Queued),
        "popping does not change the status"
    );

    client
        .tasks_set_status_message(&task, "K8S glue status: Unschedulable")
        .await
        .unwrap();
    assert_eq!(
        client
            .tasks_get_by_id(&task)
            .await
            .unwrap()
            .status_message
            .as_deref(),
        Some("K8S glue status: Unschedulable")
    );

    let started = client
        .tasks_started(&StatusChange::new(&task))
        .await
        .unwrap();
    assert_eq!(started.fields["status"], json!("in_progress"));
    let failed = client
        .tasks_failed(
            &StatusChange::new(&task)
                .reason("pod failed")
                .message("OOMKilled"),
        )
        .await
        .unwrap();
    assert_eq!(failed.updated, 1);
    let t = client.tasks_get_by_id(&task).await.unwrap();
    assert_eq!(
        (t.status, t.status_message.as_deref()),
        (Some(TaskStatus::Failed), Some("OOMKilled"))
    );

    // failed -> in_progress needs force.
    let err = client
        .tasks_started(&StatusChange::new(&task))
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), ("tasks.started".into(), 400, 110));
    client
        .tasks_started(&StatusChange::new(&task).force())
        .await
        .unwrap();
    client
        .tasks_stopped(&StatusChange::new(&task))
        .await
        .unwrap();
    assert_eq!(
        client.tasks_get_by_id(&task).await.unwrap().status,
        Some(TaskStatus::Stopped)
    );
}

#[tokio::test]
async fn glue_pending_queue_sequence() {
    let f = Fixture::start().await;
    let client = &f.client;
    let queue = f.queue("1xGPU").await;
    let pending = f.hidden_queue("k8s_scheduler").await;
    let task = f.task("glue task").await;
    f.enqueue(&task, &queue).await;
    client.queues_get_next_task(&queue).await.unwrap().unwrap();
    client
        .tasks_stop(&StatusChange::new(&task).force())
        .await
        .unwrap();
    assert_eq!(
        client.tasks_get_by_id(&task).await.unwrap().status,
        Some(TaskStatus::Stopped)
    );
    let err = client
        .queues_remove_task(&pending, &task)
        .await
        .unwrap_err();
    assert!(err.is(codes::TASK_NOT_QUEUED));
    client
        .tasks_enqueue(&Enqueue {
            task: task.clone(),
            queue: Some(pending.clone()),
            status_reason: Some("k8s pending scheduler".into()),
            update_execution_queue: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    // The container edit on a queued task needs force.
    let edit = TaskEdit {
        task: task.clone(),
        container: Some(clearml_api::Container {
            image: Some("nvidia/cuda:12.4.0-runtime-ubuntu22.04".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(
        client
            .tasks_edit(&edit)
            .await
            .unwrap_err()
            .is(codes::INVALID_TASK_STATUS)
    );
    client
        .tasks_edit(&TaskEdit {
            force: true,
            ..edit
        })
        .await
        .unwrap();
    client
        .tasks_edit_hyper_params(
            &task,
            &[HyperParamItem::new("properties", "k8s-queue", "1xGPU")],
            false,
        )
        .await
        .unwrap();
    let only = client
        .tasks_get_all(&TasksGetAll {
            id: vec![task.clone()],
            only_fields: vec!["container".into(), "hyperparams".into(), "status".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        only[0].image(),
        Some("nvidia/cuda:12.4.0-runtime-ubuntu22.04")
    );
    assert_eq!(
        only[0].hyperparams.as_ref().unwrap()["properties"]["k8s-queue"]
            .value
            .as_deref(),
        Some("1xGPU")
    );
    assert_eq!(only[0].name, "", "only_fields trims the document");

    // In the pod: dequeue straight to in_progress, then started.
    let d = client
        .tasks_dequeue(&Dequeue {
            task: task.clone(),
            new_status: Some(TaskStatus::InProgress),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((d.dequeued, d.updated), (1, 1));
    assert!(
        client
            .queues_get_by_id(&pending)
            .await
            .unwrap()
            .entries
            .is_empty()
    );
    client
        .tasks_started(&StatusChange::new(&task).force())
        .await
        .unwrap();

    let running = client
        .tasks_get_all(&TasksGetAll {
            status: vec![TaskStatus::InProgress],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        running.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        [task.as_str()]
    );
}

#[tokio::test]
async fn enqueue_and_queue_error_codes() {
    let f = Fixture::start().await;
    let (emu, client) = (&f.emu, &f.client);
    let queue = f.queue("errors").await;
    let task = f.task("error task").await;

    let both = Enqueue {
        task: task.clone(),
        queue: Some(queue.clone()),
        queue_name: Some("errors".into()),
        ..Default::default()
    };
    assert_eq!(
        api_code(&client.tasks_enqueue(&both).await.unwrap_err()),
        ("tasks.enqueue".into(), 400, 12)
    );
    let keep = Enqueue {
        task: task.clone(),
        queue: Some(queue.clone()),
        update_execution_queue: Some(false),
        ..Default::default()
    };
    assert_eq!(
        api_code(&client.tasks_enqueue(&keep).await.unwrap_err()),
        ("tasks.enqueue".into(), 400, 12)
    );
    let unknown_queue = Enqueue {
        task: task.clone(),
        queue: Some("nope".into()),
        ..Default::default()
    };
    assert!(
        client
            .tasks_enqueue(&unknown_queue)
            .await
            .unwrap_err()
            .is(codes::INVALID_QUEUE_ID)
    );
    assert_eq!(
        client.tasks_get_by_id(&task).await.unwrap().status,
        Some(TaskStatus::Created),
        "a failed push reverts the status"
    );
    let unknown_task = Enqueue {
        task: "f00".into(),
        queue: Some(queue.clone()),
        ..Default::default()
    };
    assert_eq!(
        api_code(&client.tasks_enqueue(&unknown_task).await.unwrap_err()),
        ("tasks.enqueue".into(), 400, 101)
    );
    assert_eq!(
        api_code(&client.tasks_get_by_id("f00").await.unwrap_err()),
        ("tasks.get_by_id".into(), 400, 101)
    );

    // queue_name: an unknown name is created.
    let by_name = Enqueue {
        task: task.clone(),
        queue_name: Some("auto-created".into()),
        ..Default::default()
    };
    client.tasks_enqueue(&by_name).await.unwrap();
    let auto = client
        .queues_get_all(&QueuesGetAll {
            name: Some("^auto-created$".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(auto[0].entries[0].task, task);

    // add_task / remove_task.
    client.queues_add_task(&queue, &task).await.unwrap();
    assert!(
        client
            .queues_add_task(&queue, &task)
            .await
            .unwrap_err()
            .is(codes::TASK_ALREADY_QUEUED)
    );
    assert_eq!(client.queues_remove_task(&queue, &task).await.unwrap(), 1);
    assert_eq!(
        api_code(&client.queues_remove_task(&queue, &task).await.unwrap_err()),
        ("queues.remove_task".into(), 400, 703)
    );
    assert!(
        client
            .queues_get_next_task("nope")
            .await
            .unwrap_err()
            .is(codes::INVALID_QUEUE_ID)
    );

    // No default queue: enqueue with neither queue nor name is 707.
    emu.with_store(|s| s.queues.retain(|_, q| q.name != "default"));
    let other = f.task("no default").await;
    let neither = Enqueue {
        task: other,
        ..Default::default()
    };
    assert!(
        client
            .tasks_enqueue(&neither)
            .await
            .unwrap_err()
            .is(codes::NO_DEFAULT_QUEUE)
    );
}

#[tokio::test]
async fn abort_semantics() {
    let f = Fixture::start().await;
    let client = &f.client;
    let queue = f.queue("abort").await;
    // A created task cannot be stopped without force.
    let draft = f.task("draft").await;
    assert!(
        client
            .tasks_stop(&StatusChange::new(&draft))
            .await
            .unwrap_err()
            .is(codes::INVALID_TASK_STATUS)
    );

    // A running task with a live worker is asked to stop; its worker then reports the stop.
    let running = f.running_task("running", "w1").await;
    client
        .tasks_stop(&StatusChange::new(&running))
        .await
        .unwrap();
    let t = client.tasks_get_by_id(&running).await.unwrap();
    assert_eq!(
        (t.status, t.status_message.as_deref()),
        (Some(TaskStatus::InProgress), Some("stopping"))
    );
    client
        .tasks_stopped(&StatusChange::new(&running))
        .await
        .unwrap();
    assert_eq!(f.status(&running).await, Some(TaskStatus::Stopped));

    // A queued task leaves its queue and stops.
    let queued = f.queued_task("queued", &queue).await;
    client
        .tasks_stop(&StatusChange::new(&queued))
        .await
        .unwrap();
    assert_eq!(f.status(&queued).await, Some(TaskStatus::Stopped));
    assert!(
        client
            .queues_get_by_id(&queue)
            .await
            .unwrap()
            .entries
            .is_empty()
    );
}

/// The web UI's abort (clearml-server services/tasks.py `stop_many`): per-id results, failures listed.
#[tokio::test]
async fn stop_many_reports_each_id() {
    let f = Fixture::start().await;
    let queue = f.queue("abort-many").await;
    let queued = f.queued_task("queued", &queue).await;
    let running = f.running_task("running", "w1").await;
    let res = f
        .client
        .tasks_stop_many(
            &[queued.clone(), running.clone(), "f00".into()],
            Some("aborted by user"),
            false,
        )
        .await
        .unwrap();
    let ok: Vec<&str> = res.succeeded.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ok, [queued.as_str(), running.as_str()]);
    assert_eq!(res.succeeded[1].fields["status_message"], json!("stopping"));
    assert_eq!(
        (
            res.failed[0].id.as_str(),
            res.failed[0].error.codes.as_slice()
        ),
        ("f00", &[400, 101][..])
    );
    assert_eq!(f.status(&queued).await, Some(TaskStatus::Stopped));
}

/// The agent's pod events as console lines: written with events.add_batch, read back with events.get_task_log.
#[tokio::test]
async fn task_log_round_trip() {
    let f = Fixture::start().await;
    let task = f.running_task("logged", "w1").await;
    let added = f
        .client
        .events_add_log_batch(&[
            LogEvent::new(&task, "info", "Scheduled: assigned to sim-gpu-0"),
            LogEvent::new(&task, "warning", "Pulling image"),
        ])
        .await
        .unwrap();
    assert_eq!((added.added, added.errors), (2, 0));
    let log = f.client.events_get_task_log(&task, 10).await.unwrap();
    assert_eq!(log.total, 2);
    let msgs: Vec<&str> = log.events.iter().map(|e| e.msg.as_str()).collect();
    assert!(msgs.contains(&"Pulling image"), "{msgs:?}");
    assert_eq!(
        f.client.events_add_log_batch(&[]).await.unwrap().added,
        0,
        "an empty batch is not sent (the server refuses it)"
    );
}

#[tokio::test]
async fn workers_register_report_unregister() {
    let f = Fixture::start().await;
    let client = &f.client;
    let queue = f.queue("workers").await;
    let bad = WorkerRegister {
        worker: "agent-1".into(),
        queues: vec!["nope".into()],
        ..Default::default()
    };
    assert_eq!(
        api_code(&client.workers_register(&bad).await.unwrap_err()),
        ("workers.register".into(), 400, 701)
    );
    client
        .workers_register(&WorkerRegister {
            worker: "agent-1".into(),
            queues: vec![queue.clone()],
            timeout: Some(600),
            tags: vec![],
        })
        .await
        .unwrap();
    let task = f.task("reported").await;
    let stats = MachineStats {
        gpu_usage: vec![0.0, 50.0],
        memory_used: Some(1024.0),
        ..Default::default()
    };
    client
        .workers_status_report(&StatusReport {
            worker: "agent-1".into(),
            timestamp: 1_700_000_000_000,
            task: Some(task.clone()),
            queue: Some(queue.clone()),
            machine_stats: Some(stats),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        client
            .tasks_get_by_id(&task)
            .await
            .unwrap()
            .last_worker
            .as_deref(),
        Some("agent-1")
    );
    let listed: Value = client.call("workers.get_all", &json!({})).await.unwrap();
    assert_eq!(listed["workers"][0]["task"]["id"], json!(task));
    let err = client
        .workers_status_report(&StatusReport {
            worker: "agent-1".into(),
            timestamp: 0,
            task: Some("f00".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), ("workers.status_report".into(), 400, 101));
    client.workers_unregister("agent-1").await.unwrap();
    let listed: Value = client.call("workers.get_all", &json!({})).await.unwrap();
    assert_eq!(listed["workers"], json!([]));
}

#[tokio::test]
async fn cluster_report_is_tolerated_on_open_source_servers() {
    let report = ClusterReport {
        max_gpus: Some(8),
        ..ClusterReport::new("k8s:agent:1", 1_700_000_000_000)
    };
    let f = Fixture::start().await;
    assert!(!f.client.workers_cluster_report(&report).await.unwrap());
    assert_eq!(
        f.emu.call_count("workers.cluster_report"),
        1,
        "a missing endpoint is not retried"
    );
    let ent = Fixture::enterprise().await;
    assert!(ent.client.workers_cluster_report(&report).await.unwrap());
    let stored = ent.emu.with_store(|s| s.cluster_reports["k8s"].clone());
    assert_eq!(stored["properties"], json!({"max_gpus": 8}));
    assert_eq!(stored["resource_groups"], json!(["k8s:agent"]));
    assert_eq!(
        ent.client
            .server_claims()
            .await
            .unwrap()
            .server_version
            .as_deref(),
        Some(clearml_emulator::ENTERPRISE_SERVER_VERSION),
        "the enterprise feature set reports a server the glue's enterprise path accepts"
    );
}

#[tokio::test]
async fn wrong_credentials_are_a_typed_login_error() {
    let emu = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let mut cfg = ClientConfig::new(emu.base_url(), DEFAULT_ACCESS_KEY, "wrong");
    cfg.retry = fast_retry();
    let client = Client::new(cfg).unwrap();
    let err = client.queues_get_by_id("x").await.unwrap_err();
    assert_eq!(api_code(&err), ("auth.login".into(), 401, 22));
    assert!(!err.is_transient());
    assert_eq!(
        emu.call_count("auth.login"),
        1,
        "credentials are not retried"
    );
}

#[tokio::test]
async fn revoked_token_triggers_one_relogin() {
    let f = Fixture::start().await;
    let emu = &f.emu;
    f.queue("before").await;
    assert_eq!(emu.call_count("auth.login"), 1);
    emu.revoke_tokens();
    f.queue("after").await;
    assert_eq!(emu.call_count("auth.login"), 2);
    assert_eq!(
        emu.call_count("queues.create"),
        3,
        "the rejected call was repeated once"
    );
}

#[tokio::test]
async fn token_is_refreshed_before_expiry() {
    // Tokens shorter than the 12 h margin are refreshed before every call; 30-day tokens are reused.
    let f = Fixture::with(EmulatorConfig {
        token_ttl_secs: 3600,
        ..Default::default()
    })
    .await;
    let (emu, client) = (&f.emu, &f.client);
    for _ in 0..3 {
        client
            .queues_get_all(&QueuesGetAll::default())
            .await
            .unwrap();
    }
    assert_eq!(emu.call_count("auth.login"), 3);
    let f = Fixture::start().await;
    let (emu, client) = (&f.emu, &f.client);
    for _ in 0..3 {
        client
            .queues_get_all(&QueuesGetAll::default())
            .await
            .unwrap();
    }
    assert_eq!(emu.call_count("auth.login"), 1);
}

#[tokio::test]
async fn transient_failures_are_retried_logical_ones_are_not() {
    let f = Fixture::start().await;
    let (emu, client) = (&f.emu, &f.client);
    emu.fail_next("queues.get_all", 503, 2);
    client
        .queues_get_all(&QueuesGetAll::default())
        .await
        .unwrap();
    assert_eq!(emu.call_count("queues.get_all"), 3);

    emu.fail_next("queues.get_all", 502, 10);
    let err = client
        .queues_get_all(&QueuesGetAll::default())
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), ("queues.get_all".into(), 502, 0));
    assert!(err.is_transient());
    assert_eq!(
        emu.call_count("queues.get_all"),
        3 + 4,
        "first attempt + 3 retries"
    );

    let before = emu.call_count("queues.get_by_id");
    client.queues_get_by_id("nope").await.unwrap_err();
    assert_eq!(emu.call_count("queues.get_by_id"), before + 1);
}

#[tokio::test]
async fn login_failures_are_retried_once_per_attempt() {
    let f = Fixture::start().await;
    let (emu, client) = (&f.emu, &f.client);
    emu.fail_next("auth.login", 503, 2);
    client
        .queues_get_all(&QueuesGetAll::default())
        .await
        .unwrap();
    assert_eq!(emu.call_count("auth.login"), 3);

    let f = Fixture::start().await;
    let (emu, client) = (&f.emu, &f.client);
    emu.fail_next("auth.login", 503, 100);
    let err = client
        .queues_get_all(&QueuesGetAll::default())
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), ("auth.login".into(), 503, 0));
    assert_eq!(
        emu.call_count("auth.login"),
        4,
        "1 + 3 retries, not nested retries"
    );
}

/// A loopback server that answers every connection with `reply` (or never, for `None`) and counts connections.
async fn fake_server(
    reply: Option<&'static str>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            seen.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                match reply {
                    Some(r) => {
                        let _ = sock.write_all(r.as_bytes()).await;
                    }
                    // Hold the connection open without answering until the client gives up.
                    None => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    (url, count)
}

fn client_for(url: &str, timeout: Duration) -> Client {
    let mut cfg = ClientConfig::new(url, "a", "b");
    cfg.timeout = timeout;
    cfg.retry = RetryPolicy {
        max_retries: 2,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(2),
    };
    Client::new(cfg).unwrap()
}

#[tokio::test]
async fn a_proxy_error_page_is_a_transient_http_error() {
    let (url, count) = fake_server(Some(
        "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 11\r\nConnection: close\r\n\r\nbad gateway",
    ))
    .await;
    let err = client_for(&url, Duration::from_secs(5))
        .queues_get_all(&QueuesGetAll::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Http { status: 502, endpoint, body } if endpoint == "auth.login" && body == "bad gateway"),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(
        count.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "first attempt + 2 retries"
    );
}

#[tokio::test]
async fn a_silent_server_times_out_and_is_retried() {
    let (url, count) = fake_server(None).await;
    let err = client_for(&url, Duration::from_millis(200))
        .queues_get_all(&QueuesGetAll::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Transport { source, .. } if source.is_timeout()),
        "{err:?}"
    );
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[tokio::test]
async fn unreachable_server_is_a_transport_error() {
    // Bind then drop a listener: the port is (almost certainly) closed now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = ClientConfig::new(format!("http://127.0.0.1:{port}"), "a", "b");
    cfg.retry = RetryPolicy {
        max_retries: 1,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(1),
    };
    let err = Client::new(cfg)
        .unwrap()
        .queues_get_by_id("q")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(err.endpoint(), "auth.login");
}

#[tokio::test]
async fn bad_requests_through_the_client_name_the_endpoint() {
    let f = Fixture::start().await;
    let client = &f.client;
    let wrong_type = client
        .call::<_, Value>("tasks.get_by_id", &json!({ "task": 5 }))
        .await
        .unwrap_err();
    assert_eq!(api_code(&wrong_type), ("tasks.get_by_id".into(), 400, 12));
    let missing = client
        .call::<_, Value>("tasks.get_by_id", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(api_code(&missing), ("tasks.get_by_id".into(), 400, 12));
    let missing_name = client
        .call::<_, Value>("projects.create", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(api_code(&missing_name), ("projects.create".into(), 400, 11));
    let unknown = client
        .call::<_, Value>("tasks.teleport", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(api_code(&unknown), ("tasks.teleport".into(), 404, 0));
    assert!(unknown.is_endpoint_missing() && !unknown.is_transient());
    // services/tasks.py: tasks.completed has min_version 2.2.
    let too_old = client
        .call_at::<_, Value>("tasks.completed", "2.1", &json!({}))
        .await
        .unwrap_err();
    assert!(too_old.is(codes::ENDPOINT_NOT_FOUND));
}

#[tokio::test]
async fn remaining_reference_error_codes() {
    let f = Fixture::start().await;
    let (emu, client) = (&f.emu, &f.client);
    let call = |endpoint: &'static str, body: Value| {
        let client = client.clone();
        async move { client.call::<_, Value>(endpoint, &body).await }
    };
    // Projects: duplicate name 801, bad project on task create 401.
    call("projects.create", json!({"name": "project-a"}))
        .await
        .unwrap();
    let dup = call("projects.create", json!({"name": "project-a"}))
        .await
        .unwrap_err();
    assert_eq!(api_code(&dup), ("projects.create".into(), 400, 801));
    let bad = call(
        "tasks.create",
        json!({"name": "task", "type": "training", "project": "nope"}),
    )
    .await
    .unwrap_err();
    assert_eq!(api_code(&bad), ("tasks.create".into(), 400, 401));
    let bad_type = call("tasks.create", json!({"name": "task", "type": "sleeping"}))
        .await
        .unwrap_err();
    assert_eq!(api_code(&bad_type), ("tasks.create".into(), 400, 12));
    // Queues: delete a non-empty queue 702 (unless forced); several default queues 708.
    let queue = f.queue("non-empty").await;
    let task = f.task("occupant").await;
    client.queues_add_task(&queue, &task).await.unwrap();
    let err = call("queues.delete", json!({"queue": queue}))
        .await
        .unwrap_err();
    assert!(err.is(codes::QUEUE_NOT_EMPTY));
    call("queues.delete", json!({"queue": queue, "force": true}))
        .await
        .unwrap();
    call(
        "queues.create",
        json!({"name": "second-default", "system_tags": ["default"]}),
    )
    .await
    .unwrap();
    let err = call("queues.get_default", json!({})).await.unwrap_err();
    assert_eq!(api_code(&err), ("queues.get_default".into(), 400, 708));
    // Tasks: edit of a non-draft without force 110; status calls on unknown ids 101.
    client
        .tasks_started(&StatusChange::new(&task))
        .await
        .unwrap();
    let err = call("tasks.edit", json!({"task": task, "name": "renamed"}))
        .await
        .unwrap_err();
    assert!(err.is(codes::INVALID_TASK_STATUS));
    for endpoint in [
        "tasks.started",
        "tasks.stopped",
        "tasks.failed",
        "tasks.stop",
        "tasks.edit",
    ] {
        let err = call(endpoint, json!({"task": "f00"})).await.unwrap_err();
        assert_eq!(api_code(&err), (endpoint.into(), 400, 101));
    }
    // Dequeueing an unknown task is not an error either (task_operations.py dequeue_task).
    let v = call("tasks.dequeue", json!({"task": "f00"})).await.unwrap();
    assert_eq!(v, json!({"dequeued": 1, "updated": 0}));
    // Pinging an unknown task is not an error.
    call("tasks.ping", json!({"task": "f00"})).await.unwrap();
    assert!(emu.call_count("tasks.ping") == 1);
}

/// Raw HTTP, to send what no typed client would: the emulator must answer like clearml-server.
mod raw {
    use super::*;

    /// reqwest is built without a default crypto provider; install ring first, as `Client::new` does.
    fn http() -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::new()
    }

    async fn send(
        emu: &EmulatorHandle,
        path: &str,
        auth: Option<String>,
        body: &'static str,
    ) -> (u16, Value) {
        let mut req = http().post(format!("{}{path}", emu.base_url())).body(body);
        if let Some(a) = auth {
            req = req
                .header("Authorization", a)
                .header("X-ClearML-Trx", "trx-1");
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    fn basic(key: &str, secret: &str) -> Option<String> {
        use base64::Engine;
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{key}:{secret}"))
        ))
    }

    fn code(v: &Value) -> (u64, u64) {
        (
            v["meta"]["result_code"].as_u64().unwrap(),
            v["meta"]["result_subcode"].as_u64().unwrap(),
        )
    }

    #[tokio::test]
    async fn envelope_shape() {
        let emu = Emulator::start(EmulatorConfig::default()).await.unwrap();
        let (status, v) = send(
            &emu,
            "/v2.23/queues.get_all",
            basic(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY),
            "{}",
        )
        .await;
        assert_eq!(status, 200);
        let meta = &v["meta"];
        assert_eq!(
            meta["endpoint"],
            json!({"name": "queues.get_all", "requested_version": "2.23", "actual_version": "2.4"})
        );
        assert_eq!(
            (meta["result_msg"].as_str(), meta["trx"].as_str()),
            (Some("OK"), Some("trx-1"))
        );
        assert_eq!(meta["error_stack"], Value::Null);
        assert_eq!(v["data"]["queues"][0]["name"], json!("default"));
    }

    #[tokio::test]
    async fn bad_input_codes() {
        let emu = Emulator::start(EmulatorConfig::default()).await.unwrap();
        let ok = || basic(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY);
        // (path, Authorization header, body, expected (code, subcode))
        type Case = (&'static str, Option<String>, &'static str, (u64, u64));
        let cases: Vec<Case> = vec![
            ("/v2.23/tasks.get_by_id", ok(), "{not json", (400, 0)),
            ("/v2.23/tasks.get_by_id", ok(), r#"{"task": 5}"#, (400, 12)),
            ("/v2.23/tasks.get_by_id", ok(), r#"{}"#, (400, 12)),
            ("/v2.23/tasks.get_by_id", ok(), r#"[1, 2]"#, (400, 12)),
            (
                "/v2.23/tasks.get_by_id",
                ok(),
                r#"{"task": "f00"}"#,
                (400, 101),
            ),
            ("/v2.23/projects.create", ok(), r#"{}"#, (400, 11)),
            (
                "/v2.23/projects.create",
                ok(),
                r#"{"name": "ab"}"#,
                (400, 800),
            ),
            ("/v2.23/tasks.teleport", ok(), "{}", (404, 0)),
            ("/v2.1/tasks.completed", ok(), "{}", (404, 0)),
            ("/v2.3/queues.get_all", ok(), "{}", (404, 0)),
            ("/not/a/path", ok(), "{}", (400, 0)),
            ("/v2.23/tasks.get_all", None, "{}", (401, 20)),
            (
                "/v2.23/tasks.get_all",
                Some("Digest x".into()),
                "{}",
                (401, 10),
            ),
            (
                "/v2.23/tasks.get_all",
                Some("Basic ***".into()),
                "{}",
                (401, 21),
            ),
            (
                "/v2.23/tasks.get_all",
                basic(DEFAULT_ACCESS_KEY, "nope"),
                "{}",
                (401, 22),
            ),
            (
                "/v2.23/tasks.get_all",
                Some(format!("Bearer {}", emu.issue_token(-10))),
                "{}",
                (401, 30),
            ),
            (
                "/v2.23/tasks.get_all",
                Some("Bearer not.a.jwt".into()),
                "{}",
                (401, 30),
            ),
            (
                "/auth.login",
                ok(),
                r#"{"expiration_sec": 99999999}"#,
                (400, 12),
            ),
        ];
        for (path, auth, body, want) in cases {
            let (status, v) = send(&emu, path, auth, body).await;
            assert_eq!(
                (code(&v), u64::from(status)),
                (want, want.0),
                "{path} {body}: {v}"
            );
            assert_eq!(
                v["data"],
                json!({}),
                "{path} {body}: errors carry empty data"
            );
        }
        // A valid token works, also as the session cookie.
        let token = emu.issue_token(3600);
        let (status, _) = send(
            &emu,
            "/v2.23/tasks.get_all",
            Some(format!("Bearer {token}")),
            "{}",
        )
        .await;
        assert_eq!(status, 200);
        let resp = http()
            .get(format!("{}/v2.23/tasks.get_all", emu.base_url()))
            .header("Cookie", format!("clearml_token_basic={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }

    #[tokio::test]
    async fn large_event_batches_are_accepted() {
        let emu = Emulator::start(EmulatorConfig::default()).await.unwrap();
        let task = emu.with_store(|s| {
            let r = serde_json::from_value(json!({"name": "logger", "type": "training"})).unwrap();
            s.tasks_create(r, clearml_emulator::Ts::now()).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        });
        let line = format!(
            "{{\"type\":\"log\",\"task\":\"{task}\",\"msg\":\"{}\"}}\n",
            "x".repeat(1000)
        );
        let body = line.repeat(4000); // ~4 MB, over axum's default limit
        let resp = http()
            .post(format!("{}/v2.23/events.add_batch", emu.base_url()))
            .header(
                "Authorization",
                basic(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY).unwrap(),
            )
            .header("Content-Type", "application/json-lines")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["data"]["added"], json!(4000));
    }

    #[tokio::test]
    async fn login_via_query_without_version() {
        let emu = Emulator::start(EmulatorConfig::default()).await.unwrap();
        let resp = http()
            .get(format!("{}/auth.login?expiration_sec=7200", emu.base_url()))
            .header(
                "Authorization",
                basic(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY).unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert!(
            resp.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .starts_with("clearml_token_basic=")
        );
        let v: Value = resp.json().await.unwrap();
        let claims =
            clearml_api::token::decode_claims(v["data"]["token"].as_str().unwrap()).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((claims.exp.unwrap() - now - 7200).abs() < 5);
    }
}

#[tokio::test]
async fn get_next_task_is_atomic_under_concurrency() {
    let f = Fixture::start().await;
    let client = &f.client;
    let queue = f.queue("contended").await;
    let mut ids = Vec::new();
    for i in 0..40 {
        let t = f.task(&format!("task {i}")).await;
        f.enqueue(&t, &queue).await;
        ids.push(t);
    }
    let mut pollers = Vec::new();
    for _ in 0..8 {
        let (client, queue) = (Client::clone(client), queue.clone());
        pollers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(next) = client.queues_get_next_task(&queue).await.unwrap() {
                got.push(next.entry.task);
            }
            got
        }));
    }
    let mut popped = Vec::new();
    for p in pollers {
        popped.extend(p.await.unwrap());
    }
    popped.sort();
    ids.sort();
    assert_eq!(popped, ids, "every task popped exactly once");
}

#[tokio::test]
async fn state_survives_a_restart_with_a_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = EmulatorConfig {
        state_file: Some(dir.path().join("state.json")),
        ..Default::default()
    };
    let f = Fixture::with(config.clone()).await;
    let queue = f.queue("persisted").await;
    let task = f.queued_task("persisted task", &queue).await;
    f.emu.shutdown().await.unwrap();

    let f = Fixture::with(config).await;
    let client = &f.client;
    let q = client.queues_get_by_id(&queue).await.unwrap();
    assert_eq!(q.entries[0].task, task);
    assert_eq!(
        client.tasks_get_by_id(&task).await.unwrap().status,
        Some(TaskStatus::Queued)
    );
}
