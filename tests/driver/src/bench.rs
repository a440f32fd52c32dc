//! The agent benchmark's figures and report (`src/bin/bench-agent/` runs it): what each run measured, the
//! Markdown report with every target marked met or not, the values the agent runs with, and the pure helpers
//! (metrics parsing, pods as submitted).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use crate::stats::{human, mib, percentile};

/// The policy chain every queue runs (the order BENCHMARKS.md calls "the default chain").
pub const CHAIN: &str = "template-overrides → gpu-sizing → team-labels → guardrails";

/// The size of a benchmark: tasks per burst, queues, the agent's `--max-in-flight` (and the plain loop's
/// concurrency).
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Tasks per burst.
    pub tasks: usize,
    /// Queues the tasks are spread over.
    pub queues: usize,
    /// Submissions in flight (agent) and creates in flight (plain loop).
    pub concurrency: usize,
}

/// What a throughput run measured.
pub struct Burst {
    /// Tasks per second: tasks / (first `queues.get_next_task` → last pod seen).
    pub rate: f64,
    /// That interval.
    pub wall: Duration,
    /// Enqueue-to-pod latency of each task.
    pub latencies: Vec<Duration>,
    /// Agent CPU (utime + stime) over the burst, per task.
    pub cpu_per_task: Duration,
    /// Agent RSS in bytes right after `/readyz`.
    pub rss_ready: u64,
    /// Agent RSS in bytes once every pod exists.
    pub rss_end: u64,
    /// Agent peak RSS (`VmHWM`) in bytes.
    pub peak_rss: u64,
    /// The agent's ClearML requests by endpoint.
    pub requests: Vec<(String, u64)>,
    /// Their sum.
    pub requests_total: u64,
    /// Per policy: (sum of seconds, count) from `clearml_agent_policy_evaluation_seconds`.
    pub policy_seconds: BTreeMap<String, (f64, f64)>,
    /// The pods the agent created (replayed by the plain loop).
    pub pods: Vec<Pod>,
    /// The machine's CPU per task over the burst, split by part ([`crate::cpu::CpuSnapshot::per_task_line`]).
    pub machine_cpu: String,
}

/// The plain kube-rs loop.
pub struct Plain {
    /// Pods created per second.
    pub rate: f64,
    /// Each create's latency.
    pub latencies: Vec<Duration>,
    /// The machine's CPU per pod over the loop, split by part.
    pub machine_cpu: String,
}

/// The idle agent and the busy stream.
pub struct Idle {
    /// ClearML requests per second of the idle agent.
    pub requests_per_second: f64,
    /// How long the idle agent was watched.
    pub window: Duration,
    /// Its requests by endpoint.
    pub requests: Vec<(String, u64)>,
    /// Enqueue-to-pod latency of single tasks sent to the idle agent.
    pub idle_latencies: Vec<Duration>,
    /// Tasks per second of the busy stream (half the burst rate).
    pub busy_rate: f64,
    /// Enqueue-to-pod latency in the busy stream.
    pub busy_latencies: Vec<Duration>,
}

/// The pod as the agent submitted it, for another namespace: no status, no server-set metadata, unbound.
pub fn as_submitted(pod: &Pod, namespace: &str) -> Pod {
    let mut fresh = Pod::default();
    fresh.metadata.name = pod.metadata.name.clone();
    fresh.metadata.namespace = Some(namespace.into());
    fresh.metadata.labels = pod.metadata.labels.clone();
    fresh.metadata.annotations = pod.metadata.annotations.clone();
    fresh.spec = pod.spec.clone();
    if let Some(spec) = fresh.spec.as_mut() {
        spec.node_name = None;
    }
    fresh
}

/// The mean size of `pods` as JSON, as submitted ([`as_submitted`]): what the API server stores and serves.
pub fn mean_submitted_bytes(pods: &[Pod]) -> usize {
    let total: usize = pods
        .iter()
        .filter_map(|p| serde_json::to_vec(&as_submitted(p, "bench")).ok())
        .map(|json| json.len())
        .sum();
    total / pods.len().max(1)
}

/// `(sum seconds, count)` per policy from the agent's per-policy histogram
/// (`clearml_agent_policy_evaluation_seconds{policy=...}`).
pub fn policy_seconds(metrics: &str) -> BTreeMap<String, (f64, f64)> {
    let mut out: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for line in metrics.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let Some(policy) = series
            .split("policy=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
        else {
            continue;
        };
        let entry = out.entry(policy.to_string()).or_default();
        if series.contains("_seconds_sum{") {
            entry.0 = value;
        } else if series.contains("_seconds_count{") {
            entry.1 = value;
        }
    }
    out.retain(|_, (_, count)| *count > 0.0);
    out
}

