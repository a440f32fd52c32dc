//! The `policy` subcommands as a user runs them: the real binary, the sample policy, the template's cases.

// Test helpers may unwrap too: a panic is the test failure we want (clippy only exempts #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_clearml-k8s-agent"))
}

fn policy(name: &str) -> PathBuf {
    let path = cache_paths::test_policy(name);
    assert!(
        path.is_file(),
        "{} is missing: run `just wasm`",
        path.display()
    );
    path
}

fn template_cases() -> PathBuf {
    cache_paths::package_dir(cache_paths::process_env, env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/rust-policy-template/cases")
}

fn run(cmd: &mut Command) -> (Output, String) {
    let out = cmd.output().expect("the binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

/// `policy test` of the Rust template on `cases`, with blessing off and `CI` unset (a test that blesses does so on a
/// scratch copy, on purpose; CI would refuse it).
fn policy_test(cases: &Path) -> Command {
    let mut cmd = bin();
    cmd.args(["policy", "test"])
        .arg(policy("rust-policy-template"))
        .arg("--cases")
        .arg(cases)
        .env("BLESS", "0")
        .env_remove("CI");
    cmd
}

/// A scratch cases folder holding a copy of the template's case `from`, named `name`.
fn scratch_case(from: &str, name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join(name);
    copy_dir(&template_cases().join(from), &case);
    (dir, case)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn policy_test_passes_the_template_cases_with_a_summary_line() {
    let (out, text) = run(bin()
        .args(["policy", "test"])
        .arg(policy("rust-policy-template"))
        .arg("--cases")
        .arg(template_cases())
        .env("BLESS", "0"));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("5 passed, 0 failed"), "{text}");
}

#[test]
fn a_mismatch_fails_with_a_diff_and_bless_rewrites_it() {
    let (dir, case) = scratch_case("labels-and-resources", "labels-and-resources");
    let expected = case.join("expected.yaml");
    let original = std::fs::read_to_string(&expected).unwrap();
    std::fs::write(&expected, original.replace("team: vision", "team: blue")).unwrap();

    let test = |bless: bool| {
        let mut cmd = policy_test(dir.path());
        if bless {
            cmd.arg("--bless");
        }
        run(&mut cmd)
    };
    let (out, text) = test(false);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("-    team: blue") && text.contains("+    team: vision"),
        "{text}"
    );
    assert!(text.contains("0 passed, 1 failed"), "{text}");

    let (out, text) = test(true);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("blessed"), "{text}");
    assert_eq!(std::fs::read_to_string(&expected).unwrap(), original);
    let (out, text) = test(false);
    assert!(out.status.success(), "{text}");
}

#[test]
fn a_case_without_expectation_fails_until_blessed() {
    let (dir, case) = scratch_case("invalid-config", "new-case");
    std::fs::remove_file(case.join("expected-error.txt")).unwrap();
    let mut cmd = policy_test(dir.path());
    let (out, text) = run(&mut cmd);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("--bless"), "{text}");
    let (out, text) = run(cmd.env("BLESS", "1"));
    assert!(out.status.success(), "{text}");
    let written = std::fs::read_to_string(case.join("expected-error.txt")).unwrap();
    assert!(
        written.starts_with("invalid-config: ") && written.contains("unknown key `labelz`"),
        "{written}"
    );
}

#[test]
fn blessing_is_refused_under_ci() {
    let (dir, case) = scratch_case("invalid-config", "new-case");
    std::fs::remove_file(case.join("expected-error.txt")).unwrap();
    let (out, text) = run(policy_test(dir.path()).arg("--bless").env("CI", "true"));
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("blessing refused: CI=true"), "{text}");
    assert!(!case.join("expected-error.txt").exists());
}

#[test]
fn an_error_of_the_wrong_kind_fails_and_an_empty_expectation_is_refused() {
    let (dir, case) = scratch_case("invalid-config", "invalid-config");
    let expected = case.join("expected-error.txt");
    let original = std::fs::read_to_string(&expected).unwrap();
    let test = || run(&mut policy_test(dir.path()));
    std::fs::write(&expected, original.replace("invalid-config:", "reject:")).unwrap();
    let (out, text) = test();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("kind `reject`") && text.contains("kind `invalid-config`"),
        "{text}"
    );
    std::fs::write(&expected, "\n").unwrap();
    let (out, text) = test();
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("expected-error.txt: is empty"), "{text}");
}

