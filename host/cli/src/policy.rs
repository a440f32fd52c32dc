//! `clearml-k8s-agent policy ...`: develop and test queue policies offline, on the same runtime the agent uses.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use policy_runtime::engine::EvalContext;
use policy_runtime::harness::{self, Verdict};
use policy_runtime::{EngineConfig, Limits, Policy, PolicyEngine, TaskContext, bench, inspect};

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Run a policy's golden cases: each case folder holds task.yaml, pod.yaml, config.yaml (optional) and
    /// expected.yaml or expected-error.txt. Exit 1 if any case fails.
    Test(TestArgs),
    /// Evaluate a policy once: print the output pod (YAML) on stdout, the diff and the policy's logs on stderr.
    Run(RunArgs),
    /// Run a pod through several policies in order, as a queue's chain: print the final pod (YAML) on stdout and
    /// each step's changes (RFC 6902) and logs on stderr. A dry run of what the agent would submit.
    Chain(ChainArgs),
    /// Measure a policy: compile and load-from-cache times, and p50/p99 of fresh-instance evaluations.
    Bench(BenchArgs),
    /// Show a component's world, version, imports, exports, size, sha256 and whether this host accepts it.
    Inspect(InspectArgs),
    /// Compile every policy a values file binds into the precompiled cache, then exit: what `run` does first, in a
    /// child process, so that the compiler's memory never stays in the agent. Also useful to fill a cache volume
    /// ahead of time (an init container). Exit 64 for a bad config or binding, as `run`.
    Precompile(PrecompileArgs),
}

#[derive(Args)]
pub struct PrecompileArgs {
    /// The values file.
    #[arg(long)]
    pub config: PathBuf,
}

/// Options shared by commands that load a policy.
#[derive(Args, Clone)]
pub struct LoadArgs {
    /// The policy component (.wasm).
    pub wasm: PathBuf,
    /// Refuse the component unless its sha256 is this (hex).
    #[arg(long)]
    pub sha256: Option<String>,
    /// Evaluation timeout in milliseconds.
    #[arg(long, default_value_t = Limits::DEFAULT_TIMEOUT_MS)]
    pub timeout_ms: u64,
    /// Memory cap in MiB.
    #[arg(long, default_value_t = Limits::DEFAULT_MEMORY_MIB)]
    pub memory_mib: usize,
    /// Do not use the on-disk cache of precompiled components.
    #[arg(long)]
    pub no_cache: bool,
}

impl LoadArgs {
    fn limits(&self) -> Limits {
        Limits::from_ms_and_mib(self.timeout_ms, self.memory_mib)
    }

    fn engine(&self) -> anyhow::Result<PolicyEngine> {
        let config = if self.no_cache {
            EngineConfig::default()
        } else {
            cached_engine_config()
        };
        Ok(PolicyEngine::new(config)?)
    }

    fn load(&self) -> anyhow::Result<(PolicyEngine, Policy)> {
        let engine = self.engine()?;
        let policy = engine.load_file(&self.wasm, self.sha256.as_deref(), self.limits())?;
        Ok((engine, policy))
    }
}

#[derive(Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// Folder of case folders.
    #[arg(long)]
    pub cases: PathBuf,
    /// Rewrite expected.yaml / expected-error.txt from what the policy returns (also: BLESS=1).
    #[arg(long)]
    pub bless: bool,
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// Task context (YAML: id, name, project, user, queue-name, tags, image, properties).
    #[arg(long)]
    pub task: PathBuf,
    /// Input pod (YAML or JSON v1/Pod).
    #[arg(long)]
    pub pod: PathBuf,
    /// Policy config (YAML or JSON); none means `null`.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Args)]
