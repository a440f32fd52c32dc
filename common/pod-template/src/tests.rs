use serde_json::json;

use serde_json::Value;

use super::*;

fn template(value: Value) -> Template {
    Template::from_value(&value, "templateOverrides").unwrap()
}

/// A base pod as the host renders it from the doc's `basePodTemplate` (team=red, 1Gi), plus the agent's parts.
fn base_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "clearml-id-abc",
            "labels": {"team": "red", "clearml-task-id": "abc", "clearml-agent-queue": "q1"}
        },
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "clearml-task",
                "image": "python:3.11",
                "resources": {"limits": {"memory": "1Gi"}},
                "env": [{"name": "CLEARML_API_HOST", "value": "http://api"}, {"name": "BASE", "value": "1"}]
            }]
        }
    })
}

#[test]
fn unknown_key_names_key_and_path() {
    let err = Template::from_value(
        &json!({"labels": {}, "nodeSelectr": {}}),
        "agentk8sglue.queues.red.templateOverrides",
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("`nodeSelectr`"), "{msg}");
    assert!(
        msg.contains("agentk8sglue.queues.red.templateOverrides"),
        "{msg}"
    );
    assert!(msg.contains("nodeSelector"), "known keys listed: {msg}");
}

#[test]
fn unknown_resources_key_is_reported_with_path() {
    let err = Template::from_value(&json!({"resources": {"limit": {"cpu": 1}}}), "t").unwrap_err();
    assert_eq!(
        err,
        Error::UnknownKey {
            path: "t.resources".into(),
            key: "limit".into(),
            known: "limits, requests, claims".into()
        }
    );
}

#[test]
fn wrong_types_are_reported_with_path() {
    let err =
        Template::from_value(&json!({"env": [{"name": "A", "value": {"x": 1}}]}), "t").unwrap_err();
    assert_eq!(
        err.to_string(),
        "t.env[0].value: expected a string, found a map"
    );
    let err = Template::from_value(&json!({"volumes": [{"hostPath": {}}]}), "t").unwrap_err();
    assert_eq!(
        err.to_string(),
        "t.volumes[0].name: expected a string, found nothing"
    );
    let err = Template::from_value(&json!({"hostNetwork": "yes"}), "t").unwrap_err();
    assert_eq!(
        err.to_string(),
        "t.hostNetwork: expected true or false, found a string"
    );
    let err = Template::from_value(&json!([1]), "t").unwrap_err();
    assert_eq!(
        err.to_string(),
        "t: expected a map of pod template fields, found a list"
    );
}

#[test]
fn numbers_become_strings_where_kubernetes_wants_strings() {
    let t = template(json!({
        "resources": {"limits": {"nvidia.com/gpu": 1, "cpu": 0.5}},
        "labels": {"tier": 3, "gpu": true},
        "env": [{"name": "N", "value": 64}]
    }));
    assert_eq!(
        t.get("resources"),
        Some(&json!({"limits": {"nvidia.com/gpu": "1", "cpu": "0.5"}}))
    );
    assert_eq!(t.get("labels"), Some(&json!({"tier": "3", "gpu": "true"})));
    assert_eq!(t.get("env"), Some(&json!([{"name": "N", "value": "64"}])));
}

#[test]
fn null_and_empty_template_inherit_everything() {
    for t in [json!(null), json!({}), json!({"labels": null})] {
        let mut pod = base_pod();
        apply(&mut pod, &template(t), MergeStrategy::Replace).unwrap();
        assert_eq!(pod, base_pod());
    }
}

#[test]
fn replace_keeps_agent_labels_and_env() {
    let mut pod = base_pod();
    let t = template(json!({
        "labels": {"team": "green", "clearml-task-id": "evil"},
        "env": [{"name": "MY_ENV", "value": "my_value"}, {"name": "CLEARML_API_HOST", "value": "http://evil"}],
        "resources": {"limits": {"memory": "2Gi"}}
    }));
    apply(&mut pod, &t, MergeStrategy::Replace).unwrap();
    assert_eq!(
        pod["metadata"]["labels"],
        json!({"team": "green", "clearml-task-id": "abc", "clearml-agent-queue": "q1"})
    );
    assert_eq!(
        pod["spec"]["containers"][0]["env"],
        json!([{"name": "MY_ENV", "value": "my_value"}, {"name": "CLEARML_API_HOST", "value": "http://api"}])
    );
    assert_eq!(
        pod["spec"]["containers"][0]["resources"],
        json!({"limits": {"memory": "2Gi"}})
    );
}

#[test]
fn replace_replaces_whole_field() {
    let mut pod = base_pod();
    apply(
        &mut pod,
        &template(json!({"resources": {"requests": {"cpu": "1"}}})),
        MergeStrategy::Replace,
    )
    .unwrap();
    assert_eq!(
        pod["spec"]["containers"][0]["resources"],
        json!({"requests": {"cpu": "1"}})
    );
}

#[test]
fn deep_merges_maps_and_named_lists() {
    let mut pod = base_pod();
    let t = template(json!({
        "resources": {"limits": {"nvidia.com/gpu": 2}},
        "env": [{"name": "BASE", "value": "2"}, {"name": "NEW", "value": "x"}],
        "labels": {"team": "blue"}
    }));
    apply(&mut pod, &t, MergeStrategy::Deep).unwrap();
    let c = &pod["spec"]["containers"][0];
    assert_eq!(
        c["resources"],
        json!({"limits": {"memory": "1Gi", "nvidia.com/gpu": "2"}})
    );
    assert_eq!(
        c["env"],
        json!([{"name": "CLEARML_API_HOST", "value": "http://api"}, {"name": "BASE", "value": "2"}, {"name": "NEW", "value": "x"}])
    );
    assert_eq!(pod["metadata"]["labels"]["team"], "blue");
    assert_eq!(pod["metadata"]["labels"]["clearml-task-id"], "abc");
}

