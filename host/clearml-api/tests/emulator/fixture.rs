//! Fixture builders: one emulator plus a client logged in to it, and the few documents tests start from (a
//! queue, a draft task, a queued task, a task running under a worker), so each test states only what differs.

use std::time::Duration;

use clearml_api::{
    Client, ClientConfig, Enqueue, Enqueued, QueueCreate, RetryPolicy, StatusChange, StatusReport,
    TaskStatus,
};
use clearml_emulator::{
    DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Emulator, EmulatorConfig, EmulatorHandle,
};
use serde_json::{Value, json};

/// Retries fast enough that transient-failure tests take milliseconds.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    }
}

pub struct Fixture {
    pub emu: EmulatorHandle,
    pub client: Client,
}

impl Fixture {
    /// An open-source (`basic`) emulator.
    pub async fn start() -> Self {
        Self::with(EmulatorConfig::default()).await
    }

    /// The enterprise feature set (serves `workers.cluster_report`).
    pub async fn enterprise() -> Self {
        Self::with(EmulatorConfig {
            feature_set: "enterprise".into(),
            ..Default::default()
        })
        .await
    }

    pub async fn with(config: EmulatorConfig) -> Self {
        let emu = Emulator::start(config).await.unwrap();
        let mut cfg = ClientConfig::new(emu.base_url(), DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY);
        cfg.retry = fast_retry();
        let client = Client::new(cfg).unwrap();
        Fixture { emu, client }
    }

    pub async fn queue(&self, name: &str) -> String {
        self.client
            .queues_create(&QueueCreate {
                name: name.into(),
                ..Default::default()
            })
            .await
            .unwrap()
    }

    /// A queue the glue would use as its pending queue (system tag `k8s-glue`, hidden from listings).
    pub async fn hidden_queue(&self, name: &str) -> String {
        self.client
            .queues_create(&QueueCreate {
                name: name.into(),
                system_tags: vec!["k8s-glue".into()],
                ..Default::default()
            })
            .await
            .unwrap()
    }

    /// A draft task (status `created`).
    pub async fn task(&self, name: &str) -> String {
        let v: Value = self
            .client
            .call("tasks.create", &json!({ "name": name, "type": "training" }))
            .await
            .unwrap();
        v["id"].as_str().unwrap().to_owned()
    }

    pub async fn enqueue(&self, task: &str, queue: &str) -> Enqueued {
        self.client
            .tasks_enqueue(&Enqueue {
                task: task.into(),
                queue: Some(queue.into()),
                ..Default::default()
            })
            .await
            .unwrap()
    }

    /// A task waiting in `queue`.
    pub async fn queued_task(&self, name: &str, queue: &str) -> String {
        let task = self.task(name).await;
        self.enqueue(&task, queue).await;
        task
    }

    /// A task in progress whose worker has just reported on it (so `tasks.stop` only asks it to stop).
    pub async fn running_task(&self, name: &str, worker: &str) -> String {
        let task = self.task(name).await;
        self.client
            .tasks_started(&StatusChange::new(&task))
            .await
            .unwrap();
        self.client
            .workers_status_report(&StatusReport {
                worker: worker.into(),
                timestamp: 0,
                task: Some(task.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        task
    }

    pub async fn status(&self, task: &str) -> Option<TaskStatus> {
        self.client.tasks_get_by_id(task).await.unwrap().status
    }
}
