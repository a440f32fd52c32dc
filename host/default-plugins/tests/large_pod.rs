//! The embedded default plugins on a pod near the API server's size limit (~1 MiB), run as the agent runs them (the
//! real runtime, a fresh instance per step) with a memory cap a quarter of the default. Their allocator, policy-kit's
//! bump arena, never reuses freed memory: this proves a large pod stays far from the cap all the same.

use policy_runtime::{ChainStep, EngineConfig, Limits, PolicyChain, PolicyEngine, TaskContext};
use serde_json::{Value, json};

fn large_pod() -> Value {
    let env: Vec<Value> = (0..4000)
        .map(|i| json!({"name": format!("VAR_{i}"), "value": "x".repeat(200)}))
        .collect();
    let annotations: serde_json::Map<String, Value> = (0..1000)
        .map(|i| (format!("note-{i}"), json!("y".repeat(100))))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "large", "labels": {"team": "a"}, "annotations": annotations},
        "spec": {"containers": [{
            "name": "clearml-task", "image": "docker.io/library/python:3.11",
            "resources": {"limits": {"memory": "1Gi"}}, "env": env,
        }]},
    })
}

#[test]
fn a_one_mebibyte_pod_passes_the_default_chain_with_16_mib_per_policy() {
    let engine = PolicyEngine::new(EngineConfig::default()).unwrap();
    // A generous timeout: the point is memory, and CI machines are slow.
    let limits = Limits::from_ms_and_mib(5_000, 16);
    let configs = [
        (
            "template-overrides",
            json!({"templateOverrides": {"labels": {"team": "b"}, "resources": {"limits": {"memory": "2Gi"}},
                "env": [{"name": "EXTRA", "value": "1"}]}}),
        ),
        (
            "gpu-sizing",
            json!({"gpus": 1, "maxGpus": 4, "cpuPerGpu": 4, "memoryPerGpu": "16Gi"}),
        ),
        (
            "team-labels",
            json!({"userLabel": "clearml.ai/user", "projectLabel": "clearml.ai/project"}),
        ),
        (
            "guardrails",
            json!({"requireLimits": ["memory"], "allowedRegistries": ["docker.io/library"]}),
        ),
    ];
    let steps = configs
        .into_iter()
        .map(|(name, config)| ChainStep {
            policy: engine
                .load(name, default_plugins::get(name).unwrap(), None, limits)
                .unwrap(),
            config_json: config.to_string(),
        })
        .collect();
    let chain = PolicyChain::new(steps);
    let pod = large_pod();
    assert!(pod.to_string().len() > 1_000_000);
    let task = TaskContext {
        id: "0123456789abcdef".into(),
        user: Some("jane".into()),
        project: Some("nlp".into()),
        queue_name: "q".into(),
        ..TaskContext::default()
    };
    let outcome = chain.run(&pod, &task, Some("q")).unwrap();
    // templateOverrides replaces the env (the chart's rule); the 1,000 annotations pass through every step.
    let spec = outcome.typed.spec.unwrap();
    assert_eq!(spec.containers[0].env.as_ref().unwrap()[0].name, "EXTRA");
    assert_eq!(outcome.typed.metadata.annotations.unwrap().len(), 1000);
    let labels = outcome.typed.metadata.labels.unwrap();
    assert_eq!(labels["team"], "b");
    assert_eq!(labels["clearml.ai/user"], "jane");
}