/// The bench's values: `queues` queues, each with the default chain after its own `templateOverrides`.
pub fn values_yaml(queues: usize) -> String {
    let mut out = String::from(
        "# Written by bench-agent: the default chain on every queue.\n\
         agentk8sglue:\n  apiServerUrlReference: http://clearml-apiserver:8008\n  createQueues: true\n  \
         basePodTemplate:\n    labels: {team: red}\n    resources: {limits: {memory: 1Gi}}\n  queues:\n",
    );
    for i in 0..queues {
        let _ = write!(
            out,
            "    bench-{i}:\n      templateOverrides: {{labels: {{team: team-{i}}}, resources: {{limits: {{memory: 2Gi}}}}}}\n      \
             policies:\n        \
             - {{plugin: gpu-sizing, config: {{gpus: 1, maxGpus: 4, cpuPerGpu: 4, memoryPerGpu: 16Gi}}}}\n        \
             - {{plugin: team-labels, config: {{userLabel: clearml.ai/user, projectLabel: clearml.ai/project}}}}\n        \
             - {{plugin: guardrails, config: {{requireLimits: [memory], allowedRegistries: [docker.io/library]}}}}\n"
        );
    }
    out
}

/// The `pct` percentile of `samples` for a report (`-` when there are none).
pub fn percentile_text(samples: &[Duration], pct: f64) -> String {
    percentile(samples, pct).map_or("-".into(), human)
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "**not met**" }
}

/// The pairs' spread beyond which their median cannot judge a 10-point target: their interquartile range, in
/// points of policy cost.
const RESOLVABLE_SPREAD: f64 = 0.10;

/// The interquartile range of `values` (sorted `[3n/4] - [n/4]`; 0 for fewer than two).
pub fn spread(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match (sorted.get(n / 4), sorted.get(3 * n / 4)) {
        (Some(low), Some(high)) if n >= 2 => high - low,
        _ => 0.0,
    }
}

/// The policy cost's verdict: met or not when the pairs agree, unresolved when they spread too far to tell.
fn cost_verdict(cost: f64, spread: f64) -> &'static str {
    if spread > RESOLVABLE_SPREAD {
        "**not resolved**: the pairs spread too far (machine noise)"
    } else {
        met(cost <= 0.10)
    }
}

/// What the default chain costs in one pair of runs: the fraction of the `--no-policies` rate it loses.
#[derive(Debug, Clone, Copy)]
pub struct PairCost {
    /// The default chain's rate.
    pub with_rate: f64,
    /// The `--no-policies` rate.
    pub without_rate: f64,
}

impl PairCost {
    /// The cost of a pair of runs, given their rates.
    pub fn of(with_rate: f64, without_rate: f64) -> Self {
        Self {
            with_rate,
            without_rate,
        }
    }

    /// `1 - with / without`.
    pub fn cost(&self) -> f64 {
        1.0 - self.with_rate / self.without_rate
    }
}

impl std::fmt::Display for PairCost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1}% ({:.0} / {:.0}/s)",
            100.0 * self.cost(),
            self.with_rate,
            self.without_rate
        )
    }
}

/// The order of one pair's runs: `chunks` rounds, each running every one of `sides` sides once, forwards in even
/// rounds and backwards in odd ones (A B C, C B A, A B C, ...), so a drift of the machine's speed that is linear over
/// the pair's rounds lands on every side alike; pair `pair` starts from side `pair mod sides`, so no side is always
/// first. Each entry is a side's index.
pub fn interleaving(pair: usize, sides: usize, chunks: usize) -> Vec<usize> {
    let forwards: Vec<usize> = (0..sides).map(|i| (i + pair) % sides.max(1)).collect();
    (0..chunks)
        .flat_map(|round| {
            let mut order = forwards.clone();
            if round % 2 == 1 {
                order.reverse();
            }
            order
        })
        .collect()
}

/// One line per pair of bursts, in the order they ran: each side's rate and the machine's CPU per task.
pub fn every_pair_lines(pairs: &[(Burst, Burst, Plain)]) -> String {
    let mut out = String::from("\nEvery pair (in the order they ran), CPU per task:\n");
    for (pair, (with, without, plain)) in pairs.iter().enumerate() {
        let _ = writeln!(
            out,
            "- pair {pair}: default chain {:.1} tasks/s ({}); `--no-policies` {:.1} tasks/s ({}); plain loop {:.1} \
             pods/s ({})",
            with.rate,
            with.machine_cpu,
            without.rate,
            without.machine_cpu,
            plain.rate,
            plain.machine_cpu
        );
    }
    out
}

