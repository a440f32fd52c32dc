use policy_kit::VecLogger;
use serde_json::json;

use super::*;

fn pod() -> Value {
    json!({"spec": {"containers": [
        {"name": "log-shipper", "image": "fluent-bit"},
        {"name": "clearml-task", "image": "pytorch", "resources": {"limits": {"memory": "8Gi"}}}
    ]}})
}

fn task(properties: &[(&str, &str)], tags: &[&str]) -> Task {
    Task {
        queue_name: "gpu".into(),
        properties: properties
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        ..Task::default()
    }
}

fn run(task: &Task, config: Value) -> Result<Value, PolicyError> {
    let config = GpuSizing::parse_config(&config)?;
    GpuSizing::transform(pod(), task, &config, &mut VecLogger::default())
}

#[test]
fn property_beats_tag_beats_queue() {
    let config = json!({"gpus": 1});
    let t = task(&[("k8s/gpus", "3")], &["gpus=2"]);
    assert_eq!(
        run(&t, config.clone()).unwrap()["spec"]["containers"][1]["resources"]["limits"]["nvidia.com/gpu"],
        "3"
    );
    let t = task(&[], &["gpus=2"]);
    assert_eq!(
        run(&t, config.clone()).unwrap()["spec"]["containers"][1]["resources"]["limits"]["nvidia.com/gpu"],
        "2"
    );
    let t = task(&[], &[]);
    assert_eq!(
        run(&t, config).unwrap()["spec"]["containers"][1]["resources"]["limits"]["nvidia.com/gpu"],
        "1"
    );
}

#[test]
fn sidecars_are_untouched_and_no_request_means_no_change() {
    let out = run(&task(&[("properties/k8s-gpus", "1")], &[]), json!(null)).unwrap();
    assert_eq!(
        out["spec"]["containers"][0],
        json!({"name": "log-shipper", "image": "fluent-bit"})
    );
    assert_eq!(run(&task(&[], &[]), json!(null)).unwrap(), pod());
}

#[test]
fn over_max_rejects_or_clamps() {
    let t = task(&[("k8s/gpus", "8")], &[]);
    let err = run(&t, json!({"maxGpus": 4})).unwrap_err();
    assert!(
        matches!(&err, PolicyError::Reject(m) if m.contains("allows at most 4")),
        "{err}"
    );
    let mut log = VecLogger::default();
    let config = GpuSizing::parse_config(&json!({"maxGpus": 4, "overMax": "clamp"})).unwrap();
    let out = GpuSizing::transform(pod(), &t, &config, &mut log).unwrap();
    assert_eq!(
        out["spec"]["containers"][1]["resources"]["limits"]["nvidia.com/gpu"],
        "4"
    );
    assert!(
        log.0
            .iter()
            .any(|(l, m)| *l == Level::Warn && m.contains("clamped"))
    );
}

#[test]
fn non_numeric_request_is_rejected() {
    for value in ["two", "-1", "1.5", ""] {
        let err = run(&task(&[("k8s/gpus", value)], &[]), json!(null)).unwrap_err();
        assert!(
            matches!(&err, PolicyError::Reject(m) if m.contains("not a number of GPUs")),
            "{value}: {err}"
        );
    }
}

#[test]
fn per_gpu_cpu_and_memory_scale() {
    let out = run(
        &task(&[("k8s/gpus", "2")], &[]),
        json!({"cpuPerGpu": 4, "memoryPerGpu": "16Gi"}),
    )
    .unwrap();
    assert_eq!(
        out["spec"]["containers"][1]["resources"],
        json!({"limits": {"memory": "32Gi", "nvidia.com/gpu": "2"}, "requests": {"cpu": "8", "memory": "32Gi"}})
    );
}

#[test]
fn zero_gpus_removes_the_resource() {
    let mut p = pod();
    p["spec"]["containers"][1]["resources"] =
        json!({"limits": {"nvidia.com/gpu": "1"}, "requests": {"nvidia.com/gpu": "1"}});
    let config = GpuSizing::parse_config(&json!(null)).unwrap();
    let out = GpuSizing::transform(
        p,
        &task(&[("k8s/gpus", "0")], &[]),
        &config,
        &mut VecLogger::default(),
    )
    .unwrap();
    assert_eq!(out["spec"]["containers"][1].get("resources"), None);
}

#[test]
fn config_errors_name_the_key() {
    let cases = [
        (json!({"maxGpu": 4}), "unknown field `maxGpu`"),
        (
            json!({"gpus": 8, "maxGpus": 4}),
            "gpus: 8 is above maxGpus (4)",
        ),
        (json!({"gpus": "two"}), "config.gpus"),
        (json!({"cpuPerGpu": "4 cores"}), "config.cpuPerGpu"),
        (json!({"resourceName": "gpu"}), "resourceName"),
        (
            json!({"gpuTypes": {"a100": {"nodeSelectr": {}}}}),
            "config.gpuTypes.a100",
        ),
        (json!({"defaultGpuType": "h100"}), "defaultGpuType"),
    ];
    for (config, want) in cases {
        let err = GpuSizing::parse_config(&config).unwrap_err();
        assert!(
            matches!(&err, PolicyError::InvalidConfig(m) if m.contains(want)),
            "{config}: {err}"
        );
    }
}
