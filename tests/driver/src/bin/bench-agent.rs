//! `just bench-agent`: the real agent's figures (BENCHMARKS.md, "The agent"). 1,000 tasks over 10 queues in the
//! ClearML emulator, `clearml-k8s-agent run` with the default chain on every queue against the real kube-apiserver
//! and kubelet-sim: a warm-up burst, then pairs with the same run under `--no-policies` (seven by default,
//! alternating which runs first; the pair with the median policy cost is reported in full); a plain kube-rs loop
//! creating the warm-up burst's pods at the same concurrency, and pairs of it on the median pair's pods (the control
//! plane's share of the policy cost); an idle agent's request rate and enqueue-to-pod latency; enqueue-to-pod while
//! busy. Every run has a control plane and a kubelet-sim of its own. Loopback only, bounded in time (every wait has
//! a deadline). Prints a Markdown report and writes it to `--out`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use driver::agent_process::{AgentProcess, AgentSpec};
use driver::bench::{
    Burst, Idle, PairCost, Plain, Shape, alternating, as_submitted, control_plane_share,
    every_pair_lines, load_average, median_index, policy_seconds, report, run_name, values_yaml,
};
use driver::clearml::{Clearml, NewTask};
use driver::counting::{self, CountedEmulator};
use driver::cpu::CpuSnapshot;
use driver::pod_watch::PodWatch;
use driver::sim_process::{SimProcess, SimSpec};
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::core::PartialObjectMeta;

/// Benchmark the agent.
#[derive(Parser, Clone)]
struct Args {
    /// Tasks in the throughput runs.
    #[arg(long, default_value_t = 1000)]
    tasks: usize,
    /// Queues the tasks are spread over.
    #[arg(long, default_value_t = 10)]
    queues: usize,
    /// The agent's --max-in-flight, and the plain loop's concurrency.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// How long the idle agent's requests are counted.
    #[arg(long, default_value_t = 30)]
    idle_seconds: u64,
    /// Enqueue-to-pod samples on the idle agent.
    #[arg(long, default_value_t = 10)]
    idle_samples: usize,
    /// Tasks streamed to measure enqueue-to-pod while busy.
    #[arg(long, default_value_t = 200)]
    busy_tasks: usize,
    /// Pairs of throughput runs (default chain, `--no-policies`), alternating which goes first; the policy cost is
    /// the median pair's.
    #[arg(long, default_value_t = 7)]
    pairs: usize,
    /// Pairs of plain loops (the median pair's pods, with the chain's changes and without), for the control
    /// plane's share of the policy cost.
    #[arg(long, default_value_t = 3)]
    plain_pairs: usize,
    /// Logs, values and the report go here.
    #[arg(long, default_value = "target/bench-agent")]
    out: PathBuf,
}

/// Every wait in a run gives up after this (keeps `just bench` bounded when something is broken).
const PATIENCE: Duration = Duration::from_secs(300);
/// A run whose pod count has not moved for this long is stuck: give up rather than wait out [`PATIENCE`].
const STALL: Duration = Duration::from_secs(30);

