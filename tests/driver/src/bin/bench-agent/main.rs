//! `just bench-agent`: the real agent's figures (BENCHMARKS.md, "The agent"). 1,000 tasks over 10 queues in the
//! ClearML emulator, `clearml-k8s-agent run` with the default chain on every queue against the real kube-apiserver
//! and kubelet-sim: a warm-up burst (1,000 at once), then pairs (seven by default) of three sides each, the
//! default chain, `--no-policies` and a plain kube-rs loop creating the warm-up's pods at the same concurrency, each
//! on a control plane of its own, taking turns in chunks ([`sides`]); the pair with the median policy cost is
//! reported in full. Then pairs of plain loops on the median pair's pods (the control plane's share of the policy
//! cost); an idle agent's request rate and enqueue-to-pod latency; enqueue-to-pod while busy. Loopback only,
//! bounded in time (every wait has a deadline). Prints a Markdown report and writes it to `--out`.

mod sides;
mod variants;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use driver::bench::{
    Burst, Idle, PairCost, Plain, Runs, Shape, control_plane_share, every_pair_lines, load_average,
    median_index, percentile_text, report, values_yaml,
};
use driver::clearml::Clearml;
use driver::counting::{self, CountedEmulator};
use driver::pod_watch::PodWatch;
use driver::sim_process::SimSpec;
use kube::Api;
use sides::{
    AgentSide, PlainSide, Plane, Setup, Side, create_tasks, finish_all, run_interleaved, wait_pods,
};

/// Benchmark the agent.
#[derive(Parser, Clone)]
struct Args {
    /// Tasks per side of a pair (and in the warm-up burst).
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
    /// Pairs (default chain, `--no-policies`, plain loop); the policy cost is the median pair's.
    #[arg(long, default_value_t = 7)]
    pairs: usize,
    /// Chunks each side's tasks are enqueued in, the sides taking turns.
    #[arg(long, default_value_t = 4)]
    chunks: usize,
    /// Pairs of plain loops (the median pair's pods, with the chain's changes and without), for the control
    /// plane's share of the policy cost.
    #[arg(long, default_value_t = 3)]
    plain_pairs: usize,
    /// Only the warm-up, then `--pairs` rounds of the plain loop on its pods part by part: what each of the chain's
    /// changes costs the control plane.
    #[arg(long)]
    pod_variants: bool,
    /// Logs, values and the report go here.
    #[arg(long, default_value = "target/bench-agent")]
    out: PathBuf,
}

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
    driver::init_logs();
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let load_start = load_average();
    let setup = setup(&args)?;
    // A first burst with the default chain, 1,000 at once, not counted (the machine's first run: binaries and files
    // not yet in memory); its pods are what the plain loop replays.
    let mut warm_up = AgentSide::start(&setup, "warm-up", false).await?;
    settle().await;
    warm_up.chunk(args.tasks).await?;
    let warm_up = warm_up.finish().await?;
    if args.pod_variants {
        let report = variants::run(&setup, &warm_up.pods, args.pairs, args.chunks).await?;
        print!("{report}");
        let path = args.out.join("variants.md");
        std::fs::write(&path, &report).with_context(|| format!("writing {}", path.display()))?;
        return Ok(());
    }
    // One burst lasts ~2 s on a shared machine whose speed moves from second to second and minute to minute
    // (other tenants of its host): each pair's sides take turns within seconds, and the policy cost is the median
    // of several pairs.
    let mut pairs: Vec<(Burst, Burst, Plain)> = Vec::new();
    for pair in 0..args.pairs.max(1) {
        let mut sides = vec![
            Side::Agent(Box::new(
                AgentSide::start(&setup, &format!("policies-{pair}"), false).await?,
            )),
            Side::Agent(Box::new(
                AgentSide::start(&setup, &format!("no-policies-{pair}"), true).await?,
            )),
            Side::Plain(Box::new(
                PlainSide::start(&setup, &format!("plain-{pair}"), &warm_up.pods).await?,
            )),
        ];
        run_interleaved(&mut sides, pair, args.tasks, args.chunks).await?;
        pairs.push(finish_pair(sides).await?);
    }
    let costs: Vec<PairCost> = pairs
        .iter()
        .map(|(w, wo, _)| PairCost::of(w.rate, wo.rate))
        .collect();
    let of_plain: Vec<f64> = pairs.iter().map(|(w, _, p)| w.rate / p.rate).collect();
    let every_pair = every_pair_lines(&pairs);
    let median = median_index(&costs.iter().map(PairCost::cost).collect::<Vec<_>>());
    let (with, without, plain) = pairs.swap_remove(median);
    // The control plane's share of the policy cost: the median pair's pods created again by the plain loop, as
    // `--no-policies` submitted them and as the chain did (labels, resources, the provenance annotation: a larger
    // pod to store, serve and run), taking turns too.
    let mut plains = Vec::new();
    for pair in 0..args.plain_pairs {
        let mut sides = vec![
            Side::Plain(Box::new(
                PlainSide::start(&setup, &format!("plain-policies-{pair}"), &with.pods).await?,
            )),
            Side::Plain(Box::new(
                PlainSide::start(&setup, &format!("plain-no-policies-{pair}"), &without.pods)
                    .await?,
            )),
        ];
        run_interleaved(&mut sides, pair, args.tasks, args.chunks).await?;
        let (_, mut finished) = finish_all(sides).await?;
        let (Some(without), Some(with)) = (finished.pop(), finished.pop()) else {
            bail!("a plain pair without its two sides");
        };
        plains.push((with, without));
    }
    let plane = Plane::start(&setup, "idle").await?;
    let idle = idle_and_busy(&args, &setup, &plane, with.rate).await?;
    plane.stop().await?;
    let runs = Runs {
        shape: Shape {
            tasks: args.tasks,
            queues: args.queues,
            concurrency: args.concurrency,
        },
        chunks: args.chunks,
        pairs: &costs,
        of_plain: &of_plain,
        idle: &idle,
    };
    let mut report = report(&runs, &with, &without, &plain);
    report.push_str(&control_plane_share(&plains, &with.pods, &without.pods));
    report.push_str(&every_pair);
    let _ = writeln!(
        report,
        "\nThe warm-up burst (default chain, {} tasks at once, not counted; the plain loops replay its pods): {:.1} \
         tasks/s, enqueue-to-pod p50 {}, p99 {}.",
        args.tasks,
        warm_up.rate,
        percentile_text(&warm_up.latencies, 50.0),
        percentile_text(&warm_up.latencies, 99.0),
    );
    let _ = writeln!(
        report,
        "\nLoad average at the start / end: {load_start} / {} (2 vCPU shared with other work: figures move with it).",
        load_average()
    );
    print!("{report}");
    let path = args.out.join("report.md");
    std::fs::write(&path, &report).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("bench-agent: report in {}", path.display());
    Ok(())
}

