//! The sides of a pair: the agent with the default chain, the agent with `--no-policies`, the plain kube-rs loop.
//! Each has a control plane and a kubelet-sim of its own, all started and ready (agent up, tasks created) before
//! the pair's first task is enqueued; then [`run_interleaved`] feeds each side its tasks (or pods) in chunks,
//! taking turns in [`interleaving`]'s order, and each side's rate is its tasks over the sum of its chunks' walls.
//! On this shared machine the speed moves from second to second and from minute to minute; sides measured tens of
//! seconds apart (one after the other) moved by tens of points per pair, sides taking turns within seconds share
//! whatever the machine did.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use driver::agent_process::{AgentProcess, AgentSpec};
use driver::bench::{Burst, Plain, as_submitted, interleaving, policy_seconds};
use driver::clearml::{Clearml, NewTask};
use driver::counting::{self, CountedEmulator};
use driver::cpu::{CpuSnapshot, Pids};
use driver::pod_watch::PodWatch;
use driver::sim_process::{SimProcess, SimSpec};
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, PostParams};
use kube::core::PartialObjectMeta;

/// Every wait in a run gives up after this (keeps `just bench` bounded when something is broken).
const PATIENCE: Duration = Duration::from_secs(300);
/// A run whose pod count has not moved for this long is stuck: give up rather than wait out [`PATIENCE`].
const STALL: Duration = Duration::from_secs(30);

/// What every side needs: the binaries, the values, the run's size.
pub struct Setup {
    pub agent_bin: PathBuf,
    pub sim_bin: PathBuf,
    /// kubelet-sim's nodes and run time (its kubeconfig and log are the side's).
    pub sim_spec: SimSpec,
    pub values: PathBuf,
    pub out: PathBuf,
    pub tasks: usize,
    pub queues: usize,
    pub concurrency: usize,
}

/// A control plane and a kubelet-sim of one side's own.
pub struct Plane {
    pub env: kube_testenv::TestEnv,
    pub kube: kube::Client,
    sim: SimProcess,
}

impl Plane {
    pub async fn start(setup: &Setup, run: &str) -> anyhow::Result<Self> {
        eprintln!("bench-agent: run `{run}`: starting kube-apiserver + etcd");
        let (env, kube) = driver::control_plane()
            .await
            .context("starting kube-apiserver + etcd")?;
        let spec = SimSpec {
            kubeconfig: env.kubeconfig_path().to_path_buf(),
            log: setup.out.join(format!("kubelet-sim-{run}.log")),
            ..setup.sim_spec.clone()
        };
        let sim = SimProcess::start(&setup.sim_bin, &spec, &kube, Duration::from_secs(30)).await?;
        Ok(Self { env, kube, sim })
    }

    fn pids(&self, agent: Option<u32>) -> Pids {
        let (etcd, apiserver) = self.env.pids();
        Pids {
            agent,
            apiserver: Some(apiserver),
            etcd: Some(etcd),
            sim: Some(self.sim.pid()),
        }
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.sim.stop(Duration::from_secs(10)).await?;
        self.env.stop();
        Ok(())
    }
}

/// What a side's chunks add up to.
#[derive(Default)]
struct Chunks {
    wall: Duration,
    latencies: Vec<Duration>,
    machine: CpuSnapshot,
    done: usize,
}

impl Chunks {
    /// The next `n` of `total` (fewer at the end).
    fn next(&self, n: usize, total: usize) -> std::ops::Range<usize> {
        self.done..(self.done + n).min(total)
    }
}

/// The real agent on its own control plane, with its tasks created and not yet enqueued.
pub struct AgentSide {
    name: String,
    out: PathBuf,
    plane: Plane,
    emulator: CountedEmulator,
    watch: PodWatch<PartialObjectMeta<Pod>>,
    agent: AgentProcess,
    clearml: Clearml,
    tasks: Vec<(String, String)>,
    pods_api: Api<Pod>,
    rss_ready: u64,
    agent_cpu: Duration,
    requests: BTreeMap<String, u64>,
    chunks: Chunks,
}