#[test]
fn a_task_file_error_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("task.yaml");
    std::fs::write(&task, "id: 42\nproperties: [k8s/gpus]\n").unwrap();
    let case = template_cases().join("labels-and-resources");
    let (out, text) = run(bin()
        .args(["policy", "run"])
        .arg(policy("rust-policy-template"))
        .arg("--task")
        .arg(&task)
        .arg("--pod")
        .arg(case.join("pod.yaml")));
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("properties: invalid type: sequence"),
        "{text}"
    );
}

#[test]
fn no_cases_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (out, text) = run(bin()
        .args(["policy", "test"])
        .arg(policy("rust-policy-template"))
        .arg("--cases")
        .arg(dir.path()));
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("no cases"), "{text}");
}

#[test]
fn policy_run_prints_the_pod_and_the_diff() {
    let case = template_cases().join("labels-and-resources");
    let (out, text) = run(bin()
        .args(["policy", "run"])
        .arg(policy("rust-policy-template"))
        .arg("--task")
        .arg(case.join("task.yaml"))
        .arg("--pod")
        .arg(case.join("pod.yaml"))
        .arg("--config")
        .arg(case.join("config.yaml")));
    assert!(out.status.success(), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("apiVersion: v1"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("+    team: vision"), "{stderr}");
}

#[test]
fn policy_inspect_tells_whether_the_host_accepts_a_component() {
    let (out, text) = run(bin()
        .args(["policy", "inspect"])
        .arg(policy("rust-policy-template")));
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("world:     clearml:queue-policy/queue-policy@0.1.0"),
        "{text}"
    );
    assert!(text.contains("clearml:queue-policy/host@0.1.0"), "{text}");
    assert!(text.contains("accepted:  yes"), "{text}");

    let (out, text) = run(bin()
        .args(["policy", "inspect"])
        .arg(policy("test-forbidden-import")));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("accepted:  no") && text.contains("wasi:http/outgoing-handler"),
        "{text}"
    );
}

#[test]
fn a_refused_component_is_a_clear_error() {
    let (out, text) = run(bin()
        .args(["policy", "test"])
        .arg(policy("test-old-version"))
        .arg("--cases")
        .arg(template_cases()));
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("built against clearml:queue-policy@0.0.1"),
        "{text}"
    );
}

fn demo_chain(guardrails_config: &str) -> (Output, String) {
    let demo = cache_paths::package_dir(cache_paths::process_env, env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/demo");
    let step = |name: &str, config: &str| {
        format!("{}={}", policy(name).display(), demo.join(config).display())
    };
    run(bin()
        .args(["policy", "chain", "--task"])
        .arg(demo.join("task.yaml"))
        .arg("--pod")
        .arg(demo.join("pod.yaml"))
        .args([
            "--step",
            &step("template-overrides", "template-overrides.yaml"),
        ])
        .args(["--step", &step("gpu-sizing", "gpu-sizing.yaml")])
        .args(["--step", &step("team-labels", "team-labels.yaml")])
        .args(["--step", &step("guardrails", guardrails_config)]))
}

#[test]
fn policy_chain_runs_the_default_plugins_on_the_docs_green_queue() {
    let (out, text) = demo_chain("guardrails.yaml");
    assert!(out.status.success(), "{text}");
    let pod: serde_json::Value = serde_yaml::from_slice(&out.stdout).unwrap();
    assert_eq!(pod["metadata"]["labels"]["team"], "green");
    assert_eq!(pod["metadata"]["labels"]["clearml.ai/user"], "Jane-Doe");
    assert_eq!(pod["metadata"]["annotations"]["example"], "example value");
    let limits = &pod["spec"]["containers"][0]["resources"]["limits"];
    assert_eq!(limits["nvidia.com/gpu"], "2");
    assert_eq!(limits["memory"], "32Gi");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("# step 1/4 template-overrides"), "{stderr}");
    assert!(stderr.contains("# step 4/4 guardrails"), "{stderr}");
}

#[test]
fn policy_chain_stops_at_the_policy_that_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let strict = dir.path().join("guardrails.yaml");
    std::fs::write(&strict, "allowedRegistries: [registry.example.com]\n").unwrap();
    let (out, text) = demo_chain(strict.to_str().unwrap());
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("policy `guardrails` (queue `green`"),
        "{text}"
    );
    assert!(text.contains("rejected the task"), "{text}");
}

#[test]
fn policy_bench_prints_percentiles_without_case_files() {
    let (out, text) = run(bin()
        .args(["policy", "bench"])
        .arg(policy("rust-policy-template"))
        .args(["--iterations", "50", "--no-cache"]));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("load from cache"), "{text}");
    assert!(text.contains("evaluate builtin-realistic-pod"), "{text}");
    assert!(text.contains("p50") && text.contains("p99"), "{text}");
}
