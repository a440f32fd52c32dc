//! Evaluation benchmark: the Rust sample policy (labels + resources on a realistic ~3 KB pod, 2 containers, ~20 env
//! vars) evaluated in a fresh instance each time, against the same transform compiled natively, plus the time to
//! load a precompiled component from the cache. Prints percentiles; run with `just bench` (figures go to
//! BENCHMARKS.md). Built in the dev profile with optimised dependencies, like the tests, to avoid a second
//! (release) build of wasmtime.

use std::path::Path;
use std::time::{Duration, Instant};

use policy_runtime::bench::percentile;
use policy_runtime::harness::Case;
use policy_runtime::{ChainStep, EngineConfig, Limits, PolicyChain, PolicyEngine};

// The template's logic, compiled natively: the baseline the wasm evaluation is compared with.
#[allow(dead_code, unused_imports, clippy::all)]
#[path = "../../../examples/rust-policy-template/src/policy.rs"]
mod native_policy;

const ITERATIONS: usize = 5000;

fn measure(mut f: impl FnMut()) -> Vec<Duration> {
    for _ in 0..200 {
        f();
    }
    let mut samples: Vec<Duration> = (0..ITERATIONS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    samples.sort();
    samples
}

fn report(label: &str, samples: &[Duration]) -> Duration {
    let p50 = percentile(samples, 50.0);
    println!(
        "{label:<44} p50 {:>8.1} µs   p99 {:>8.1} µs   (n={})",
        p50.as_secs_f64() * 1e6,
        percentile(samples, 99.0).as_secs_f64() * 1e6,
        samples.len()
    );
    p50
}

/// The whole default chain for a GPU queue, as the agent would bind it: template-overrides, gpu-sizing,
/// team-labels, guardrails, on the same realistic pod (target: ≤ 300 µs p50 for the four steps).
fn bench_default_chain(
    engine: &PolicyEngine,
    policy_dir: &Path,
    case: &Case,
) -> anyhow::Result<()> {
    let task = policy_runtime::TaskContext::from(case.task.clone());
    let steps = [
        (
            "template-overrides",
            serde_json::json!({"templateOverrides": {"resources": {"limits": {"nvidia.com/gpu": 1}}}}),
        ),
        (
            "gpu-sizing",
            serde_json::json!({"gpus": 1, "maxGpus": 4, "cpuPerGpu": 4, "memoryPerGpu": "16Gi"}),
        ),
        (
            "team-labels",
            serde_json::json!({"labels": {"cost-center": "4711"}, "userLabel": "clearml.ai/user",
                "projectLabel": "clearml.ai/project"}),
        ),
        (
            "guardrails",
            serde_json::json!({"requireLimits": ["memory"],
                "allowedRegistries": ["nvcr.io/nvidia", "docker.io", "fluent"]}),
        ),
    ];
    let mut chain_steps = Vec::new();
    for (name, config) in steps {
        let path = policy_dir.join(format!("{name}.wasm"));
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                println!(
                    "(default chain skipped: {}: {e}; run `just plugins`)",
                    path.display()
                );
                return Ok(());
            }
        };
        chain_steps.push(ChainStep {
            policy: engine.load(name, &bytes, None, Limits::default())?,
            config_json: config.to_string(),
        });
    }
    let chain = PolicyChain::new(chain_steps);
    chain.validate_configs(Some("1xGPU"))?;
    let outcome = chain.run(&case.pod, &task, Some("1xGPU"))?;
    // Each step on the pod it really receives in the chain.
    let mut input = case.pod.clone();
    for (index, (step, provenance)) in chain.steps().iter().zip(&outcome.steps).enumerate() {
        let pod = serde_json::to_string(&input)?;
        report(
            &format!("step {} (fresh instance + transform)", provenance.policy),
            &measure(|| {
                step.policy
                    .transform(&pod, &task, &step.config_json, None)
                    .expect("step succeeds");
            }),
        );
        json_patch::patch(&mut input, &outcome.patch(index).unwrap_or_default())?;
    }
    // The four policies back to back on the same pod, without the chain's checks: the policies' own cost when
    // each starts with caches warmed by a different component.
    let pod_json = serde_json::to_string(&case.pod)?;
    report(
        "four different policies back to back",
        &measure(|| {
            for step in chain.steps() {
                step.policy
                    .transform(&pod_json, &task, &step.config_json, None)
                    .expect("step succeeds");
            }
        }),
    );
    report(
        "default chain, 4 steps + final Pod check",
        &measure(|| {
            chain
                .run(&case.pod, &task, Some("1xGPU"))
                .expect("chain succeeds");
        }),
    );
    // In the agent a chain rarely finds its code in the caches: the API server and the rest of the agent ran on the
    // same two cores since the last one. The same chain after touching more memory than the caches hold (the touch
    // is not timed), alone and per chain of four run back to back after it.
    let mut evictor = vec![0u8; EVICTION_BYTES];
    let run_chain = || {
        chain
            .run(&case.pod, &task, Some("1xGPU"))
            .expect("chain succeeds");
    };
    report(
        "default chain, caches flushed before it",
        &measure_cold(&mut evictor, 1, run_chain),
    );
    report(
        "default chain, per chain of 4 after a flush",
        &measure_cold(&mut evictor, 4, run_chain),
    );
    Ok(())
}