/// The plain loop's pairs on the chain's pods and the `--no-policies` ones: how much of the policy cost is the
/// control plane's.
pub fn control_plane_share(plains: &[(Plain, Plain)], with: &[Pod], without: &[Pod]) -> String {
    let pair_costs: Vec<PairCost> = plains
        .iter()
        .map(|(w, wo)| PairCost::of(w.rate, wo.rate))
        .collect();
    let costs: Vec<f64> = pair_costs.iter().map(PairCost::cost).collect();
    let median = median_index(&costs);
    let (Some((median_with, median_without)), Some(median_cost)) =
        (plains.get(median), costs.get(median))
    else {
        return String::new();
    };
    let each: Vec<String> = pair_costs.iter().map(ToString::to_string).collect();
    format!(
        "\nThe control plane's share: the median pair's pods created again by the plain loop, as the default chain \
         submitted them ({} B as JSON) and as `--no-policies` did ({} B), in {} interleaved pairs: {} slower, median \
         {:.1}%. CPU per pod in the median pair: {}; {}.\n",
        mean_submitted_bytes(with),
        mean_submitted_bytes(without),
        plains.len(),
        each.join(", "),
        100.0 * median_cost,
        median_with.machine_cpu,
        median_without.machine_cpu,
    )
}

/// The index of the median of `values` (the lower middle for an even count; 0 when empty).
pub fn median_index(values: &[f64]) -> usize {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    order
        .get(values.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0)
}

/// What a report covers besides the median pair's runs.
pub struct Runs<'a> {
    /// The size of each run.
    pub shape: Shape,
    /// Chunks each side's tasks were enqueued in.
    pub chunks: usize,
    /// The policy cost of every pair, in the order they ran.
    pub pairs: &'a [PairCost],
    /// The default chain's rate over the plain loop's in every pair.
    pub of_plain: &'a [f64],
    /// The idle agent and the busy stream.
    pub idle: &'a Idle,
}

