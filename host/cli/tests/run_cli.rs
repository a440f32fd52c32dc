//! `clearml-k8s-agent run` and `render` as a user runs them: the fixed exit codes, and config errors named by path
//! before any connection is attempted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

const ACCESS_KEY: &str = "CLI-TEST-ACCESS-KEY";
const SECRET_KEY: &str = "cli-test-secret-key-4a1b";

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clearml-k8s-agent"));
    // Nothing may be reached: a closed port for ClearML, a kubeconfig pointing nowhere.
    cmd.env("CLEARML_API_HOST", "http://127.0.0.1:9")
        .env("CLEARML_API_ACCESS_KEY", ACCESS_KEY)
        .env("CLEARML_API_SECRET_KEY", SECRET_KEY)
        .env_remove("RUST_LOG");
    cmd
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn output(cmd: &mut Command) -> (Output, String) {
    let out = cmd.output().expect("the binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

const RED_BLUE_GREEN_MISSPELT: &str = r#"
agentk8sglue:
  basePodTemplate:
    labels:
      team: red
  createQueues: true
  queues:
    red:
      templateOverides: {}
"#;

#[test]
fn a_misspelt_key_exits_64_naming_its_path_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let values = write(dir.path(), "values.yaml", RED_BLUE_GREEN_MISSPELT);
    let (out, text) = output(
        bin()
            .args(["run", "--config"])
            .arg(&values)
            .args(["--metrics-addr", "127.0.0.1:0"]),
    );
    assert_eq!(out.status.code(), Some(64), "{text}");
    assert!(
        text.contains("agentk8sglue.queues.red.templateOverides"),
        "{text}"
    );
    assert!(text.contains("templateOverrides"), "did you mean: {text}");
    assert!(
        !text.contains("127.0.0.1:9"),
        "no connection was attempted: {text}"
    );
}

#[test]
fn an_unknown_plugin_exits_64_naming_queue_and_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let values = write(
        dir.path(),
        "values.yaml",
        "agentk8sglue:\n  queues:\n    gpu:\n      policies:\n        - plugin: gpu-sizng\n",
    );
    // `policy precompile` (what `run` starts with, in a child) refuses a bad binding the same way.
    for command in [&["run"][..], &["policy", "precompile"]] {
        let cache = dir.path().join("cache");
        let (out, text) = output(
            bin()
                .env("CLEARML_K8S_AGENT_CACHE", &cache)
                .args(command)
                .arg("--config")
                .arg(&values),
        );
        assert_eq!(out.status.code(), Some(64), "{command:?}: {text}");
        assert!(
            text.contains("agentk8sglue.queues.gpu.policies[0].plugin"),
            "{text}"
        );
        assert!(text.contains("gpu-sizng"), "{text}");
    }
}

#[test]
fn bad_flags_and_missing_files_exit_64() {
    let (out, text) = output(bin().args(["run"]));
    assert_eq!(out.status.code(), Some(64), "{text}");
    let (out, text) = output(bin().args(["run", "--config", "/nonexistent/values.yaml"]));
    assert_eq!(out.status.code(), Some(64), "{text}");
    assert!(text.contains("/nonexistent/values.yaml"), "{text}");
    let (out, text) = output(bin().args([
        "run",
        "--config",
        "x.yaml",
        "--metrics-addr",
        "not-an-address",
    ]));
    assert_eq!(out.status.code(), Some(64), "{text}");
    // The Lease flags only mean something with --leader-elect.
    let (out, text) = output(bin().args(["run", "--config", "x.yaml", "--lease-name", "l"]));
    assert_eq!(out.status.code(), Some(64), "{text}");
    assert!(text.contains("--leader-elect"), "{text}");
}

#[test]
fn help_exits_0() {
    let (out, text) = output(bin().args(["run", "--help"]));
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("--config")
            && text.contains("--namespace")
            && text.contains("--metrics-addr")
            && text.contains("--leader-elect"),
        "{text}"
    );
}

#[test]
fn render_prints_the_pod_offline() {
    let dir = tempfile::tempdir().unwrap();
    let values = write(
        dir.path(),
        "values.yaml",
        "agentk8sglue:\n  basePodTemplate:\n    labels:\n      team: red\n  queues:\n    blue:\n      templateOverrides:\n        labels:\n          team: blue\n",
    );
    let task = write(
        dir.path(),
        "task.yaml",
        "id: 0123456789abcdef0123456789abcdef\nname: t\nimage: python:3.12\n",
    );
    let (out, text) = output(
        bin()
            .args(["render", "--config"])
            .arg(&values)
            .args(["--queue", "blue", "--task"])
            .arg(&task),
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("name: clearml-id-0123456789abcdef0123456789abcdef"),
        "{stdout}"
    );
    assert!(stdout.contains("team: blue"), "{stdout}");
    assert!(stdout.contains("image: python:3.12"), "{stdout}");
    assert!(
        !stdout.contains(SECRET_KEY) && !stdout.contains(ACCESS_KEY),
        "no credential value: {stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("# template-overrides"), "{stderr}");

    let (out, text) = output(
        bin()
            .args(["render", "--config"])
            .arg(&values)
            .args(["--queue", "nope", "--task"])
            .arg(&task),
    );
    assert_eq!(out.status.code(), Some(64), "{text}");
    assert!(text.contains("nope") && text.contains("blue"), "{text}");
}

#[tokio::test]
async fn a_missing_queue_with_create_queues_false_exits_64_naming_it() {
    let emulator = clearml_emulator::Emulator::start(clearml_emulator::EmulatorConfig {
        credentials: vec![(ACCESS_KEY.into(), SECRET_KEY.into())],
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let values = write(
        dir.path(),
        "values.yaml",
        "agentk8sglue:\n  createQueues: false\n  queues:\n    nosuchqueue:\n      templateOverrides: {}\n",
    );
    // A kubeconfig is read, not contacted, before the ClearML side has resolved the queues.
    let kubeconfig = write(
        dir.path(),
        "kubeconfig",
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n\
         users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u, namespace: ns}}]\n\
         current-context: x\n",
    );
    let mut cmd = bin();
    cmd.env("CLEARML_API_HOST", emulator.base_url())
        .env("KUBECONFIG", &kubeconfig)
        .args(["run", "--metrics-addr", "127.0.0.1:0", "--config"])
        .arg(&values);
    let (out, text) = tokio::task::spawn_blocking(move || output(&mut cmd))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{text}");
    assert!(text.contains("agentk8sglue.queues.nosuchqueue"), "{text}");
    assert!(text.contains("createQueues"), "{text}");
}

#[test]
fn policy_precompile_fills_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let values = write(
        dir.path(),
        "values.yaml",
        "agentk8sglue:\n  queues:\n    gpu:\n      templateOverrides: {labels: {team: a}}\n      policies:\n        - {plugin: gpu-sizing, config: {gpus: 1}}\n        - {plugin: guardrails}\n",
    );
    let cache = dir.path().join("cache");
    let (out, text) = output(
        bin()
            .env("CLEARML_K8S_AGENT_CACHE", &cache)
            .args(["policy", "precompile", "--config"])
            .arg(&values),
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    let entries = std::fs::read_dir(cache.join("precompiled"))
        .unwrap()
        .count();
    assert_eq!(entries, 3, "one entry per plugin the values bind");
}
