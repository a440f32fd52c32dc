//! One test's world: the shared real control plane (a fresh namespace), an in-process ClearML emulator, the kubelet
//! simulator on that namespace, and the agent itself running in-process from a values file.

use std::sync::Arc;
use std::time::Duration;

use agent::config::{AgentConfig, Overrides};
use agent::run::{Prepared, RunOptions};
use clearml_api::{Client, ClientConfig, Enqueue};
use clearml_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kubelet_sim::{InPodAgent, NodeSpec, SimConfig, SimHandle, Simulator};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ACCESS_KEY: &str = "E2E-ACCESS-KEY-7f3a";
pub const SECRET_KEY: &str = "e2e-secret-key-91d2c4b7";

/// How long a test waits for a state before failing (generous: 2 shared cores).
pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct World {
    /// The shared control plane (for a fault proxy in front of it).
    pub env: &'static kube_testenv::TestEnv,
    pub kube: kube::Client,
    pub namespace: String,
    pub emulator: EmulatorHandle,
    pub clearml: Client,
    /// How the emulator was started (its address, once bound), to restart it on the same port and state file.
    emulator_config: EmulatorConfig,
    _state_dir: Option<tempfile::TempDir>,
    _sim: SimHandle,
}

impl World {
    /// The control plane (or `None`: skipped outside CI), an emulator and a simulator with one big node.
    pub async fn new(test: &str) -> Option<Self> {
        Self::with_nodes(
            test,
            vec![NodeSpec::new(&format!("{test}-node"), "512", "4Ti", 16).unwrap()],
        )
        .await
    }

    /// The same against an emulator serving ClearML Enterprise's feature set.
    pub async fn enterprise(test: &str) -> Option<Self> {
        let nodes = vec![NodeSpec::new(&format!("{test}-node"), "512", "4Ti", 16).unwrap()];
        Self::build(test, nodes, "enterprise", None, false).await
    }

    pub async fn with_nodes(test: &str, nodes: Vec<NodeSpec>) -> Option<Self> {
        Self::build(test, nodes, "basic", None, false).await
    }

    /// The same against an open-source server older than 1.17.0, which refuses to enqueue a queued task (the
    /// agent stops it first at the hand-over).
    pub async fn before_same_state_enqueue(test: &str) -> Option<Self> {
        let nodes = vec![NodeSpec::new(&format!("{test}-node"), "512", "4Ti", 16).unwrap()];
        Self::build(test, nodes, "basic", Some("1.16.2"), false).await
    }

    /// The same with the emulator keeping its state in a file, so [`World::restart_emulator`] can restart it.
    pub async fn persistent(test: &str) -> Option<Self> {
        let nodes = vec![NodeSpec::new(&format!("{test}-node"), "512", "4Ti", 16).unwrap()];
        Self::build(test, nodes, "basic", None, true).await
    }