#[test]
fn deep_replaces_unkeyed_lists_and_merges_mounts_by_path() {
    let merged = deep_merge("tolerations", json!([{"key": "a"}]), &json!([{"key": "b"}]));
    assert_eq!(merged, json!([{"key": "b"}]));
    let merged = deep_merge(
        "volumeMounts",
        json!([{"name": "d", "mountPath": "/a"}]),
        &json!([{"name": "d", "mountPath": "/b"}, {"name": "d", "mountPath": "/a", "readOnly": true}]),
    );
    assert_eq!(
        merged,
        json!([{"name": "d", "mountPath": "/a", "readOnly": true}, {"name": "d", "mountPath": "/b"}])
    );
}

#[test]
fn fields_land_in_the_right_places() {
    let mut pod = base_pod();
    let t = template(json!({
        "podSecurityContext": {"runAsUser": 1000},
        "containerSecurityContext": {"allowPrivilegeEscalation": false},
        "nodeSelector": {"pool": "gpu"},
        "priorityClassName": "high",
        "annotations": {"a": "b"}
    }));
    apply(&mut pod, &t, MergeStrategy::Replace).unwrap();
    assert_eq!(pod["spec"]["securityContext"], json!({"runAsUser": 1000}));
    assert_eq!(
        pod["spec"]["containers"][0]["securityContext"],
        json!({"allowPrivilegeEscalation": false})
    );
    assert_eq!(pod["spec"]["nodeSelector"], json!({"pool": "gpu"}));
    assert_eq!(pod["spec"]["priorityClassName"], "high");
    assert_eq!(pod["metadata"]["annotations"], json!({"a": "b"}));
}

#[test]
fn task_container_is_named_one_else_first() {
    let mut pod = base_pod();
    pod["spec"]["containers"] = json!([{"name": "sidecar"}, {"name": "clearml-task"}]);
    assert_eq!(task_container_index(&pod), Some(1));
    pod["spec"]["containers"] = json!([{"name": "main"}, {"name": "sidecar"}]);
    assert_eq!(task_container_index(&pod), Some(0));
    apply(
        &mut pod,
        &template(json!({"env": [{"name": "A", "value": "1"}]})),
        MergeStrategy::Replace,
    )
    .unwrap();
    assert_eq!(pod["spec"]["containers"][1], json!({"name": "sidecar"}));
    pod["spec"]["containers"] = json!([]);
    assert!(matches!(
        apply(
            &mut pod,
            &template(json!({"env": []})),
            MergeStrategy::Replace
        ),
        Err(Error::InvalidPod(_))
    ));
}

#[test]
fn empty_override_removes_the_field() {
    let mut pod = base_pod();
    apply(
        &mut pod,
        &template(json!({"resources": {}})),
        MergeStrategy::Replace,
    )
    .unwrap();
    assert!(pod["spec"]["containers"][0].get("resources").is_none());
}

#[test]
fn merge_templates_follows_the_chart() {
    let base =
        template(json!({"labels": {"team": "red"}, "resources": {"limits": {"memory": "1Gi"}}}));
    let blue = template(json!({"labels": {"team": "blue"}}));
    let merged = merge_templates(&base, &blue, MergeStrategy::Replace);
    assert_eq!(
        merged.to_value(),
        json!({"labels": {"team": "blue"}, "resources": {"limits": {"memory": "1Gi"}}})
    );
    let gpu = template(json!({"resources": {"limits": {"nvidia.com/gpu": 1}}}));
    let deep = merge_templates(&base, &gpu, MergeStrategy::Deep);
    assert_eq!(
        deep.get("resources"),
        Some(&json!({"limits": {"memory": "1Gi", "nvidia.com/gpu": "1"}}))
    );
}

#[test]
fn deserialize_and_strategy_names() {
    let t: Template = serde_json::from_value(json!({"schedulerName": "volcano"})).unwrap();
    assert_eq!(t.get("schedulerName"), Some(&json!("volcano")));
    let err = serde_json::from_value::<Template>(json!({"bogus": 1})).unwrap_err();
    assert!(err.to_string().contains("unknown key `bogus` at template"));
    let s: MergeStrategy = serde_json::from_value(json!("deep")).unwrap();
    assert_eq!(s, MergeStrategy::Deep);
    assert_eq!(MergeStrategy::default().to_string(), "replace");
}

#[test]
fn deep_merge_cannot_change_agent_labels_or_env() {
    let mut pod = base_pod();
    let t = template(json!({
        "labels": {"clearml-task-id": "other", "extra": "x"},
        "env": [{"name": "CLEARML_API_HOST", "value": "http://evil"}, {"name": "BASE", "value": "2"}]
    }));
    apply(&mut pod, &t, MergeStrategy::Deep).unwrap();
    assert_eq!(pod["metadata"]["labels"]["clearml-task-id"], "abc");
    assert_eq!(pod["metadata"]["labels"]["extra"], "x");
    assert_eq!(
        pod["spec"]["containers"][0]["env"],
        json!([{"name": "CLEARML_API_HOST", "value": "http://api"}, {"name": "BASE", "value": "2"}])
    );
}