impl AgentSide {
    pub async fn start(setup: &Setup, name: &str, no_policies: bool) -> anyhow::Result<Self> {
        let plane = Plane::start(setup, name).await?;
        let namespace =
            kube_testenv::create_namespace(&plane.kube, &format!("bench-{name}")).await?;
        let pods_api = Api::<Pod>::namespaced(plane.kube.clone(), &namespace);
        let emulator = CountedEmulator::start().await?;
        let watch = PodWatch::start_metadata(Api::namespaced(plane.kube.clone(), &namespace));
        watch.wait_synced().await;
        let agent = start_agent(setup, &plane, name, &namespace, &emulator, no_policies).await?;
        let rss_ready = agent.sample()?.rss_bytes;
        let clearml = Clearml::new(&emulator.driver_url)?;
        let tasks = create_tasks(&clearml, setup.queues, setup.tasks, name).await?;
        Ok(Self {
            name: name.into(),
            out: setup.out.clone(),
            plane,
            emulator,
            watch,
            agent,
            clearml,
            tasks,
            pods_api,
            rss_ready,
            agent_cpu: Duration::ZERO,
            requests: BTreeMap::new(),
            chunks: Chunks::default(),
        })
    }

    /// Enqueue the next `n` tasks at once; until their pods exist and every task is handed over.
    pub async fn chunk(&mut self, n: usize) -> anyhow::Result<()> {
        let range = self.chunks.next(n, self.tasks.len());
        let tasks = &self.tasks[range.clone()];
        let before = self.emulator.counts.snapshot();
        let cpu_before = self.agent.sample()?.cpu;
        let pids = self.plane.pids(Some(self.agent.pid()));
        let machine_before = CpuSnapshot::take_of(&pids);
        self.emulator.counts.restart_firsts();
        let enqueued = enqueue_all(&self.clearml, tasks).await?;
        wait_pods(&self.watch, &mut self.agent, range.end).await?;
        let machine = CpuSnapshot::take_of(&pids).since(&machine_before);
        let cpu = self.agent.sample()?.cpu.saturating_sub(cpu_before);
        let first_pop = self
            .emulator
            .counts
            .first("queues.get_next_task")
            .context("the agent created pods without calling queues.get_next_task")?;
        let seen: Vec<Instant> = tasks
            .iter()
            .filter_map(|(id, _)| Some(self.watch.get(&driver::pod_name(id))?.first_seen))
            .collect();
        let last_pod = seen.iter().max().copied().context("no pods")?;
        wait_handed_over(&self.clearml, range.end).await;
        for (endpoint, n) in counting::delta(&before, &self.emulator.counts.snapshot()) {
            *self.requests.entry(endpoint).or_default() += n;
        }
        self.chunks.wall += last_pod.saturating_duration_since(first_pop);
        self.chunks.latencies.extend(
            seen.iter()
                .zip(&enqueued)
                .map(|(seen, at)| seen.saturating_duration_since(*at)),
        );
        self.chunks.machine.add(&machine);
        self.agent_cpu += cpu;
        self.chunks.done = range.end;
        Ok(())
    }

    /// Stop the agent and the control plane: what the chunks added up to.
    pub async fn finish(self) -> anyhow::Result<Burst> {
        let tasks = self.chunks.done;
        let sample = self.agent.sample()?;
        let metrics = self.agent.metrics().await.unwrap_or_default();
        std::fs::write(
            self.out.join(format!("metrics-{}.txt", self.name)),
            &metrics,
        )?;
        let status = self.agent.stop(Duration::from_secs(60)).await?;
        if !status.success() {
            bail!(
                "the agent exited with {status} after SIGTERM in run {}",
                self.name
            );
        }
        // The pods as they are, for the plain loop: listed once, after the measured windows (the watch sees only
        // their metadata).
        let pods = self
            .pods_api
            .list(&ListParams::default())
            .await
            .context("listing the run's pods")?
            .items;
        drop(self.watch);
        self.plane.stop().await?;
        let mut requests: Vec<(String, u64)> = self.requests.into_iter().collect();
        requests.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(Burst {
            rate: tasks as f64 / self.chunks.wall.as_secs_f64(),
            wall: self.chunks.wall,
            latencies: self.chunks.latencies,
            cpu_per_task: self.agent_cpu / u32::try_from(tasks.max(1)).unwrap_or(u32::MAX),
            rss_ready: self.rss_ready,
            rss_end: sample.rss_bytes,
            peak_rss: sample.peak_rss_bytes,
            requests_total: requests.iter().map(|(_, n)| n).sum(),
            requests,
            policy_seconds: policy_seconds(&metrics),
            pods,
            machine_cpu: self
                .chunks
                .machine
                .per_task_line(&CpuSnapshot::default(), tasks),
        })
    }
}

