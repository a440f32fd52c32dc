//! The crate used the way an author would: the Rust policy template's golden cases in a plain `cargo test`.

// Test helpers may unwrap too: a panic is the test failure we want (clippy only exempts #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use policy_testing::{PolicyUnderTest, TaskContext};
use serde_json::json;

fn template_wasm() -> PathBuf {
    let dir = std::env::var_os("POLICY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/clearml-k8s-agent/policies")
        });
    dir.join("rust-policy-template.wasm")
}

#[test]
fn template_cases_pass() {
    let cases = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/rust-policy-template/cases"
    );
    policy_testing::assert_cases(template_wasm(), cases);
}

#[test]
fn single_evaluation_returns_the_pod_or_a_typed_error() {
    let policy = PolicyUnderTest::load(template_wasm()).unwrap();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i"}]}});
    let task = TaskContext::for_test("t1", "q");
    let out = policy
        .transform(&pod, &task, &json!({"labels": {"a": "b"}}))
        .unwrap();
    assert_eq!(out["metadata"]["labels"]["a"], "b");
    let err = policy
        .transform(&pod, &task, &json!({"nope": 1}))
        .unwrap_err();
    assert!(
        matches!(err.kind, policy_testing::EvalErrorKind::InvalidConfig(_)),
        "{err}"
    );
}