    async fn build(
        test: &str,
        nodes: Vec<NodeSpec>,
        feature_set: &str,
        server_version: Option<&str>,
        persistent: bool,
    ) -> Option<Self> {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "agent=debug,warn".into()),
            )
            .with_test_writer()
            .try_init();
        let ctx = kube_testenv::test_context(test).await?;
        let state_dir = persistent.then(|| tempfile::tempdir().unwrap());
        let mut emulator_config = EmulatorConfig {
            credentials: vec![(ACCESS_KEY.into(), SECRET_KEY.into())],
            feature_set: feature_set.into(),
            server_version: server_version.map(str::to_string),
            state_file: state_dir.as_ref().map(|d| d.path().join("state.json")),
            ..EmulatorConfig::default()
        };
        let emulator = Emulator::start(emulator_config.clone())
            .await
            .expect("emulator starts");
        emulator_config.bind = emulator.addr();
        let clearml = Client::new(ClientConfig::new(
            emulator.base_url(),
            ACCESS_KEY,
            SECRET_KEY,
        ))
        .unwrap();
        let sim = Simulator::new(
            ctx.client.clone(),
            SimConfig {
                nodes,
                default_run: Duration::from_secs(3600),
                in_pod_agent: Some(InPodAgent {
                    abort_poll: Duration::from_millis(500),
                    status_report: Duration::from_secs(2),
                    ..InPodAgent::default()
                }),
                ..SimConfig::default()
            },
            Some(ctx.namespace.clone()),
        )
        .spawn()
        .await
        .expect("kubelet-sim starts");
        Some(Self {
            env: ctx.env,
            kube: ctx.client,
            namespace: ctx.namespace,
            emulator,
            clearml,
            emulator_config,
            _state_dir: state_dir,
            _sim: sim,
        })
    }

    /// Stop the emulator (it saves its state file), let `while_down` run, and start it again on the same port and
    /// state file: a ClearML server restart. Its tokens are new, so every client must log in again.
    pub async fn restart_emulator(&mut self, while_down: impl std::future::Future<Output = ()>) {
        assert!(
            self.emulator_config.state_file.is_some(),
            "restart needs World::persistent"
        );
        let stand_in = Emulator::start(EmulatorConfig::default()).await.unwrap();
        let old = std::mem::replace(&mut self.emulator, stand_in);
        old.shutdown().await.expect("the emulator saves its state");
        while_down.await;
        let restarted = Emulator::start(self.emulator_config.clone())
            .await
            .expect("the emulator restarts on its port");
        drop(std::mem::replace(&mut self.emulator, restarted));
    }

    /// Parse `values` (YAML, the chart's shape) with this world's ClearML URL and credentials as env overrides.
    pub fn config(&self, values: &str) -> AgentConfig {
        AgentConfig::from_yaml(
            values,
            &Overrides {
                access_key: Some(ACCESS_KEY.into()),
                secret_key: Some(SECRET_KEY.into()),
                api_host: Some(self.emulator.base_url().to_string()),
            },
        )
        .expect("the test's values parse")
    }

    /// Start the agent on `values`.
    pub async fn start_agent(&self, values: &str) -> RunningAgent {
        self.start_agent_with(self.config(values), "agent").await
    }

    pub async fn start_agent_with(&self, config: AgentConfig, instance: &str) -> RunningAgent {
        self.start_agent_at(config, instance, None).await
    }

    /// Start the agent with a failpoint armed: every submission stops dead at that step.
    pub async fn start_agent_at(
        &self,
        config: AgentConfig,
        instance: &str,
        failpoint: Option<(agent::run::Failpoint, Arc<tokio::sync::Notify>)>,
    ) -> RunningAgent {
        self.launch(
            config,
            AgentSpec {
                instance: instance.to_string(),
                failpoint,
                ..AgentSpec::default()
            },
        )
        .await
    }

    /// Start the agent as `spec` says (another Kubernetes client, leader election, a failpoint).
    pub async fn launch(&self, config: AgentConfig, spec: AgentSpec) -> RunningAgent {
        let prepared = Prepared::new(config, Some(policy_cache())).expect("policies load");
        let metrics_addr = free_local_addr();
        let options = RunOptions {
            namespace: self.namespace.clone(),
            metrics_addr,
            instance: spec.instance.clone(),
            credentials_secret: format!("{}-credentials", spec.instance),
            max_in_flight: 8,
            shutdown_grace: spec.shutdown_grace,
            leader_election: spec.leader_election,
            failpoint: spec.failpoint,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let kube = spec.kube.unwrap_or_else(|| self.kube.clone());
        let task = tokio::spawn(async move {
            agent::run::run(prepared, kube, options, async move {
                let _ = stopped.await;
            })
            .await
            .map_err(|e| {
                // Say it now: a test waiting for the agent's effects would otherwise only time out.
                eprintln!("the agent stopped with an error: {e}");
                e.to_string()
            })
        });
        RunningAgent {
            stop: Some(stop),
            task,
            metrics_addr,
        }
    }

    /// Create a task in project `e2e` and enqueue it on `queue` (a name); returns its id.
    pub async fn enqueue(&self, queue: &str, name: &str, extra: serde_json::Value) -> String {
        let mut body = json!({"name": name, "type": "training", "project": self.project().await});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        #[derive(serde::Deserialize)]
        struct Created {
            id: String,
        }
        let created: Created = self.clearml.call("tasks.create", &body).await.unwrap();
        let queue_id = agent::startup::find_queue(&self.clearml, queue)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("queue {queue} does not exist"));
        self.clearml
            .tasks_enqueue(&Enqueue {
                task: created.id.clone(),
                queue: Some(queue_id),
                ..Enqueue::default()
            })
            .await
            .unwrap();
        created.id
    }

    async fn project(&self) -> String {
        #[derive(serde::Deserialize)]
        struct Projects {
            projects: Vec<serde_json::Value>,
        }
        let found: Projects = self
            .clearml
            .call("projects.get_all", &json!({"name": "^e2e$"}))
            .await
            .unwrap();
        if let Some(id) = found.projects.first().and_then(|p| p["id"].as_str()) {
            return id.to_string();
        }
        #[derive(serde::Deserialize)]
        struct Created {
            id: String,
        }
        let created: Created = self
            .clearml
            .call(
                "projects.create",
                &json!({"name": "e2e", "description": ""}),
            )
            .await
            .unwrap();
        created.id
    }

    /// Create a queue (for configs with `createQueues: false`).
    pub async fn create_queue(&self, name: &str) -> String {
        self.clearml
            .queues_create(&clearml_api::QueueCreate {
                name: name.into(),
                ..Default::default()
            })
            .await
            .unwrap()
    }

    pub fn pods_api(&self) -> Api<Pod> {
        Api::namespaced(self.kube.clone(), &self.namespace)
    }

    pub async fn pods(&self) -> Vec<Pod> {
        self.pods_api()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
    }

    pub async fn pod_of(&self, task_id: &str) -> Option<Pod> {
        self.pods_api()
            .get_opt(&agent::render::pod_name(task_id))
            .await
            .unwrap()
    }

    /// Wait for the pod of `task_id`.
    pub async fn wait_pod(&self, task_id: &str) -> Pod {
        eventually(&format!("a pod for task {task_id}"), || async {
            self.pod_of(task_id).await
        })
        .await
    }

    pub async fn task(&self, task_id: &str) -> clearml_api::Task {
        self.clearml.tasks_get_by_id(task_id).await.unwrap()
    }

    /// Wait until the task's status is `status`; returns the task.
    pub async fn wait_status(
        &self,
        task_id: &str,
        status: clearml_api::TaskStatus,
    ) -> clearml_api::Task {
        eventually(&format!("task {task_id} {status}"), || async {
            let task = self.task(task_id).await;
            (task.status == Some(status)).then_some(task)
        })
        .await
    }
}