/// The Markdown report: the figures, each target and whether it is met. `with`, `without` and `plain` are the
/// median pair's runs.
pub fn report(runs: &Runs<'_>, with: &Burst, without: &Burst, plain: &Plain) -> String {
    let (shape, pairs, idle) = (&runs.shape, runs.pairs, runs.idle);
    let mut r = String::new();
    let tasks = shape.tasks as f64;
    let per_task = with.requests_total as f64 / tasks;
    let cost = PairCost::of(with.rate, without.rate).cost();
    let cost_spread = spread(&pairs.iter().map(PairCost::cost).collect::<Vec<_>>());
    let costs: Vec<String> = pairs
        .iter()
        .map(|c| format!("{:.1}%", 100.0 * c.cost()))
        .collect();
    let detail: Vec<String> = pairs.iter().map(ToString::to_string).collect();
    let idle_p50 = percentile(&idle.idle_latencies, 50.0).unwrap_or_default();
    let busy_p50 = percentile(&idle.busy_latencies, 50.0).unwrap_or_default();
    let _ = writeln!(
        r,
        "## bench-agent: {} tasks over {} queues, concurrency {}\n",
        shape.tasks, shape.queues, shape.concurrency
    );
    let of_plain_median = runs
        .of_plain
        .get(median_index(runs.of_plain))
        .copied()
        .unwrap_or_default();
    let of_plain: Vec<String> = runs
        .of_plain
        .iter()
        .map(|f| format!("{:.0}%", 100.0 * f))
        .collect();
    let _ = writeln!(
        r,
        "Policy cost in each of {} pairs after a warm-up burst (default chain / `--no-policies`; each pair's agents and \
         its plain loop on control planes of their own, all three ready before the first task, their tasks enqueued \
         in {} chunks interleaved A B C, C B A, ...): {}. The median pair:\n",
        pairs.len(),
        runs.chunks,
        detail.join(", ")
    );
    let _ = writeln!(
        r,
        "| run | tasks/s (first pop → last pod) | wall | enqueue-to-pod p50 | p99 | agent CPU / task | RSS ready → with all pods | peak RSS | ClearML requests / task |"
    );
    let _ = writeln!(r, "|---|---|---|---|---|---|---|---|---|");
    for (name, b) in [
        (format!("default chain ({CHAIN})"), with),
        ("`--no-policies`".to_string(), without),
    ] {
        let _ = writeln!(
            r,
            "| {name} | {:.1} | {:.2} s | {} | {} | {} | {} → {} | {} | {:.2} |",
            b.rate,
            b.wall.as_secs_f64(),
            percentile_text(&b.latencies, 50.0),
            percentile_text(&b.latencies, 99.0),
            human(b.cpu_per_task),
            mib(b.rss_ready),
            mib(b.rss_end),
            mib(b.peak_rss),
            b.requests_total as f64 / tasks,
        );
    }
    let _ = writeln!(
        r,
        "| plain kube-rs loop, the warm-up burst's pods | {:.1} | {:.2} s | create p50 {} | p99 {} | | | | |\n",
        plain.rate,
        plain.latencies.len() as f64 / plain.rate,
        percentile_text(&plain.latencies, 50.0),
        percentile_text(&plain.latencies, 99.0),
    );
    let _ = writeln!(
        r,
        "CPU per task, whole machine (2 vCPU) and by part:\n- default chain: {}\n- `--no-policies`: {}\n- plain \
         loop (per pod): {}\n",
        with.machine_cpu, without.machine_cpu, plain.machine_cpu
    );
    let _ = writeln!(
        r,
        "Idle agent ({} queues, {:.0} s window): {:.2} ClearML requests/s ({}).",
        shape.queues,
        idle.window.as_secs_f64(),
        idle.requests_per_second,
        breakdown(&idle.requests, idle.window.as_secs_f64())
    );
    let _ = writeln!(
        r,
        "Enqueue-to-pod, idle agent at the default poll settings ({} samples): p50 {}, max {}.",
        idle.idle_latencies.len(),
        percentile_text(&idle.idle_latencies, 50.0),
        percentile_text(&idle.idle_latencies, 100.0)
    );
    let _ = writeln!(
        r,
        "Enqueue-to-pod while busy ({} tasks streamed at {:.0}/s over the queues): p50 {}, p99 {}.\n",
        idle.busy_latencies.len(),
        idle.busy_rate,
        percentile_text(&idle.busy_latencies, 50.0),
        percentile_text(&idle.busy_latencies, 99.0)
    );
    let rounds = with
        .requests
        .iter()
        .find(|(e, _)| e == "queues.get_all")
        .map_or(0, |(_, n)| *n);
    if rounds > 0 {
        let _ = writeln!(
            r,
            "Dispatch rounds (one `queues.get_all` each) in the default chain run: {rounds}, {:.1} tasks per round.",
            tasks / rounds as f64
        );
    }
    let _ = writeln!(
        r,
        "ClearML requests per task, default chain run: {}.",
        breakdown(&with.requests, tasks)
    );
    if !with.policy_seconds.is_empty() {
        let parts: Vec<String> = with
            .policy_seconds
            .iter()
            .map(|(policy, (sum, count))| {
                format!("{policy} {}", human(Duration::from_secs_f64(sum / count)))
            })
            .collect();
        let _ = writeln!(
            r,
            "Mean policy time per evaluation (agent's histogram): {}.",
            parts.join(", ")
        );
    }
    let _ = writeln!(r, "\n| target | measured | |\n|---|---|---|");
    let rows = [
        (
            "≥ 50% of the plain loop's rate",
            format!(
                "{:.0}% (median of {})",
                100.0 * of_plain_median,
                of_plain.join(", ")
            ),
            met(of_plain_median >= 0.5),
        ),
        (
            "default chain costs ≤ 10% of the rate without policies",
            format!(
                "{:.1}% (median of {}; interquartile range {:.0} points)",
                100.0 * cost,
                costs.join(", "),
                100.0 * cost_spread
            ),
            cost_verdict(cost, cost_spread),
        ),
        (
            "≤ 5 ClearML requests per task",
            format!("{per_task:.2}"),
            met(per_task <= 5.0),
        ),
        (
            "RSS ≤ 60 MB (57.2 MiB) tracking 1,000 pods",
            format!("{} (peak {})", mib(with.rss_end), mib(with.peak_rss)),
            met(with.rss_end <= 60 * 1000 * 1000),
        ),
        (
            "idle ≤ 2 ClearML requests/s",
            format!("{:.2}/s", idle.requests_per_second),
            met(idle.requests_per_second <= 2.0),
        ),
        (
            "p50 enqueue-to-pod ≤ 1 s idle",
            human(idle_p50),
            met(idle_p50 <= Duration::from_secs(1)),
        ),
        (
            "p50 enqueue-to-pod ≤ 250 ms busy",
            human(busy_p50),
            met(busy_p50 <= Duration::from_millis(250)),
        ),
    ];
    for (target, measured, verdict) in rows {
        let _ = writeln!(r, "| {target} | {measured} | {verdict} |");
    }
    r
}