/// The driver says itself what goes wrong; kube's client logs every refused probe of the starting apiserver.
const QUIET_LOGS: &str = "warn,kube_client=off";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench-agent: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| QUIET_LOGS.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let load_start = load_average();
    let mut bench = Bench::start(args.clone()).await?;
    // Each run starts on a quiet machine with a control plane and a kubelet-sim of its own (`fresh_start`): what
    // the previous run left them to do, and the state it left them in, must not be charged to the next.
    // A first burst with the default chain, not counted (the machine's first run: binaries and files not yet in
    // memory); its pods are what the plain loop replays.
    bench.start_sim("warm-up").await?;
    let warm_up = bench.burst("warm-up", false).await?;
    bench.fresh_start("plain").await?;
    let plain = bench.plain_loop(&warm_up.pods).await?;
    // One burst lasts ~2 s on a shared machine whose speed moves from minute to minute (other tenants of its
    // host), so a single pair moves by tens of points: the policy cost is the median of several pairs, each
    // alternating which run goes first.
    let mut pairs = alternating(&mut bench, args.pairs, async |bench, pair, no_policies| {
        bench
            .measured(&run_name("", pair, no_policies), no_policies)
            .await
    })
    .await?;
    let costs: Vec<PairCost> = pairs
        .iter()
        .map(|(w, wo)| PairCost::of(w.rate, wo.rate))
        .collect();
    let every_pair = every_pair_lines(&pairs);
    let median = median_index(&costs.iter().map(PairCost::cost).collect::<Vec<_>>());
    let (with, without) = pairs.swap_remove(median);
    // The control plane's share of the policy cost: the median pair's pods created again by the plain loop, as
    // `--no-policies` submitted them and as the chain did (labels, resources, the provenance annotation: a larger
    // pod to store, serve and run), in alternating pairs too.
    let plains = alternating(
        &mut bench,
        args.plain_pairs,
        async |bench, pair, no_policies| {
            bench
                .fresh_start(&run_name("plain-", pair, no_policies))
                .await?;
            bench
                .plain_loop(if no_policies {
                    &without.pods
                } else {
                    &with.pods
                })
                .await
        },
    )
    .await?;
    bench.fresh_start("idle").await?;
    let idle = bench.idle_and_busy(with.rate).await?;
    let shape = Shape {
        tasks: args.tasks,
        queues: args.queues,
        concurrency: args.concurrency,
    };
    let mut report = report(&shape, &with, &without, &plain, &idle, &costs);
    report.push_str(&control_plane_share(&plains, &with.pods, &without.pods));
    report.push_str(&every_pair);
    let _ = writeln!(
        report,
        "\nThe warm-up burst (default chain, not counted; the plain loop replays its pods): {:.1} tasks/s.",
        warm_up.rate
    );
    let _ = writeln!(
        report,
        "\nLoad average at the start / end: {load_start} / {} (2 vCPU shared with other work: figures move with it).",
        load_average()
    );
    print!("{report}");
    let path = args.out.join("report.md");
    std::fs::write(&path, &report).with_context(|| format!("writing {}", path.display()))?;
    if let Some(sim) = bench.sim.take() {
        sim.stop(Duration::from_secs(10)).await?;
    }
    eprintln!("bench-agent: report in {}", path.display());
    Ok(())
}

/// What every run needs: its own control plane and kubelet-sim ([`Bench::fresh_start`]), the binaries, the values.
struct Bench {
    args: Args,
    env: kube_testenv::TestEnv,
    kube: kube::Client,
    sim: Option<SimProcess>,
    sim_bin: PathBuf,
    sim_spec: SimSpec,
    agent_bin: PathBuf,
    values: PathBuf,
}

impl Bench {
    async fn start(args: Args) -> anyhow::Result<Self> {
        let agent_bin = driver::bins::agent()?;
        let sim_bin = driver::bins::kubelet_sim()?;
        let (env, kube) = driver::control_plane()
            .await
            .context("starting kube-apiserver + etcd")?;
        // 110 pods per node: enough nodes for one run's pods, with room.
        let nodes = (0..args.tasks.div_ceil(100) + 1)
            .map(|i| format!("name=bench-{i},cpu=1000,memory=16Ti,gpu=110"))
            .collect();
        let sim_spec = SimSpec {
            kubeconfig: env.kubeconfig_path().to_path_buf(),
            namespace: None,
            nodes,
            // Pods keep running: the agent tracks all of them, as with long training jobs.
            run_seconds: 1e6,
            in_pod_agent: false,
            log: args.out.join("kubelet-sim.log"),
        };
        let values = args.out.join("values.yaml");
        std::fs::write(&values, values_yaml(args.queues)).context("writing the bench values")?;
        Ok(Self {
            args,
            env,
            kube,
            sim: None,
            sim_bin,
            sim_spec,
            agent_bin,
            values,
        })
    }

    /// [`Self::fresh_start`], then [`Self::burst`].
    async fn measured(&mut self, name: &str, no_policies: bool) -> anyhow::Result<Burst> {
        self.fresh_start(name).await?;
        self.burst(name, no_policies).await
    }

