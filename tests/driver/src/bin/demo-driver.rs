//! `just demo`: the real agent on the ClearML Enterprise page's queues plus a policy queue, fed example tasks
//! through the ClearML API, with a table of what became of each. Everything runs on loopback: the ClearML emulator
//! (in this process), a real kube-apiserver + etcd, `kubelet-sim --in-pod-agent`, and `clearml-k8s-agent run`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use clearml_api::TaskStatus;
use driver::agent_process::{AgentProcess, AgentSpec};
use driver::clearml::{Clearml, NewTask};
use driver::counting::CountedEmulator;
use driver::demo::DemoTask;
use driver::pod_watch::{PodWatch, SeenPod};
use driver::sim_process::{SimProcess, SimSpec};
use driver::table::{self, Row};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::PostParams;

/// Run the demo.
#[derive(Parser)]
struct Args {
    /// The agent's values file.
    #[arg(long, default_value = "examples/demo/values.yaml")]
    values: PathBuf,
    /// The tasks to enqueue and what each should end as.
    #[arg(long, default_value = "examples/demo/tasks.yaml")]
    tasks: PathBuf,
    /// Where the logs of the agent and kubelet-sim go.
    #[arg(long, default_value = "target/demo")]
    log_dir: PathBuf,
    /// Give up waiting for the tasks after this many seconds.
    #[arg(long, default_value_t = 120)]
    patience: u64,
}

const NAMESPACE: &str = "clearml-demo";
const PROJECT: &str = "Demo/Computer Vision";