/// At most 120 s until under 10% of the machine's CPU is busy (control planes and agents starting).
async fn settle() {
    let waited = driver::cpu::settle(0.10, Duration::from_secs(120)).await;
    eprintln!(
        "bench-agent: the machine settled in {:.1} s",
        waited.as_secs_f64()
    );
}

fn setup(args: &Args) -> anyhow::Result<Setup> {
    // 110 pods per node: enough nodes for one side's pods, with room.
    let nodes = (0..args.tasks.div_ceil(100) + 1)
        .map(|i| format!("name=bench-{i},cpu=1000,memory=16Ti,gpu=110"))
        .collect();
    let values = args.out.join("values.yaml");
    std::fs::write(&values, values_yaml(args.queues)).context("writing the bench values")?;
    Ok(Setup {
        agent_bin: driver::bins::agent()?,
        sim_bin: driver::bins::kubelet_sim()?,
        sim_spec: SimSpec {
            kubeconfig: PathBuf::new(),
            namespace: None,
            nodes,
            // Pods keep running: the agent tracks all of them, as with long training jobs.
            run_seconds: 1e6,
            in_pod_agent: false,
            log: PathBuf::new(),
        },
        values,
        out: args.out.clone(),
        tasks: args.tasks,
        queues: args.queues,
        concurrency: args.concurrency,
    })
}

/// A pair's three sides finished, as (default chain, `--no-policies`, plain loop).
async fn finish_pair(sides: Vec<Side>) -> anyhow::Result<(Burst, Burst, Plain)> {
    let (mut bursts, mut plains) = finish_all(sides).await?;
    match (bursts.pop(), bursts.pop(), plains.pop()) {
        (Some(without), Some(with), Some(plain)) => Ok((with, without, plain)),
        _ => bail!("a pair without its three sides"),
    }
}

/// An idle agent: its request rate, then enqueue-to-pod of single tasks; then a stream of tasks at half the
/// measured throughput (the agent is busy but keeps up): enqueue-to-pod while busy.
async fn idle_and_busy(
    args: &Args,
    setup: &Setup,
    plane: &Plane,
    burst_rate: f64,
) -> anyhow::Result<Idle> {
    eprintln!(
        "bench-agent: idle agent, {} queues, {} s",
        args.queues, args.idle_seconds
    );
    let namespace = kube_testenv::create_namespace(&plane.kube, "bench-idle").await?;
    let emulator = CountedEmulator::start().await?;
    let watch = PodWatch::start_metadata(Api::namespaced(plane.kube.clone(), &namespace));
    watch.wait_synced().await;
    let mut agent = sides::start_agent(setup, plane, "idle", &namespace, &emulator, false).await?;
    let clearml = Clearml::new(&emulator.driver_url)?;
    let tasks = create_tasks(
        &clearml,
        args.queues,
        args.idle_samples + args.busy_tasks,
        "idle",
    )
    .await?;
    // Start-up calls (login, queues, worker registration) are over once the agent is ready; one poll interval
    // more and the agent is in its idle loop.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = emulator.counts.snapshot();
    let window_start = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.idle_seconds)).await;
    let window = window_start.elapsed();
    let requests = counting::delta(&before, &emulator.counts.snapshot());
    let total: u64 = requests.iter().map(|(_, n)| n).sum();

    eprintln!(
        "bench-agent: enqueue-to-pod on the idle agent, {} samples",
        args.idle_samples
    );
    let mut idle_latencies = Vec::new();
    for (k, (id, queue)) in tasks[..args.idle_samples].iter().enumerate() {
        // Spread the enqueue times over the poll interval (1 s by default), so the samples see every phase of
        // the agent's idle wait rather than one.
        tokio::time::sleep(Duration::from_millis(
            1000 + 1000 * k as u64 / args.idle_samples as u64,
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
        args.busy_tasks
    );
    let stream = &tasks[args.idle_samples..];
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
    Ok(Idle {
        requests_per_second: total as f64 / window.as_secs_f64(),
        window,
        requests,
        idle_latencies,
        busy_rate,
        busy_latencies,
    })
}
