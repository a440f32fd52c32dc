//! The crate used the way an author would: the Rust policy template's golden cases in a plain `cargo test`.

// Test helpers may unwrap too: a panic is the test failure we want (clippy only exempts #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use policy_testing::{PolicyUnderTest, TaskContext};
use serde_json::json;

fn template_wasm() -> PathBuf {
    cache_paths::test_policy("rust-policy-template")
}

#[test]
fn template_cases_pass_in_one_test() {
    policy_testing::assert_cases(template_wasm(), template_cases());
}

fn template_cases() -> PathBuf {
    cache_paths::package_dir(cache_paths::process_env, env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/rust-policy-template/cases")
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