pub struct ChainArgs {
    /// Task context (YAML).
    #[arg(long)]
    pub task: PathBuf,
    /// Input pod (YAML or JSON v1/Pod).
    #[arg(long)]
    pub pod: PathBuf,
    /// One step of the chain: `<policy.wasm>` or `<policy.wasm>=<config.yaml>`. Repeat, in order.
    #[arg(long = "step", required = true)]
    pub steps: Vec<String>,
    /// Queue name for messages (defaults to the task's queue-name).
    #[arg(long)]
    pub queue: Option<String>,
    /// Evaluation timeout per step in milliseconds.
    #[arg(long, default_value_t = Limits::DEFAULT_TIMEOUT_MS)]
    pub timeout_ms: u64,
    /// Memory cap per step in MiB.
    #[arg(long, default_value_t = Limits::DEFAULT_MEMORY_MIB)]
    pub memory_mib: usize,
}

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// Cases to evaluate (each one's pod, task and config). Without it: a built-in realistic pod (2 containers,
    /// 20 env vars, ~2.7 KB) with a `null` config.
    #[arg(long)]
    pub cases: Option<PathBuf>,
    /// Evaluations per case.
    #[arg(long, default_value_t = 2000)]
    pub iterations: usize,
}

#[derive(Args)]
pub struct InspectArgs {
    /// The component (.wasm).
    pub wasm: PathBuf,
}

pub fn run(command: PolicyCommand) -> anyhow::Result<ExitCode> {
    match command {
        PolicyCommand::Test(args) => test(args),
        PolicyCommand::Run(args) => run_once(args),
        PolicyCommand::Chain(args) => chain(args),
        PolicyCommand::Bench(args) => bench(args),
        PolicyCommand::Inspect(args) => inspect_component(&args.wasm),
        PolicyCommand::Precompile(args) => Ok(match crate::run::prepare(&args.config) {
            Ok(_) => ExitCode::SUCCESS,
            Err(code) => code,
        }),
    }
}

/// The engine settings of every command that caches: precompiled components under the cache root.
fn cached_engine_config() -> EngineConfig {
    EngineConfig::with_cache_dir(crate::cache::precompiled_dir())
}

fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    // Refused under CI before anything runs: a CI run checks golden files and never rewrites them.
    let bless = harness::bless_requested(args.bless, |name| {
        cache_paths::process_env(name).map(|v| v.to_string_lossy().into_owned())
    })?;
    let (_engine, policy) = args.load.load()?;
    let cases = harness::load_cases(&args.cases)?;
    println!(
        "policy {} ({} cases from {})",
        policy.name(),
        cases.len(),
        args.cases.display()
    );
    let summary = harness::run_cases(&policy, &cases, bless);
    for result in &summary.results {
        let ms = result.duration.as_secs_f64() * 1e3;
        match &result.verdict {
            Verdict::Pass => println!("  ok      {} ({ms:.2} ms)", result.name),
            Verdict::Blessed => println!("  blessed {} (expectation rewritten)", result.name),
            Verdict::Fail(why) => {
                println!("  FAIL    {}", result.name);
                for line in why.lines() {
                    println!("          {line}");
                }
            }
        }
    }
    println!("{}: {summary}", policy.name());
    Ok(if summary.failed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn read_yaml(path: &Path) -> anyhow::Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_yaml::from_str(&text)
        .with_context(|| format!("{} is not valid YAML/JSON", path.display()))
}