    /// A new control plane and kubelet-sim for the next run, then a quiet machine. Runs on one long-lived control
    /// plane did not see the same one: the last kubelet-sim may still be minutes behind on the previous run's pods,
    /// the API server's heap and etcd's history grow run after run, and etcd's periodic compaction lands on
    /// whichever run is under way (on one control plane, the same pods by the plain loop went 771, then 786, then
    /// 561 pods/s; the `--no-policies` bursts 484, 344, 610 tasks/s).
    async fn fresh_start(&mut self, run: &str) -> anyhow::Result<()> {
        if let Some(old) = self.sim.take() {
            old.stop(Duration::from_secs(10)).await?;
        }
        self.env.stop();
        eprintln!("bench-agent: run `{run}`: starting kube-apiserver + etcd");
        (self.env, self.kube) = driver::control_plane()
            .await
            .context("starting kube-apiserver + etcd")?;
        self.start_sim(run).await
    }

    /// Start kubelet-sim on the current control plane, then wait for a quiet machine.
    async fn start_sim(&mut self, run: &str) -> anyhow::Result<()> {
        let spec = SimSpec {
            kubeconfig: self.env.kubeconfig_path().to_path_buf(),
            log: self.args.out.join(format!("kubelet-sim-{run}.log")),
            ..self.sim_spec.clone()
        };
        self.sim = Some(
            SimProcess::start(&self.sim_bin, &spec, &self.kube, Duration::from_secs(30)).await?,
        );
        // At most 120 s until under 10% of the machine's CPU is busy.
        let waited = driver::cpu::settle(0.10, Duration::from_secs(120)).await;
        eprintln!(
            "bench-agent: the machine settled in {:.1} s",
            waited.as_secs_f64()
        );
        Ok(())
    }

    fn queue_names(&self) -> Vec<String> {
        (0..self.args.queues)
            .map(|i| format!("bench-{i}"))
            .collect()
    }

    async fn start_agent(
        &self,
        name: &str,
        namespace: &str,
        emulator: &CountedEmulator,
        no_policies: bool,
    ) -> anyhow::Result<AgentProcess> {
        Ok(AgentProcess::start(
            &self.agent_bin,
            &AgentSpec {
                config: self.values.clone(),
                namespace: namespace.into(),
                instance: format!("bench-{name}"),
                kubeconfig: self.env.kubeconfig_path().to_path_buf(),
                clearml_url: emulator.agent_url.clone(),
                max_in_flight: Some(self.args.concurrency),
                no_policies,
                log: self.args.out.join(format!("agent-{name}.log")),
            },
            Duration::from_secs(120),
        )
        .await?)
    }

