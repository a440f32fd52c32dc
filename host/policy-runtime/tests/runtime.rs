//! The runtime against real components: the sample policy and the hostile test components
//! (`host/policy-runtime/test-components`), built for wasm32-wasip2 by `just wasm` into `$POLICY_DIR`.

// Test helpers may unwrap too: a panic is the test failure we want (clippy only exempts #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;
use std::time::Duration;

use policy_runtime::cache::CacheOutcome;
use policy_runtime::engine::EvalContext;
use policy_runtime::{
    ChainStep, EngineConfig, EvalErrorKind, Limits, LoadError, Policy, PolicyChain, PolicyEngine,
    TaskContext,
};
use serde_json::{Value, json};

fn component(name: &str) -> Vec<u8> {
    let path = cache_paths::test_policy(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}): build the test components first with `just wasm`",
            path.display()
        )
    })
}

fn engine() -> &'static PolicyEngine {
    static ENGINE: OnceLock<PolicyEngine> = OnceLock::new();
    ENGINE.get_or_init(|| PolicyEngine::new(EngineConfig::default()).unwrap())
}

fn hostile() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        engine()
            .load(
                "test-hostile",
                &component("test-hostile"),
                None,
                Limits::default(),
            )
            .unwrap()
    })
}

fn sample() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        engine()
            .load(
                "rust-policy-template",
                &component("rust-policy-template"),
                None,
                Limits::default(),
            )
            .unwrap()
    })
}

fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "clearml-id-abc", "labels": {"clearml-task-id": "abc"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "clearml-task", "image": "python:3.11"}]}
    })
}

fn task() -> TaskContext {
    TaskContext::for_test("abc", "default")
}

fn run_hostile(mode: &str) -> Result<Value, policy_runtime::EvalError> {
    let config = json!({ "mode": mode }).to_string();
    policy_runtime::chain::run_step(hostile(), &pod(), &task(), &config, None).map(|(pod, _)| pod)
}

fn kind_of(mode: &str) -> EvalErrorKind {
    run_hostile(mode).expect_err(mode).kind
}

#[test]
fn sample_policy_labels_and_sizes_the_pod() {
    let config =
        json!({"labels": {"team": "vision"}, "resources": {"limits": {"cpu": "2"}}}).to_string();
    let chain = PolicyChain::new(vec![ChainStep {
        policy: sample().clone(),
        config_json: config,
    }]);
    chain.validate_configs(Some("default")).unwrap();
    let outcome = chain.run(&pod(), &task(), Some("default")).unwrap();
    assert_eq!(outcome.pod()["metadata"]["labels"]["team"], "vision");
    assert_eq!(
        outcome.pod()["spec"]["containers"][0]["resources"]["limits"]["cpu"],
        "2"
    );
    let step = &outcome.steps[0];
    assert_eq!(step.policy, "rust-policy-template");
    let patch = outcome.patch(0).unwrap();
    let ops: Vec<String> = patch.0.iter().map(|op| op.to_string()).collect();
    assert!(
        ops.iter().any(|op| op.contains("/metadata/labels/team")),
        "{ops:?}"
    );
}