/// The plain kube-rs loop on its own control plane: given pods created by `Api::<Pod>::create`, `concurrency` at a
/// time; what this API server allows.
pub struct PlainSide {
    plane: Plane,
    api: Api<Pod>,
    pods: Vec<Pod>,
    concurrency: usize,
    chunks: Chunks,
}

impl PlainSide {
    pub async fn start(setup: &Setup, name: &str, pods: &[Pod]) -> anyhow::Result<Self> {
        let plane = Plane::start(setup, name).await?;
        let namespace = kube_testenv::create_namespace(&plane.kube, "bench-plain").await?;
        let api = Api::<Pod>::namespaced(plane.kube.clone(), &namespace);
        Ok(Self {
            plane,
            api,
            pods: pods.iter().map(|p| as_submitted(p, &namespace)).collect(),
            concurrency: setup.concurrency,
            chunks: Chunks::default(),
        })
    }

    /// Create the next `n` pods.
    pub async fn chunk(&mut self, n: usize) -> anyhow::Result<()> {
        let range = self.chunks.next(n, self.pods.len());
        let pids = self.plane.pids(None);
        let machine_before = CpuSnapshot::take_of(&pids);
        let started = Instant::now();
        let api = &self.api;
        let results: Vec<Result<Duration, kube::Error>> =
            futures::stream::iter(&self.pods[range.clone()])
                .map(|pod| async move {
                    let t = Instant::now();
                    api.create(&PostParams::default(), pod).await?;
                    Ok(t.elapsed())
                })
                .buffer_unordered(self.concurrency)
                .collect()
                .await;
        self.chunks.wall += started.elapsed();
        self.chunks
            .machine
            .add(&CpuSnapshot::take_of(&pids).since(&machine_before));
        for latency in results {
            self.chunks
                .latencies
                .push(latency.context("creating a pod")?);
        }
        self.chunks.done = range.end;
        Ok(())
    }

    pub async fn finish(self) -> anyhow::Result<Plain> {
        self.plane.stop().await?;
        let pods = self.chunks.done;
        Ok(Plain {
            rate: pods as f64 / self.chunks.wall.as_secs_f64(),
            latencies: self.chunks.latencies,
            machine_cpu: self
                .chunks
                .machine
                .per_task_line(&CpuSnapshot::default(), pods),
        })
    }
}

/// One side of a pair.
pub enum Side {
    Agent(Box<AgentSide>),
    Plain(Box<PlainSide>),
}

impl Side {
    async fn chunk(&mut self, n: usize) -> anyhow::Result<()> {
        match self {
            Self::Agent(side) => side.chunk(n).await,
            Self::Plain(side) => side.chunk(n).await,
        }
    }
}

/// Stop every side, in order: the agents' runs, then the plain loops'.
pub async fn finish_all(sides: Vec<Side>) -> anyhow::Result<(Vec<Burst>, Vec<Plain>)> {
    let (mut bursts, mut plains) = (Vec::new(), Vec::new());
    for side in sides {
        match side {
            Side::Agent(side) => bursts.push(side.finish().await?),
            Side::Plain(side) => plains.push(side.finish().await?),
        }
    }
    Ok((bursts, plains))
}

/// Feed `sides` their `tasks` in `chunks` chunks each, in [`interleaving`]'s order for pair `pair`; the machine
/// settles before every chunk (what the last chunk left kubelet-sim and the API servers to do must not land on the
/// next side's figures).
pub async fn run_interleaved(
    sides: &mut [Side],
    pair: usize,
    tasks: usize,
    chunks: usize,
) -> anyhow::Result<()> {
    let per_chunk = tasks.div_ceil(chunks.max(1));
    let mut settled = Duration::ZERO;
    for side in interleaving(pair, sides.len(), chunks.max(1)) {
        settled += driver::cpu::settle(0.10, Duration::from_secs(30)).await;
        sides[side].chunk(per_chunk).await?;
    }
    eprintln!(
        "bench-agent: pair {pair}: {} chunks, {:.1} s settling between them",
        chunks * sides.len(),
        settled.as_secs_f64()
    );
    Ok(())
}