fn run_once(args: RunArgs) -> anyhow::Result<ExitCode> {
    let (_engine, policy) = args.load.load()?;
    let task = read_task(&args.task)?;
    let pod = read_yaml(&args.pod)?;
    let config = match &args.config {
        Some(path) => read_yaml(path)?,
        None => serde_json::Value::Null,
    }
    .to_string();
    let queue = task.queue_for_messages(None);
    policy.validate_config(
        &config,
        EvalContext {
            queue,
            task_id: None,
        },
    )?;
    let (out, evaluation) = policy_runtime::chain::run_step(&policy, &pod, &task, &config, None)?;
    print!("{}", harness::to_yaml(&out));
    std::io::Write::flush(&mut std::io::stdout())?;
    for record in &evaluation.logs {
        eprintln!("[{} {}] {}", policy.name(), record.level, record.message);
    }
    let diff = harness::yaml_diff(
        "input pod",
        &harness::to_yaml(&pod),
        "output pod",
        &harness::to_yaml(&out),
    );
    eprintln!(
        "# {} changed the pod in {:.3} ms:\n{}",
        policy.name(),
        evaluation.duration.as_secs_f64() * 1e3,
        if diff.is_empty() {
            "(no changes)\n".to_string()
        } else {
            diff
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// A task file through the one task reader: errors name the field (`task.yaml: properties: invalid type ...`).
fn read_task(path: &Path) -> anyhow::Result<TaskContext> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    TaskContext::from_yaml(&text).with_context(|| format!("{} is not a task", path.display()))
}

fn chain(args: ChainArgs) -> anyhow::Result<ExitCode> {
    let engine = PolicyEngine::new(cached_engine_config())?;
    let limits = Limits::from_ms_and_mib(args.timeout_ms, args.memory_mib);
    let task = read_task(&args.task)?;
    let pod = read_yaml(&args.pod)?;
    let mut steps = Vec::with_capacity(args.steps.len());
    for spec in &args.steps {
        let (wasm, config) = match spec.split_once('=') {
            Some((wasm, config)) => (PathBuf::from(wasm), read_yaml(Path::new(config))?),
            None => (PathBuf::from(spec), serde_json::Value::Null),
        };
        let policy = engine
            .load_file(&wasm, None, limits)
            .with_context(|| format!("step `{spec}`"))?;
        steps.push(policy_runtime::ChainStep {
            policy,
            config_json: config.to_string(),
        });
    }
    let chain = policy_runtime::PolicyChain::new(steps);
    let queue = task.queue_for_messages(args.queue.as_deref());
    chain.validate_configs(queue)?;
    let outcome = chain.run(&pod, &task, queue)?;
    print!("{}", harness::to_yaml(&outcome.pod()));
    // The pod first, then the report: keep them apart on a terminal.
    std::io::Write::flush(&mut std::io::stdout())?;
    let total = outcome.steps.len();
    for (index, step) in outcome.steps.iter().enumerate() {
        let patch = outcome.patch(index).unwrap_or_default();
        eprintln!(
            "# step {}/{total} {} ({:.3} ms): {} change(s)",
            index + 1,
            step.policy,
            step.duration.as_secs_f64() * 1e3,
            patch.0.len()
        );
        for op in &patch.0 {
            let op = serde_json::to_value(op)?;
            let value = op
                .get("value")
                .map(|v| format!(" = {v}"))
                .unwrap_or_default();
            eprintln!(
                "#   {} {}{value}",
                op["op"].as_str().unwrap_or("?"),
                op["path"].as_str().unwrap_or("?")
            );
        }
        for record in &step.logs {
            eprintln!("#   [{} {}] {}", step.policy, record.level, record.message);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.load.wasm)
        .with_context(|| format!("cannot read {}", args.load.wasm.display()))?;
    let name = args.load.wasm.file_stem().map_or_else(
        || "policy".to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    let cases = match &args.cases {
        Some(dir) => harness::load_cases(dir)?,
        None => vec![bench::builtin_case()?],
    };
    let report = bench::bench(&name, &bytes, args.load.limits(), &cases, args.iterations)?;
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}

fn inspect_component(path: &Path) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path.file_stem().map_or_else(
        || "policy".to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    let info = inspect::read_component(&name, &bytes)?;
    let verdict = inspect::check(&name, &info);
    println!("component: {}", path.display());
    println!("size:      {} bytes", info.size);
    println!("sha256:    {}", info.sha256);
    match &verdict {
        Ok(accepted) => println!(
            "world:     clearml:queue-policy/{}@{}",
            accepted.world, accepted.version
        ),
        Err(_) => println!("world:     (not the queue-policy world)"),
    }
    println!("imports:");
    for import in &info.imports {
        println!("  - {import}");
    }
    println!("exports:");
    for export in &info.exports {
        println!("  - {export}");
    }
    match verdict {
        Ok(_) => {
            println!(
                "accepted:  yes (this host serves clearml:queue-policy@{})",
                policy_runtime::WIT_PACKAGE_VERSION
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            println!("accepted:  no: {err}");
            Ok(ExitCode::FAILURE)
        }
    }
}