#[tokio::main]
async fn main() -> ExitCode {
    driver::init_logs();
    match run(Args::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("demo: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn step(what: &str) {
    println!("==> {what}");
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let started = Instant::now();
    let tasks = driver::demo::load(&args.tasks, &args.values)?;
    let values = std::fs::canonicalize(&args.values)
        .with_context(|| format!("finding {}", args.values.display()))?;
    std::fs::create_dir_all(&args.log_dir)
        .with_context(|| format!("creating {}", args.log_dir.display()))?;
    let agent_bin = driver::bins::agent()?;
    let sim_bin = driver::bins::kubelet_sim()?;

    step("starting the control plane (kube-apiserver + etcd on loopback)");
    let (env, kube) = driver::control_plane()
        .await
        .context("starting kube-apiserver + etcd")?;
    let mut ns = Namespace::default();
    ns.metadata.name = Some(NAMESPACE.into());
    Api::<Namespace>::all(kube.clone())
        .create(&PostParams::default(), &ns)
        .await
        .context("creating the demo namespace")?;

    step("starting the ClearML API emulator");
    let emulator = CountedEmulator::start().await?;

    step("starting kubelet-sim --in-pod-agent (a CPU node and a node with 8 GPUs)");
    let sim = SimProcess::start(
        &sim_bin,
        &SimSpec {
            kubeconfig: env.kubeconfig_path().to_path_buf(),
            namespace: Some(NAMESPACE.into()),
            nodes: vec![
                "name=demo-cpu-0,cpu=16,memory=64Gi".into(),
                "name=demo-gpu-0,cpu=64,memory=512Gi,gpu=8".into(),
            ],
            run_seconds: 2.0,
            in_pod_agent: true,
            log: args.log_dir.join("kubelet-sim.log"),
        },
        &kube,
        Duration::from_secs(30),
    )
    .await?;

    let pods = PodWatch::start(Api::<Pod>::namespaced(kube.clone(), NAMESPACE));
    pods.wait_synced().await;

    step(&format!(
        "starting clearml-k8s-agent run --config {}",
        args.values.display()
    ));
    let agent = AgentProcess::start(
        &agent_bin,
        &AgentSpec {
            config: values,
            namespace: NAMESPACE.into(),
            instance: "demo-agent".into(),
            kubeconfig: env.kubeconfig_path().to_path_buf(),
            clearml_url: emulator.agent_url.clone(),
            max_in_flight: None,
            no_policies: false,
            log: args.log_dir.join("agent.log"),
        },
        Duration::from_secs(120),
    )
    .await?;

    step("enqueueing the example tasks through the ClearML API");
    let clearml = Clearml::new(&emulator.driver_url)?;
    let project = clearml.project(PROJECT).await?;
    let mut ids = Vec::new();
    let mut queue_ids = BTreeMap::new();
    for task in &tasks {
        let mut new = NewTask {
            name: task.name.clone(),
            image: task.image.clone(),
            ..NewTask::default()
        };
        if let Some(gpus) = task.gpus {
            new.hyperparams
                .push(("k8s".into(), "gpus".into(), gpus.to_string()));
        }
        let id = clearml.create_task(&project, &new).await?;
        if !queue_ids.contains_key(&task.queue) {
            queue_ids.insert(task.queue.clone(), clearml.queue_id(&task.queue).await?);
        }
        clearml.enqueue(&id, &queue_ids[&task.queue]).await?;
        println!("    {:<20} -> {:<9} task {id}", task.name, task.queue);
        ids.push(id);
    }

    step("waiting for every task to finish (pods run 2 s in kubelet-sim)");
    let finals = match wait_final(&clearml, &ids, Duration::from_secs(args.patience)).await {
        Ok(finals) => finals,
        Err(err) => bail!(
            "{err:#}\nthe agent's log ({}) ends with:\n{}",
            agent.log_path().display(),
            agent.log_tail(6)
        ),
    };

    let rows: Vec<Row> = tasks
        .iter()
        .zip(&ids)
        .zip(&finals)
        .map(|((task, id), final_task)| row(task, pods.get(&driver::pod_name(id)), final_task))
        .collect();
    println!();
    print!("{}", table::render(&rows));
    println!();
    let mismatches: Vec<String> = tasks
        .iter()
        .zip(&rows)
        .filter(|(task, row)| row.status != task.expect)
        .map(|(task, row)| {
            format!(
                "{} ended {} (expected {})",
                task.name, row.status, task.expect
            )
        })
        .collect();

    step("stopping the agent (SIGTERM), kubelet-sim, the emulator and the control plane");
    let agent_log = agent.log_path().to_path_buf();
    let status = agent.stop(Duration::from_secs(30)).await?;
    sim.stop(Duration::from_secs(10)).await?;
    drop(pods);
    drop(emulator);
    drop(env);
    if !status.success() {
        bail!(
            "the agent exited with {status} after SIGTERM (expected 0); log {}",
            agent_log.display()
        );
    }
    println!(
        "    agent exited 0; logs in {}; demo took {:.1} s",
        args.log_dir.display(),
        started.elapsed().as_secs_f64()
    );
    if mismatches.is_empty() {
        Ok(true)
    } else {
        eprintln!("demo: not as expected:\n  {}", mismatches.join("\n  "));
        Ok(false)
    }
}

/// Poll ClearML (as the UI does) until every task is completed, failed or stopped; print each change.
async fn wait_final(
    clearml: &Clearml,
    ids: &[String],
    patience: Duration,
) -> anyhow::Result<Vec<clearml_api::Task>> {
    let deadline = Instant::now() + patience;
    let mut last: Vec<Option<TaskStatus>> = vec![None; ids.len()];
    loop {
        let mut tasks = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            let task = clearml.task(id).await?;
            if task.status != last[i] {
                println!(
                    "    {:<20} {}",
                    task.name,
                    task.status.map_or("?".to_string(), |s| s.to_string())
                );
                last[i] = task.status;
            }
            tasks.push(task);
        }
        if tasks.iter().all(|t| {
            matches!(
                t.status,
                Some(TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Stopped)
            )
        }) {
            return Ok(tasks);
        }
        if Instant::now() >= deadline {
            bail!(
                "tasks still not finished after {patience:?}: {}",
                tasks
                    .iter()
                    .filter(|t| !matches!(
                        t.status,
                        Some(TaskStatus::Completed | TaskStatus::Failed)
                    ))
                    .map(|t| format!("{} ({:?})", t.name, t.status))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn row(task: &DemoTask, pod: Option<SeenPod>, final_task: &clearml_api::Task) -> Row {
    let dash = || "-".to_string();
    let pod = pod.map(|p| p.last);
    let container = pod
        .as_ref()
        .and_then(|p| p.spec.as_ref())
        .and_then(|s| s.containers.iter().find(|c| c.name == "clearml-task"));
    let limit = |resource: &str| {
        container
            .and_then(|c| c.resources.as_ref()?.limits.as_ref()?.get(resource))
            .map_or_else(dash, |q| q.0.clone())
    };
    let meta = pod.as_ref().map(|p| &p.metadata);
    Row {
        task: task.name.clone(),
        queue: task.queue.clone(),
        pod: meta.and_then(|m| m.name.clone()).unwrap_or_else(dash),
        policies: meta
            .and_then(|m| m.annotations.as_ref()?.get("clearml.ai/policies"))
            .map_or_else(dash, |p| table::policy_names(p)),
        gpus: limit("nvidia.com/gpu"),
        team: meta
            .and_then(|m| m.labels.as_ref()?.get("team").cloned())
            .unwrap_or_else(dash),
        memory: limit("memory"),
        status: final_task.status.map_or_else(dash, |s| s.to_string()),
        message: final_task
            .status_message
            .clone()
            .filter(|m| !m.is_empty() && final_task.status != Some(TaskStatus::Completed)),
    }
}