/// The 1-minute load average (`/proc/loadavg`), or `?`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// `endpoint n, ...` with counts divided by `per`.
pub fn breakdown(requests: &[(String, u64)], per: f64) -> String {
    if requests.is_empty() {
        return "none".into();
    }
    requests
        .iter()
        .map(|(endpoint, n)| format!("{endpoint} {:.2}", *n as f64 / per))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every side runs once per round, forwards then backwards, and each pair starts from another side.
    #[test]
    fn pairs_interleave_their_sides() {
        assert_eq!(interleaving(0, 2, 4), [0, 1, 1, 0, 0, 1, 1, 0]);
        assert_eq!(interleaving(1, 2, 2), [1, 0, 0, 1]);
        assert_eq!(interleaving(2, 3, 2), [2, 0, 1, 1, 0, 2]);
        assert_eq!(interleaving(0, 3, 1), [0, 1, 2]);
        assert!((spread(&[0.05, -0.10, 0.08, 0.30, 0.07]) - 0.03).abs() < 1e-9);
        assert_eq!(spread(&[0.2]), 0.0);
        assert_eq!(cost_verdict(0.07, 0.04), "met");
        assert_eq!(cost_verdict(0.12, 0.04), "**not met**");
        assert!(cost_verdict(0.07, 0.40).starts_with("**not resolved**"));
        let cost = PairCost::of(450.0, 500.0);
        assert!((cost.cost() - 0.1).abs() < 1e-9);
        assert_eq!(cost.to_string(), "10.0% (450 / 500/s)");
    }

    #[test]
    fn the_median_pair() {
        assert_eq!(median_index(&[0.09, 0.02, 0.05]), 2);
        assert_eq!(median_index(&[0.01, 0.03, 0.02, 0.04]), 2);
        assert_eq!(median_index(&[0.07]), 0);
        assert_eq!(median_index(&[]), 0);
    }

    #[test]
    fn per_policy_time_from_the_histogram() {
        let metrics = "# HELP x\n\
            clearml_agent_policy_evaluation_seconds_bucket{policy=\"gpu-sizing\",le=\"0.001\"} 3\n\
            clearml_agent_policy_evaluation_seconds_sum{policy=\"gpu-sizing\"} 0.6\n\
            clearml_agent_policy_evaluation_seconds_count{policy=\"gpu-sizing\"} 2000\n\
            clearml_agent_policy_evaluation_seconds_sum{policy=\"unused\"} 0\n\
            clearml_agent_policy_evaluation_seconds_count{policy=\"unused\"} 0\n\
            clearml_agent_leader 1\n";
        let got = policy_seconds(metrics);
        assert_eq!(got.len(), 1);
        assert_eq!(got["gpu-sizing"], (0.6, 2000.0));
    }

    #[test]
    fn the_values_have_every_queue_with_the_default_chain() {
        let values: serde_yaml::Value = serde_yaml::from_str(&values_yaml(10)).unwrap();
        let queues = values["agentk8sglue"]["queues"].as_mapping().unwrap();
        assert_eq!(queues.len(), 10);
        let plugins: Vec<&str> = values["agentk8sglue"]["queues"]["bench-9"]["policies"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| p["plugin"].as_str().unwrap())
            .collect();
        assert_eq!(plugins, ["gpu-sizing", "team-labels", "guardrails"]);
    }

    #[test]
    fn a_pod_as_submitted_has_no_server_state() {
        let mut pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "clearml-id-1", "namespace": "a", "uid": "u", "resourceVersion": "7",
                         "labels": {"clearml-task-id": "1"}},
            "spec": {"nodeName": "n", "containers": [{"name": "clearml-task", "image": "i"}]},
            "status": {"phase": "Running"}
        }))
        .unwrap();
        pod = as_submitted(&pod, "b");
        assert_eq!(pod.metadata.namespace.as_deref(), Some("b"));
        assert!(
            pod.metadata.uid.is_none()
                && pod.metadata.resource_version.is_none()
                && pod.status.is_none()
        );
        assert!(pod.spec.unwrap().node_name.is_none());
        assert_eq!(pod.metadata.labels.unwrap()["clearml-task-id"], "1");
    }

    #[test]
    fn breakdowns_divide_and_keep_order() {
        let requests = vec![
            ("queues.get_next_task".to_string(), 1000),
            ("queues.get_all".to_string(), 230),
        ];
        assert_eq!(
            breakdown(&requests, 1000.0),
            "queues.get_next_task 1.00, queues.get_all 0.23"
        );
        assert_eq!(breakdown(&[], 1.0), "none");
    }
}