#[test]
fn a_policy_that_loops_forever_times_out_and_the_host_carries_on() {
    let err = run_hostile("loop").unwrap_err();
    match &err.kind {
        EvalErrorKind::Timeout { limit, elapsed } => {
            assert_eq!(*limit, Limits::default().timeout);
            assert!(*elapsed >= *limit, "{elapsed:?}");
            assert!(*elapsed < Duration::from_secs(2), "{elapsed:?}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(err.policy, "test-hostile");
    assert_eq!(err.task_id.as_deref(), Some("abc"));
    assert!(err.to_string().contains("timed out"), "{err}");
    // The same policy evaluates fine right after.
    assert_eq!(run_hostile("ok").unwrap(), pod());
}

#[test]
fn a_policy_that_allocates_without_bound_hits_its_memory_cap() {
    // A deadline far beyond what reaching 64 MiB takes: on a loaded CI machine the default 100 ms could fire first
    // (it did once), and this test is about the memory cap, not the clock.
    let patient = engine()
        .load(
            "test-hostile",
            &component("test-hostile"),
            None,
            Limits {
                timeout: Duration::from_secs(10),
                ..Limits::default()
            },
        )
        .unwrap();
    let config = json!({"mode": "alloc"}).to_string();
    let err = patient
        .transform(&pod().to_string(), &task(), &config, None)
        .unwrap_err();
    assert_eq!(
        err.kind,
        EvalErrorKind::MemoryLimit {
            limit_bytes: Limits::default().memory_bytes
        }
    );
    assert_eq!(run_hostile("ok").unwrap(), pod());
}

#[test]
fn a_smaller_memory_cap_is_enforced_per_policy() {
    let small = engine()
        .load(
            "test-hostile",
            &component("test-hostile"),
            None,
            Limits {
                memory_bytes: 4 * 1024 * 1024,
                ..Limits::default()
            },
        )
        .unwrap();
    let config = json!({"mode": "alloc"}).to_string();
    let err = small
        .transform(&pod().to_string(), &task(), &config, None)
        .unwrap_err();
    assert_eq!(
        err.kind,
        EvalErrorKind::MemoryLimit {
            limit_bytes: 4 * 1024 * 1024
        }
    );
}

#[test]
fn a_panic_is_a_trap_carrying_the_panic_message() {
    match kind_of("panic") {
        EvalErrorKind::Trap(message) => assert!(message.contains("boom"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn bad_output_is_refused_with_what_was_wrong() {
    assert!(matches!(kind_of("bad-json"), EvalErrorKind::BadOutput(_)));
    match kind_of("configmap") {
        EvalErrorKind::InvalidPod(message) => assert!(message.contains("ConfigMap"), "{message}"),
        other => panic!("{other:?}"),
    }
    match kind_of("unknown-field") {
        EvalErrorKind::InvalidPod(message) => {
            assert!(
                message.contains("spec.containers[0].resourcez"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn policy_errors_map_to_typed_errors() {
    assert!(
        matches!(kind_of("reject"), EvalErrorKind::Rejected(m) if m.contains("asked for too much"))
    );
    assert!(matches!(kind_of("internal"), EvalErrorKind::Internal(_)));
    let err = hostile()
        .validate_config(
            r#"{"mode":"invalid"}"#,
            EvalContext {
                queue: Some("gpu"),
                task_id: None,
            },
        )
        .unwrap_err();
    assert!(matches!(err.kind, EvalErrorKind::InvalidConfig(ref m) if m.contains("`mode`")));
    assert_eq!(
        err.to_string(),
        "policy `test-hostile` (queue `gpu`): invalid config: `mode`: `invalid` is not a mode"
    );
}

#[test]
fn logs_and_stdio_are_captured_and_capped() {
    let config = json!({"mode": "print"}).to_string();
    let evaluation = hostile()
        .transform(&pod().to_string(), &task(), &config, None)
        .unwrap();
    let messages: Vec<&str> = evaluation.logs.iter().map(|r| r.message.as_str()).collect();
    assert!(messages.contains(&"hello from log"), "{messages:?}");
    assert!(messages.contains(&"hello from stdout"), "{messages:?}");
    assert!(messages.contains(&"hello from stderr"), "{messages:?}");

    let config = json!({"mode": "log-spam"}).to_string();
    let evaluation = hostile()
        .transform(&pod().to_string(), &task(), &config, None)
        .unwrap();
    assert_eq!(evaluation.logs.len(), 65);
    assert!(
        evaluation.logs[64]
            .message
            .contains("936 more log records dropped"),
        "{:?}",
        evaluation.logs[64]
    );
}

#[test]
fn the_sandbox_gives_no_env_args_files_or_network() {
    let pod = run_hostile("probe").unwrap();
    assert_eq!(
        pod["metadata"]["annotations"]["probe"],
        "env=0 args=0 file=denied dir=denied net=denied"
    );
}

#[test]
fn components_for_another_world_or_version_are_refused() {
    let err = engine()
        .load(
            "wrong-world",
            &component("test-wrong-world"),
            None,
            Limits::default(),
        )
        .unwrap_err();
    assert!(matches!(err, LoadError::MissingExport { .. }), "{err}");
    assert!(err.to_string().contains("greet"), "{err}");

    let err = engine()
        .load(
            "old-version",
            &component("test-old-version"),
            None,
            Limits::default(),
        )
        .unwrap_err();
    assert!(
        matches!(err, LoadError::IncompatibleVersion { ref found, .. } if found == "0.0.1"),
        "{err}"
    );
}

#[test]
fn forbidden_imports_are_refused_by_name() {
    let err = engine()
        .load(
            "forbidden",
            &component("test-forbidden-import"),
            None,
            Limits::default(),
        )
        .unwrap_err();
    assert!(matches!(err, LoadError::ForbiddenImport { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("`wasi:http/outgoing-handler@0.3.0`"),
        "{err}"
    );
}

#[test]
fn a_wrong_sha256_is_refused() {
    let bytes = component("rust-policy-template");
    let right = policy_runtime::inspect::sha256_hex(&bytes);
    engine()
        .load("p", &bytes, Some(&right), Limits::default())
        .unwrap();
    let wrong = "0".repeat(64);
    let err = engine()
        .load("p", &bytes, Some(&wrong), Limits::default())
        .unwrap_err();
    assert!(matches!(err, LoadError::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&right), "{err}");
    let err = engine()
        .load("p", &bytes, Some("sha256:nothex"), Limits::default())
        .unwrap_err();
    assert!(matches!(err, LoadError::BadDigest { .. }), "{err}");
}

#[test]
fn a_corrupted_cache_entry_is_recompiled_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let engine = PolicyEngine::new(EngineConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..EngineConfig::default()
    })
    .unwrap();
    let bytes = component("rust-policy-template");
    let first = engine.load("p", &bytes, None, Limits::default()).unwrap();
    assert_eq!(first.load_stats().outcome, CacheOutcome::Compiled);
    let hit = engine.load("p", &bytes, None, Limits::default()).unwrap();
    assert_eq!(hit.load_stats().outcome, CacheOutcome::Hit);

    // Flip bytes in the middle of every entry, and truncate one: both must be detected.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let mut data = std::fs::read(&path).unwrap();
        let mid = data.len() / 2;
        for b in &mut data[mid..mid + 64] {
            *b ^= 0xA5;
        }
        std::fs::write(&path, &data).unwrap();
    }
    let recompiled = engine.load("p", &bytes, None, Limits::default()).unwrap();
    assert_eq!(recompiled.load_stats().outcome, CacheOutcome::Recompiled);
    let out = recompiled
        .transform(&pod().to_string(), &task(), "null", None)
        .unwrap();
    assert!(serde_json::from_str::<Value>(&out.value).is_ok());
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::write(&path, b"short").unwrap();
    }
    let again = engine.load("p", &bytes, None, Limits::default()).unwrap();
    assert_eq!(again.load_stats().outcome, CacheOutcome::Recompiled);
    assert_eq!(
        engine
            .load("p", &bytes, None, Limits::default())
            .unwrap()
            .load_stats()
            .outcome,
        CacheOutcome::Hit
    );
}

#[test]
fn the_cache_is_owner_only_and_refuses_what_others_could_write() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("nested/precompiled");
    let engine = PolicyEngine::new(EngineConfig::with_cache_dir(Some(dir.clone()))).unwrap();
    assert_eq!(mode(&dir), 0o700, "a new cache directory is owner-only");
    let bytes = component("rust-policy-template");
    engine.load("p", &bytes, None, Limits::default()).unwrap();
    let entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!entries.is_empty());
    for entry in &entries {
        assert_eq!(mode(entry), 0o600, "{}", entry.display());
    }

    // An entry others could have replaced is recompiled, never loaded (and rewritten owner-only).
    for entry in &entries {
        std::fs::set_permissions(entry, std::fs::Permissions::from_mode(0o666)).unwrap();
    }
    let reloaded = engine.load("p", &bytes, None, Limits::default()).unwrap();
    assert_eq!(reloaded.load_stats().outcome, CacheOutcome::Recompiled);
    for entry in &entries {
        assert_eq!(mode(entry), 0o600, "{}", entry.display());
    }

    // A directory others can write is refused outright.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = PolicyEngine::new(EngineConfig::with_cache_dir(Some(dir.clone())))
        .err()
        .expect("a world-writable cache is refused");
    let text = err.to_string();
    assert!(
        text.contains("refusing the policy cache") && text.contains("mode 777"),
        "{text}"
    );
}

#[test]
fn nothing_a_policy_leaves_in_memory_reaches_the_next_evaluation() {
    // Freed pool slots are reset in place where PAGEMAP_SCAN is available (dirtied pages rewritten, kept
    // mapped): every evaluation must still start from the component's pristine memory, also when another
    // policy ran in between and the slots were shuffled.
    for round in 0..40 {
        let out = run_hostile("remember").unwrap();
        assert_eq!(
            out["metadata"]["annotations"]["remember"], "calls=1 held=1",
            "round {round}"
        );
        if round % 3 == 0 {
            let config = json!({"labels": {"team": "vision"}}).to_string();
            sample()
                .transform(&pod().to_string(), &task(), &config, None)
                .unwrap();
        }
    }
}

#[test]
fn a_failing_step_names_its_policy_and_stops_the_chain() {
    let chain = PolicyChain::new(vec![
        ChainStep {
            policy: sample().clone(),
            config_json: json!({"labels": {"team": "a"}}).to_string(),
        },
        ChainStep {
            policy: hostile().clone(),
            config_json: json!({"mode": "reject"}).to_string(),
        },
    ]);
    let err = chain.run(&pod(), &task(), Some("gpu")).unwrap_err();
    assert_eq!(err.policy, "test-hostile");
    assert_eq!(err.queue.as_deref(), Some("gpu"));
    assert!(err.kind.is_rejection());
}

#[test]
fn an_invalid_pod_in_a_chain_is_blamed_on_the_step_that_made_it() {
    let step = |mode: &str| ChainStep {
        policy: hostile().clone(),
        config_json: json!({ "mode": mode }).to_string(),
    };
    let sample_step = ChainStep {
        policy: sample().clone(),
        config_json: json!({"labels": {"team": "a"}}).to_string(),
    };
    // hostile(unknown-field) breaks the pod, the sample policy then passes it on: the first is to blame.
    let chain = PolicyChain::new(vec![step("ok"), step("unknown-field"), sample_step]);
    let err = chain.run(&pod(), &task(), Some("gpu")).unwrap_err();
    assert_eq!(err.policy, "test-hostile");
    assert!(
        matches!(&err.kind, EvalErrorKind::InvalidPod(m) if m.contains("resourcez")),
        "{err}"
    );
    // Output that is not JSON is blamed on its step, even when a later step passes it on.
    let sample_step = ChainStep {
        policy: sample().clone(),
        config_json: "null".to_string(),
    };
    let chain = PolicyChain::new(vec![sample_step, step("bad-json"), step("ok")]);
    let err = chain.run(&pod(), &task(), Some("gpu")).unwrap_err();
    assert_eq!(err.policy, "test-hostile");
    assert!(matches!(err.kind, EvalErrorKind::BadOutput(_)), "{err}");

    let chain = PolicyChain::new(vec![step("ok")]);
    let outcome = chain.run(&pod(), &task(), None).unwrap();
    assert!(outcome.patch(0).unwrap().0.is_empty());
    assert!(outcome.total_patch().0.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluations_run_concurrently_off_the_reactor() {
    let mut handles = Vec::new();
    for i in 0..32 {
        let engine = engine().clone();
        let policy = sample().clone();
        handles.push(tokio::spawn(async move {
            let task = TaskContext::for_test(&format!("t{i}"), "default");
            let config = json!({"labels": {"n": i.to_string()}}).to_string();
            engine
                .run_blocking(move || {
                    policy_runtime::chain::run_step(&policy, &pod(), &task, &config, None)
                })
                .await
                .map(|(pod, _)| pod)
        }));
    }
    for (i, handle) in handles.into_iter().enumerate() {
        let pod = handle.await.unwrap().unwrap();
        assert_eq!(pod["metadata"]["labels"]["n"], i.to_string());
    }
}
