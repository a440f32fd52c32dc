//! `just demo` end to end: the demo driver runs the real agent binary against the real control plane, the emulator
//! and kubelet-sim --in-pod-agent, and exits 0 only when every task in examples/demo/tasks.yaml ended as expected.
//! Skipped (with a printed reason) when the control plane is not built, except under CI, where that fails.

use std::io::Write as _;
use std::process::Command;

// Where the control plane binaries are comes from the environment: the test's edge.
#[allow(clippy::disallowed_methods)]
#[test]
fn the_demo_prints_its_table_and_every_task_ends_as_expected() {
    if let Err(why) = kube_testenv::bins::locate(|key| std::env::var_os(key)) {
        assert!(
            !kube_testenv::in_ci(),
            "the demo needs the kube-apiserver + etcd control plane: {why}"
        );
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED the demo: no Kubernetes control plane: {why}"
        );
        return;
    }
    let root = cache_paths::package_dir(cache_paths::process_env, env!("CARGO_MANIFEST_DIR"))
        .join("../..");
    let logs = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_demo-driver"))
        .current_dir(&root)
        .arg("--log-dir")
        .arg(logs.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo-driver failed:\n{stdout}\n{stderr}"
    );
    for expected in [
        "TASK ",
        "template-overrides → gpu-sizing → team-labels → guardrails",
        "rule `allowedRegistries`",
        "exit code 3",
        "agent exited 0",
    ] {
        assert!(
            stdout.contains(expected),
            "the demo's output has {expected:?}:\n{stdout}"
        );
    }
}
