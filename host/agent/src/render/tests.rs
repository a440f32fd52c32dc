use serde_json::json;

use super::*;
use crate::fixtures;

#[test]
fn base_pod_has_what_the_agent_owns_and_the_base_template() {
    let config = fixtures::config();
    let queue = fixtures::queue("red", json!({}));
    let task = fixtures::task("red");
    let pod = base_pod(&config, &queue, "q-red-id", &task, &fixtures::identity()).unwrap();
    assert_eq!(
        pod["metadata"]["name"],
        "clearml-id-7c0ffee0d15c4a5e9b3f2a1d0c9b8a77"
    );
    assert_eq!(pod["metadata"]["namespace"], "clearml");
    let labels = &pod["metadata"]["labels"];
    assert_eq!(labels["clearml-task-id"], task.id.as_str());
    assert_eq!(labels["clearml-agent-queue"], "q-red-id");
    assert_eq!(labels["clearml-agent-queue-name"], "red");
    assert_eq!(labels["clearml-agent-instance"], "agent-test");
    assert_eq!(labels["team"], "red", "basePodTemplate labels");
    assert_eq!(pod["spec"]["restartPolicy"], "Never");
    let container = &pod["spec"]["containers"][0];
    assert_eq!(container["name"], "clearml-task");
    assert_eq!(container["image"], "ubuntu:24.04");
    assert_eq!(container["resources"]["limits"]["memory"], "1Gi");
    let script = container["command"][2].as_str().unwrap();
    assert!(script.contains("clearml_agent execute --full-monitoring --require-queue --id 7c0ffee0d15c4a5e9b3f2a1d0c9b8a77"));
    policy_runtime::pod::validate_pod(&pod).unwrap();
}

#[test]
fn credentials_only_by_secret_reference() {
    let config = fixtures::config();
    let pod = base_pod(
        &config,
        &fixtures::queue("red", json!({})),
        "q",
        &fixtures::task("red"),
        &fixtures::identity(),
    )
    .unwrap();
    let text = pod.to_string();
    assert!(!text.contains(config.credentials.access_key.expose()));
    assert!(!text.contains(config.credentials.secret_key.expose()));
    let env = pod["spec"]["containers"][0]["env"].as_array().unwrap();
    let secret_ref = env
        .iter()
        .find(|e| e["name"] == "CLEARML_API_SECRET_KEY")
        .unwrap();
    assert_eq!(
        secret_ref["valueFrom"]["secretKeyRef"],
        json!({"name": "agent-test-credentials", "key": "CLEARML_API_SECRET_KEY"})
    );
    let host = env
        .iter()
        .find(|e| e["name"] == "CLEARML_API_HOST")
        .unwrap();
    assert_eq!(host["value"], "http://clearml-apiserver:8008");
}

#[test]
fn image_falls_back_from_task_to_queue_to_default() {
    let config = fixtures::config();
    let mut queue = fixtures::queue("red", json!({}));
    let mut task = fixtures::task("red");
    assert_eq!(image_for(&config, &queue, &task), "ubuntu:24.04");
    queue.settings.default_image = Some("python:3.12".into());
    assert_eq!(image_for(&config, &queue, &task), "python:3.12");
    task.image = Some("nvcr.io/nvidia/pytorch:24.10-py3".into());
    assert_eq!(
        image_for(&config, &queue, &task),
        "nvcr.io/nvidia/pytorch:24.10-py3"
    );
    task.image = Some("  ".into());
    assert_eq!(image_for(&config, &queue, &task), "python:3.12");
}

#[test]
fn image_entrypoint_mode_has_no_command_and_passes_the_task_id() {
    let config = fixtures::config();
    let mut queue = fixtures::queue("red", json!({}));
    queue.settings.use_image_entrypoint = true;
    let pod = base_pod(
        &config,
        &queue,
        "q",
        &fixtures::task("red"),
        &fixtures::identity(),
    )
    .unwrap();
    let container = &pod["spec"]["containers"][0];
    assert!(container.get("command").is_none());
    let env = container["env"].as_array().unwrap();
    assert!(env.iter().any(
        |e| e["name"] == "CLEARML_TASK_ID" && e["value"] == "7c0ffee0d15c4a5e9b3f2a1d0c9b8a77"
    ));
}

#[test]
fn label_values_are_sanitised() {
    assert_eq!(label_value("1xGPU"), "1xGPU");
    assert_eq!(label_value("my queue/gpu"), "my_queue_gpu");
    assert_eq!(label_value("-x-"), "x");
    assert_eq!(label_value(&"a".repeat(80)).len(), 63);
}