/// How to start an agent beyond its values.
pub struct AgentSpec {
    pub instance: String,
    /// Another client (e.g. through a fault proxy); default: the world's admin client.
    pub kube: Option<kube::Client>,
    pub leader_election: Option<agent::leader::LeaseSettings>,
    pub failpoint: Option<(agent::run::Failpoint, Arc<tokio::sync::Notify>)>,
    pub shutdown_grace: Duration,
}

impl Default for AgentSpec {
    fn default() -> Self {
        Self {
            instance: "agent".into(),
            kube: None,
            leader_election: None,
            failpoint: None,
            shutdown_grace: Duration::from_secs(25),
        }
    }
}

/// A free loopback port, for an agent whose `/readyz` the test reads.
fn free_local_addr() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// The agent, running; stop it with [`RunningAgent::stop`] (a clean shutdown, like SIGTERM).
pub struct RunningAgent {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), String>>,
    metrics_addr: std::net::SocketAddr,
}

impl RunningAgent {
    /// `GET path` on the agent's metrics server: (status, body); `None` while it does not answer.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.metrics_addr)
            .await
            .ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        let status = response.split(' ').nth(1)?.parse().ok()?;
        let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        Some((status, body.to_string()))
    }

    /// Wait until `/readyz` answers `status` with a body containing `text`; returns the body.
    pub async fn wait_readyz(&self, status: u16, text: &str) -> String {
        eventually(&format!("/readyz {status} saying {text:?}"), || async {
            self.get("/readyz")
                .await
                .filter(|(code, body)| *code == status && body.contains(text))
                .map(|(_, body)| body)
        })
        .await
    }

    pub async fn stop(mut self) -> Result<(), String> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(PATIENCE, &mut self.task)
            .await
            .expect("the agent stops within the patience")
            .expect("the agent task did not panic")
    }

    /// Abort the agent's task (the in-process equivalent of a kill: nothing runs after it).
    pub fn kill(self) {
        self.task.abort();
    }
}

/// Poll `probe` until it returns `Some`, failing the test after [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Precompiled policies shared by the tests of this binary (compiling four plugins per test would cost seconds).
fn policy_cache() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<Arc<tempfile::TempDir>> = std::sync::OnceLock::new();
    DIR.get_or_init(|| Arc::new(tempfile::tempdir().unwrap()))
        .path()
        .to_path_buf()
}

/// A pod's task-container env var's plain value.
pub fn env_value(pod: &Pod, name: &str) -> Option<String> {
    task_container(pod)
        .env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .and_then(|e| e.value.clone())
}

pub fn task_container(pod: &Pod) -> &k8s_openapi::api::core::v1::Container {
    pod.spec
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .find(|c| c.name == "clearml-task")
        .expect("the task container")
}

pub fn label<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

pub fn limit(pod: &Pod, resource: &str) -> Option<String> {
    task_container(pod)
        .resources
        .as_ref()?
        .limits
        .as_ref()?
        .get(resource)
        .map(|q| q.0.clone())
}
