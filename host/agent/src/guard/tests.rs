use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::*;
use crate::fixtures;

/// One change a policy might make to the pod.
type Change = Box<dyn Fn(&mut Pod)>;

fn base() -> Pod {
    let pod = crate::render::base_pod(
        &fixtures::config(),
        &fixtures::queue("red", json!({})),
        "q-red",
        &fixtures::task("red"),
        &fixtures::identity(),
    )
    .unwrap();
    serde_json::from_value(pod).unwrap()
}

fn expected(base: &Pod) -> Expected<'_> {
    Expected {
        base,
        use_image_entrypoint: false,
        secrets: &["secret-key-fixture-value"],
    }
}

#[test]
fn an_untouched_pod_passes() {
    let base = base();
    check(&base, &expected(&base)).unwrap();
}

#[test]
fn policies_may_add_labels_resources_and_sidecars() {
    let base = base();
    let mut pod = base.clone();
    pod.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("team".into(), "blue".into());
    let spec = pod.spec.as_mut().unwrap();
    spec.node_selector = Some([("gpu".to_string(), "a100".to_string())].into());
    let mut sidecar = spec.containers[0].clone();
    sidecar.name = "sidecar".into();
    sidecar.command = None;
    spec.containers.push(sidecar);
    check(&pod, &expected(&base)).unwrap();
}

#[test]
fn each_owned_field_is_defended() {
    let base = base();
    let cases: Vec<(&str, Change)> = vec![
        (
            "/metadata/name",
            Box::new(|p| p.metadata.name = Some("other".into())),
        ),
        (
            "/metadata/namespace",
            Box::new(|p| p.metadata.namespace = Some("kube-system".into())),
        ),
        (
            "/metadata/labels/clearml-task-id",
            Box::new(|p| {
                p.metadata
                    .labels
                    .as_mut()
                    .unwrap()
                    .remove("clearml-task-id");
            }),
        ),
        (
            "/metadata/labels/clearml-agent-instance",
            Box::new(|p| {
                p.metadata
                    .labels
                    .as_mut()
                    .unwrap()
                    .insert("clearml-agent-instance".into(), "thief".into());
            }),
        ),
        (
            "/spec/restartPolicy",
            Box::new(|p| p.spec.as_mut().unwrap().restart_policy = Some("Always".into())),
        ),
        (
            "/spec/containers",
            Box::new(|p| p.spec.as_mut().unwrap().containers[0].name = "main".into()),
        ),
        (
            "/spec/containers/0/command",
            Box::new(|p| {
                p.spec.as_mut().unwrap().containers[0].command = Some(vec!["sleep".into()])
            }),
        ),
        (
            "/spec/containers/0/env",
            Box::new(|p| {
                let env = p.spec.as_mut().unwrap().containers[0].env.as_mut().unwrap();
                let key = env
                    .iter_mut()
                    .find(|e| e.name == "CLEARML_API_SECRET_KEY")
                    .unwrap();
                key.value_from = None;
                key.value = Some("literal".into());
            }),
        ),
        (
            "/",
            Box::new(|p| {
                p.metadata
                    .annotations
                    .get_or_insert_with(Default::default)
                    .insert("leak".into(), "secret-key-fixture-value".into());
            }),
        ),
    ];
    for (field, change) in cases {
        let mut pod = base.clone();
        change(&mut pod);
        let violation = check(&pod, &expected(&base)).unwrap_err();
        assert_eq!(violation.field, field, "{violation}");
    }
}

#[test]
fn image_entrypoint_queues_may_set_the_command() {
    let base = base();
    let mut pod = base.clone();
    pod.spec.as_mut().unwrap().containers[0].command =
        Some(vec!["python".into(), "train.py".into()]);
    let mut expected = expected(&base);
    expected.use_image_entrypoint = true;
    check(&pod, &expected).unwrap();
}
