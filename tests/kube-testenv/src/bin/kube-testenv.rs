//! `kube-testenv up|down|env`: a control plane for manual use and the demo (`just testenv-up`, `just testenv-down`).
//!
//! `up` starts etcd + kube-apiserver in the background, records their pids in the state directory and prints the
//! kubeconfig path; `down` kills exactly those pids. Tests do not use this: they start their own control plane.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use kube_testenv::{bins, detached};

const USAGE: &str = "usage: kube-testenv <up|down|status> [--dir DIR]
  up      start etcd + kube-apiserver in the background; prints the kubeconfig path
  down    stop the processes recorded in DIR/pids
  status  print whether the recorded processes run
DIR defaults to $CLEARML_K8S_AGENT_CACHE/testenv/run (~/.cache/clearml-k8s-agent/testenv/run)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, dir) = match parse(&args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(64);
        }
    };
    match cmd.as_str() {
        "up" => up(&dir),
        "down" => {
            let stopped = detached::stop_detached(&dir);
            if stopped.is_empty() {
                println!(
                    "kube-testenv: nothing running (no live pids in {})",
                    dir.join("pids").display()
                );
            } else {
                println!("kube-testenv: stopped pids {stopped:?}");
            }
            ExitCode::SUCCESS
        }
        "status" => {
            if running(&dir) {
                println!("running; KUBECONFIG={}", dir.join("kubeconfig").display());
                ExitCode::SUCCESS
            } else {
                println!("not running");
                ExitCode::from(1)
            }
        }
        other => {
            eprintln!("unknown command {other:?}\n{USAGE}");
            ExitCode::from(64)
        }
    }
}

fn parse(args: &[String]) -> Result<(String, PathBuf), String> {
    let cmd = args.first().ok_or("missing command")?.clone();
    let dir = match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("--dir"), Some(d)) => PathBuf::from(d),
        (None, _) => {
            default_dir().ok_or("neither CLEARML_K8S_AGENT_CACHE nor HOME is set; pass --dir")?
        }
        _ => return Err(format!("unexpected arguments {:?}", &args[1..])),
    };
    Ok((cmd, dir))
}

fn default_dir() -> Option<PathBuf> {
    cache_paths::cache_root(cache_paths::process_env).map(|root| root.join("testenv/run"))
}

fn running(dir: &std::path::Path) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join("pids")) else {
        return false;
    };
    let pids: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    pids.len() == 2
        && detached::pid_is(pids[0], "etcd")
        && detached::pid_is(pids[1], "kube-apiserver")
}

fn up(dir: &std::path::Path) -> ExitCode {
    if running(dir) {
        println!("kube-testenv: already running");
        println!("KUBECONFIG={}", dir.join("kubeconfig").display());
        return ExitCode::SUCCESS;
    }
    // A stale state directory (crashed run) holds an old etcd data dir and certs; start clean.
    detached::stop_detached(dir);
    let _ = std::fs::remove_dir_all(dir);
    let binaries = match bins::locate(cache_paths::process_env) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("kube-testenv: {e}");
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kube-testenv: cannot start a tokio runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(detached::start_detached(
        &binaries,
        dir,
        Duration::from_secs(120),
    )) {
        Ok(d) => {
            println!(
                "kube-testenv: ready at {} in {:.1}s (etcd pid {}, kube-apiserver pid {}; logs in {})",
                d.server,
                d.startup.as_secs_f64(),
                d.pids[0],
                d.pids[1],
                dir.display()
            );
            println!("KUBECONFIG={}", d.kubeconfig.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kube-testenv: start failed: {e}");
            ExitCode::from(1)
        }
    }
}