/// More than the caches of this machine's cores hold (L2 per core and the shared last level).
const EVICTION_BYTES: usize = 64 * 1024 * 1024;

/// Time `round` runs of `f` after writing every cache line of `evictor`, per run of `f`.
fn measure_cold(evictor: &mut [u8], round: usize, mut f: impl FnMut()) -> Vec<Duration> {
    let mut samples: Vec<Duration> = (0..ITERATIONS / 10)
        .map(|i| {
            for line in evictor.iter_mut().step_by(64) {
                *line = line.wrapping_add(i as u8);
            }
            std::hint::black_box(&mut *evictor);
            let t = Instant::now();
            for _ in 0..round {
                f();
            }
            t.elapsed() / round as u32
        })
        .collect();
    samples.sort();
    samples
}

/// The default chain on the bench's pod, then the demo's chain.
fn bench_chains(
    engine: &PolicyEngine,
    policy_dir: &Path,
    case: &Case,
    root: &Path,
) -> anyhow::Result<()> {
    bench_default_chain(engine, policy_dir, case)?;
    bench_demo_chain(engine, policy_dir, root)
}

/// The demo's chain (`examples/demo`): the doc's `green` queue with all four default plugins, on the pod the agent
/// renders from the doc's base template (~1.1 KB).
fn bench_demo_chain(engine: &PolicyEngine, policy_dir: &Path, root: &Path) -> anyhow::Result<()> {
    let demo = root.join("examples/demo");
    let read = |file: &str| -> anyhow::Result<serde_json::Value> {
        Ok(serde_yaml::from_str(&std::fs::read_to_string(
            demo.join(file),
        )?)?)
    };
    let mut steps = Vec::new();
    for name in [
        "template-overrides",
        "gpu-sizing",
        "team-labels",
        "guardrails",
    ] {
        let Ok(bytes) = std::fs::read(policy_dir.join(format!("{name}.wasm"))) else {
            println!("(demo chain skipped: run `just plugins`)");
            return Ok(());
        };
        steps.push(ChainStep {
            policy: engine.load(name, &bytes, None, Limits::default())?,
            config_json: read(&format!("{name}.yaml"))?.to_string(),
        });
    }
    let chain = PolicyChain::new(steps);
    let pod = read("pod.yaml")?;
    let task: policy_runtime::TaskContext =
        serde_yaml::from_str(&std::fs::read_to_string(demo.join("task.yaml"))?)?;
    chain.validate_configs(Some("green"))?;
    report(
        &format!(
            "demo chain (doc's green queue, {} B pod)",
            pod.to_string().len()
        ),
        &measure(|| {
            chain
                .run(&pod, &task, Some("green"))
                .expect("demo chain succeeds");
        }),
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let root = cache_paths::package_dir(cache_paths::process_env, env!("CARGO_MANIFEST_DIR"))
        .join("../..");
    let wasm = cache_paths::test_policy("rust-policy-template");
    let policy_dir = wasm.parent().map(Path::to_path_buf).unwrap_or_default();
    let bytes = std::fs::read(&wasm)
        .map_err(|e| anyhow::anyhow!("{}: {e} (run `just wasm`)", wasm.display()))?;
    let case = Case::load(&root.join("examples/rust-policy-template/cases/labels-and-resources"))?;
    let task = policy_runtime::TaskContext::from(case.task.clone());
    let config_json = case.config.to_string();
    let pod_json = serde_json::to_string(&case.pod)?;
    println!(
        "policy rust-policy-template: component {:.1} KB; pod {} bytes, {} containers",
        bytes.len() as f64 / 1024.0,
        pod_json.len(),
        case.pod["spec"]["containers"]
            .as_array()
            .map_or(0, Vec::len)
    );

    // Loading: compile once into a fresh cache, then time loads that hit it.
    let cache = std::env::temp_dir().join(format!("policy-bench-cache-{}", std::process::id()));
    let engine = PolicyEngine::new(EngineConfig {
        cache_dir: Some(cache.clone()),
        ..EngineConfig::default()
    })?;
    // `cargo bench --bench evaluation -- --chains`: only the chains, to compare a change to the runtime or the
    // plugins quickly.
    if std::env::args().any(|a| a == "--chains") {
        return bench_chains(&engine, &policy_dir, &case, &root);
    }
    let t = Instant::now();
    engine.load("rust-policy-template", &bytes, None, Limits::default())?;
    println!(
        "{:<44} {:>8.1} ms",
        "compile + store in cache (once)",
        t.elapsed().as_secs_f64() * 1e3
    );
    let mut loads: Vec<Duration> = (0..50)
        .map(|_| {
            let t = Instant::now();
            engine
                .load("rust-policy-template", &bytes, None, Limits::default())
                .map(|_| t.elapsed())
        })
        .collect::<Result<_, _>>()?;
    loads.sort();
    println!(
        "{:<44} p50 {:>8.2} ms   p99 {:>8.2} ms   (n={})",
        "load precompiled from cache",
        percentile(&loads, 50.0).as_secs_f64() * 1e3,
        percentile(&loads, 99.0).as_secs_f64() * 1e3,
        loads.len()
    );
    let _ = std::fs::remove_dir_all(&cache);

    let policy = engine.load("rust-policy-template", &bytes, None, Limits::default())?;
    let wasm_p50 = report(
        "wasm: fresh instance + transform",
        &measure(|| {
            policy
                .transform(&pod_json, &task, &config_json, None)
                .expect("transform succeeds");
        }),
    );
    report(
        "wasm: + parse output + strict Pod check",
        &measure(|| {
            policy_runtime::chain::run_step(&policy, &case.pod, &task, &config_json, None)
                .expect("step succeeds");
        }),
    );
    // Host overhead alone: a policy that returns its input unparsed (fresh store, WASI context, instantiate, copy
    // the pod in and out).
    let hostile_wasm = policy_dir.join("test-hostile.wasm");
    if let Ok(hostile_bytes) = std::fs::read(&hostile_wasm) {
        let identity = engine.load("identity", &hostile_bytes, None, Limits::default())?;
        let config = r#"{"mode":"ok"}"#;
        report(
            "wasm: fresh instance, identity policy",
            &measure(|| {
                identity
                    .transform(&pod_json, &task, config, None)
                    .expect("identity succeeds");
            }),
        );
    }
    // What the host itself spends per step around the policy call (native, dependencies optimised).
    let pod_json_for_host = serde_json::to_string(&case.pod)?;
    report(
        "host: serialise pod to JSON",
        &measure(|| {
            std::hint::black_box(serde_json::to_string(&case.pod).expect("serialises"));
        }),
    );
    report(
        "host: parse policy output to a Value",
        &measure(|| {
            std::hint::black_box(
                serde_json::from_str::<serde_json::Value>(&pod_json_for_host).expect("parses"),
            );
        }),
    );
    report(
        "host: strict Pod check of a Value",
        &measure(|| {
            std::hint::black_box(policy_runtime::pod::validate_pod(&case.pod).expect("valid"));
        }),
    );
    report(
        "host: strict Pod check from JSON (the chain's)",
        &measure(|| {
            std::hint::black_box(
                policy_runtime::pod::parse_pod(&pod_json_for_host).expect("valid"),
            );
        }),
    );
    bench_chains(&engine, &policy_dir, &case, &root)?;

    let task = native_policy::TaskInfo {
        id: &task.id,
        user: case.task.user.as_deref(),
    };
    let native_p50 = report(
        "native Rust: same transform (JSON in/out)",
        &measure(|| {
            let config = native_policy::parse_config(&config_json).expect("config parses");
            let mut pod: serde_json::Value = serde_json::from_str(&pod_json).expect("pod parses");
            native_policy::transform(&mut pod, &task, &config).expect("transform succeeds");
            std::hint::black_box(pod.to_string());
        }),
    );
    println!(
        "{:<44} {:>8.1}x",
        "ratio wasm / native (p50)",
        wasm_p50.as_secs_f64() / native_p50.as_secs_f64().max(1e-9)
    );
    Ok(())
}