    /// Create `n` tasks spread over the queues: `(task id, queue id)`.
    async fn create_tasks(
        &self,
        clearml: &Clearml,
        n: usize,
        prefix: &str,
    ) -> anyhow::Result<Vec<(String, String)>> {
        let project = clearml.project("bench").await?;
        let mut queue_ids = Vec::new();
        for name in self.queue_names() {
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

    /// 1,000 tasks enqueued at once on a ready agent; until every pod exists and every task is handed over.
    async fn burst(&self, name: &str, no_policies: bool) -> anyhow::Result<Burst> {
        eprintln!(
            "bench-agent: run `{name}`: {} tasks over {} queues",
            self.args.tasks, self.args.queues
        );
        let namespace =
            kube_testenv::create_namespace(&self.kube, &format!("bench-{name}")).await?;
        let pods_api = Api::<Pod>::namespaced(self.kube.clone(), &namespace);
        let emulator = CountedEmulator::start().await?;
        let watch = PodWatch::start_metadata(Api::namespaced(self.kube.clone(), &namespace));
        watch.wait_synced().await;
        let mut agent = self
            .start_agent(name, &namespace, &emulator, no_policies)
            .await?;
        let rss_ready = agent.sample()?.rss_bytes;
        let clearml = Clearml::new(&emulator.driver_url)?;
        let tasks = self.create_tasks(&clearml, self.args.tasks, name).await?;

        let before = emulator.counts.snapshot();
        let cpu_before = agent.sample()?.cpu;
        let machine_before = CpuSnapshot::take(Some(agent.pid()));
        emulator.counts.restart_firsts();
        let enqueued = enqueue_all(&clearml, &tasks).await?;
        wait_pods(&watch, &mut agent, tasks.len()).await?;
        let seen = watch.all();
        let first_pop = emulator
            .counts
            .first("queues.get_next_task")
            .context("the agent created pods without calling queues.get_next_task")?;
        let last_pod = seen
            .values()
            .map(|p| p.first_seen)
            .max()
            .context("no pods")?;
        wait_handed_over(&clearml, tasks.len()).await;
        let after = emulator.counts.snapshot();
        let sample = agent.sample()?;
        let machine_cpu =
            CpuSnapshot::take(Some(agent.pid())).per_task_line(&machine_before, tasks.len());
        let metrics = agent.metrics().await.unwrap_or_default();
        std::fs::write(self.args.out.join(format!("metrics-{name}.txt")), &metrics)?;
        let status = agent.stop(Duration::from_secs(60)).await?;
        if !status.success() {
            bail!("the agent exited with {status} after SIGTERM in run {name}");
        }
        // The pods as they are, for the plain loop: listed once, after the measured window (the watch sees only
        // their metadata).
        let pods = pods_api
            .list(&ListParams::default())
            .await
            .context("listing the run's pods")?
            .items;

        let latencies = tasks
            .iter()
            .zip(&enqueued)
            .filter_map(|((id, _), at)| {
                Some(
                    seen.get(&driver::pod_name(id))?
                        .first_seen
                        .saturating_duration_since(*at),
                )
            })
            .collect();
        let wall = last_pod.saturating_duration_since(first_pop);
        let requests = counting::delta(&before, &after);
        let requests_total = requests.iter().map(|(_, n)| n).sum();
        let result = Burst {
            rate: tasks.len() as f64 / wall.as_secs_f64(),
            wall,
            latencies,
            cpu_per_task: (sample.cpu.saturating_sub(cpu_before)) / tasks.len() as u32,
            rss_ready,
            rss_end: sample.rss_bytes,
            peak_rss: sample.peak_rss_bytes,
            requests,
            requests_total,
            policy_seconds: policy_seconds(&metrics),
            pods,
            machine_cpu,
        };
        drop(watch);
        delete_pods(&pods_api).await;
        Ok(result)
    }

    /// The same pods, created by a plain kube-rs loop at the same concurrency: what the apiserver allows here.
    async fn plain_loop(&self, pods: &[Pod]) -> anyhow::Result<Plain> {
        eprintln!(
            "bench-agent: plain kube-rs loop: {} pods, {} at a time",
            pods.len(),
            self.args.concurrency
        );
        let namespace = kube_testenv::create_namespace(&self.kube, "bench-plain").await?;
        let api = Api::<Pod>::namespaced(self.kube.clone(), &namespace);
        let fresh: Vec<Pod> = pods.iter().map(|p| as_submitted(p, &namespace)).collect();
        let machine_before = CpuSnapshot::take(None);
        let started = Instant::now();
        let results: Vec<Result<Duration, kube::Error>> = futures::stream::iter(&fresh)
            .map(|pod| {
                let api = &api;
                async move {
                    let t = Instant::now();
                    api.create(&PostParams::default(), pod).await?;
                    Ok(t.elapsed())
                }
            })
            .buffer_unordered(self.args.concurrency)
            .collect()
            .await;
        let wall = started.elapsed();
        let machine_cpu = CpuSnapshot::take(None).per_task_line(&machine_before, fresh.len());
        let latencies = results.into_iter().collect::<Result<Vec<_>, _>>()?;
        delete_pods(&api).await;
        Ok(Plain {
            rate: latencies.len() as f64 / wall.as_secs_f64(),
            latencies,
            machine_cpu,
        })
    }

    /// An idle agent: its request rate, then enqueue-to-pod of single tasks; then a stream of tasks at half the
    /// measured throughput (the agent is busy but keeps up): enqueue-to-pod while busy.
    async fn idle_and_busy(&self, burst_rate: f64) -> anyhow::Result<Idle> {
        eprintln!(
            "bench-agent: idle agent, {} queues, {} s",
            self.args.queues, self.args.idle_seconds
        );
        let namespace = kube_testenv::create_namespace(&self.kube, "bench-idle").await?;
        let pods_api = Api::<Pod>::namespaced(self.kube.clone(), &namespace);
        let emulator = CountedEmulator::start().await?;
        let watch = PodWatch::start_metadata(Api::namespaced(self.kube.clone(), &namespace));
        watch.wait_synced().await;
        let mut agent = self
            .start_agent("idle", &namespace, &emulator, false)
            .await?;
        let clearml = Clearml::new(&emulator.driver_url)?;
        let tasks = self
            .create_tasks(
                &clearml,
                self.args.idle_samples + self.args.busy_tasks,
                "idle",
            )
            .await?;
        // Start-up calls (login, queues, worker registration) are over once the agent is ready; one poll interval
        // more and the agent is in its idle loop.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = emulator.counts.snapshot();
        let window_start = Instant::now();
        tokio::time::sleep(Duration::from_secs(self.args.idle_seconds)).await;
        let window = window_start.elapsed();
        let requests = counting::delta(&before, &emulator.counts.snapshot());
        let total: u64 = requests.iter().map(|(_, n)| n).sum();

        eprintln!(
            "bench-agent: enqueue-to-pod on the idle agent, {} samples",
            self.args.idle_samples
        );
        let mut idle_latencies = Vec::new();
        for (k, (id, queue)) in tasks[..self.args.idle_samples].iter().enumerate() {
            // Spread the enqueue times over the poll interval (1 s by default), so the samples see every phase of
            // the agent's idle wait rather than one.
            tokio::time::sleep(Duration::from_millis(
                1000 + 1000 * k as u64 / self.args.idle_samples as u64,
            ))
            .await;
            let at = Instant::now();
            clearml.enqueue(id, queue).await?;
            wait_pods(&watch, &mut agent, k + 1).await?;
            let pod = watch.get(&driver::pod_name(id)).context("pod seen")?;
            idle_latencies.push(pod.first_seen.saturating_duration_since(at));
        }

        let busy_rate = (burst_rate / 2.0).max(5.0);
        eprintln!(
            "bench-agent: {} tasks streamed at {busy_rate:.0}/s",
            self.args.busy_tasks
        );
        let stream = &tasks[self.args.idle_samples..];
        let clearml = Arc::new(clearml);
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / busy_rate));
        let mut sends = Vec::new();
        for (id, queue) in stream {
            ticker.tick().await;
            let (clearml, id, queue) = (clearml.clone(), id.clone(), queue.clone());
            sends.push(tokio::spawn(async move {
                let at = Instant::now();
                clearml.enqueue(&id, &queue).await.map(|()| at)
            }));
        }
        let mut enqueued = Vec::new();
        for send in sends {
            enqueued.push(send.await??);
        }
        wait_pods(&watch, &mut agent, tasks.len()).await?;
        let busy_latencies = stream
            .iter()
            .zip(&enqueued)
            .filter_map(|((id, _), at)| {
                Some(
                    watch
                        .get(&driver::pod_name(id))?
                        .first_seen
                        .saturating_duration_since(*at),
                )
            })
            .collect();
        let status = agent.stop(Duration::from_secs(60)).await?;
        if !status.success() {
            bail!("the idle agent exited with {status} after SIGTERM");
        }
        drop(watch);
        delete_pods(&pods_api).await;
        Ok(Idle {
            requests_per_second: total as f64 / window.as_secs_f64(),
            window,
            requests,
            idle_latencies,
            busy_rate,
            busy_latencies,
        })
    }
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
async fn wait_pods(
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

/// Wait (bounded) until the agent has handed every task to its pending queue, so its requests for the last tasks
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

/// Delete a run's pods at once (grace 0: kubelet-sim finishes them) so the next run starts on an empty cluster.
async fn delete_pods(api: &Api<Pod>) {
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    if let Err(err) = api.delete_collection(&params, &ListParams::default()).await {
        eprintln!("bench-agent: deleting the run's pods: {err}");
    }
}