pub async fn start_agent(
    setup: &Setup,
    plane: &Plane,
    name: &str,
    namespace: &str,
    emulator: &CountedEmulator,
    no_policies: bool,
) -> anyhow::Result<AgentProcess> {
    Ok(AgentProcess::start(
        &setup.agent_bin,
        &AgentSpec {
            config: setup.values.clone(),
            namespace: namespace.into(),
            instance: format!("bench-{name}"),
            kubeconfig: plane.env.kubeconfig_path().to_path_buf(),
            clearml_url: emulator.agent_url.clone(),
            max_in_flight: Some(setup.concurrency),
            no_policies,
            log: setup.out.join(format!("agent-{name}.log")),
        },
        Duration::from_secs(120),
    )
    .await?)
}

/// The bench's queue names.
pub fn queue_names(queues: usize) -> Vec<String> {
    (0..queues).map(|i| format!("bench-{i}")).collect()
}

/// Create `n` tasks spread over the queues: `(task id, queue id)`.
pub async fn create_tasks(
    clearml: &Clearml,
    queues: usize,
    n: usize,
    prefix: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let project = clearml.project("bench").await?;
    let mut queue_ids = Vec::new();
    for name in queue_names(queues) {
        queue_ids.push(clearml.queue_id(&name).await?);
    }
    let created: Vec<anyhow::Result<(String, String)>> = futures::stream::iter(0..n)
        .map(|i| {
            let (project, queue) = (&project, queue_ids[i % queue_ids.len()].clone());
            async move {
                let task = NewTask {
                    name: format!("{prefix}-{i}"),
                    ..NewTask::default()
                };
                Ok((clearml.create_task(project, &task).await?, queue))
            }
        })
        .buffered(16)
        .collect()
        .await;
    created.into_iter().collect()
}

/// Enqueue every task, 16 calls at a time (an SDK user with a script); returns when each call was sent.
async fn enqueue_all(
    clearml: &Clearml,
    tasks: &[(String, String)],
) -> anyhow::Result<Vec<Instant>> {
    let sent: Vec<anyhow::Result<Instant>> = futures::stream::iter(tasks)
        .map(|(id, queue)| async move {
            let at = Instant::now();
            clearml.enqueue(id, queue).await?;
            Ok(at)
        })
        .buffered(16)
        .collect()
        .await;
    sent.into_iter().collect()
}

/// Wait until the watch has seen `n` pods; fail if the agent exits, if no new pod appears for [`STALL`], or after
/// [`PATIENCE`].
pub async fn wait_pods(
    watch: &PodWatch<PartialObjectMeta<Pod>>,
    agent: &mut AgentProcess,
    n: usize,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + PATIENCE;
    let mut progress = (watch.count(), Instant::now());
    loop {
        // The watch signals each new pod; the timeout only lets the loop check the agent is still alive.
        if tokio::time::timeout(Duration::from_secs(1), watch.wait_for_count(n))
            .await
            .is_ok()
        {
            return Ok(());
        }
        agent.check_alive()?;
        let seen = watch.count();
        if seen != progress.0 {
            progress = (seen, Instant::now());
        }
        let stalled = progress.1.elapsed() >= STALL;
        if stalled || Instant::now() >= deadline {
            bail!(
                "only {seen} of {n} pods after {}; agent log {}:\n{}",
                if stalled {
                    format!("no new pod for {STALL:?}")
                } else {
                    format!("{PATIENCE:?}")
                },
                agent.log_path().display(),
                agent.log_tail(10)
            );
        }
    }
}

/// Wait (bounded) until the agent has handed `n` tasks to its pending queue, so its requests for the last tasks
/// are counted too.
async fn wait_handed_over(clearml: &Clearml, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let queues = clearml
            .client()
            .queues_get_all(&clearml_api::QueuesGetAll {
                name: Some("^k8s_scheduler$".into()),
                search_hidden: true,
                ..Default::default()
            })
            .await
            .unwrap_or_default();
        if queues.iter().map(|q| q.entries.len()).sum::<usize>() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "bench-agent: not every task reached the pending queue within 30 s; counting what was sent"
    );
}
