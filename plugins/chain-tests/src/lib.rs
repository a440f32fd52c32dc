//! The default plugins composed the way a queue's chain runs them (template-overrides first, guardrails last), on
//! the ClearML Enterprise doc's queues. Each plugin's own cases test it alone; these check that they compose: no
//! step undoes another's work, the agent's labels and env survive the whole chain, and guardrails accepts (or
//! refuses, with every reason) what the others produced. Native only: the logic is the same Rust the components run.

#[cfg(test)]
mod tests {
    use policy_kit::{Policy, PolicyError, Task, VecLogger, transform_str};
    use serde_json::{Value, json};

    /// One step: the policy's type and its config.
    type Step = (fn(&str, &Task, &str) -> Result<String, PolicyError>, Value);

    fn step<P: Policy>(pod: &str, task: &Task, config: &str) -> Result<String, PolicyError> {
        // validate-config at load, then transform, as the host does.
        policy_kit::parse_config_str::<P>(config)?;
        transform_str::<P>(pod, task, config, &mut VecLogger::default())
    }

    fn run_chain(pod: &Value, task: &Task, steps: &[Step]) -> Result<Value, PolicyError> {
        let mut pod = pod.to_string();
        for (run, config) in steps {
            pod = run(&pod, task, &config.to_string())?;
        }
        serde_json::from_str(&pod).map_err(|e| PolicyError::Internal(e.to_string()))
    }

    /// The base pod for the doc's `basePodTemplate` (team=red, 1Gi), as the host renders it.
    fn base_pod(queue: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "clearml-id-t1", "namespace": "clearml",
                         "labels": {"team": "red", "clearml-task-id": "t1", "clearml-agent-queue": "q1",
                                    "clearml-agent-queue-name": queue}},
            "spec": {"restartPolicy": "Never", "containers": [{
                "name": "clearml-task", "image": "nvcr.io/nvidia/pytorch:24.05-py3",
                "env": [{"name": "CLEARML_API_HOST", "value": "http://clearml-apiserver:8008"}],
                "resources": {"limits": {"memory": "1Gi"}}
            }]}
        })
    }

    fn task(queue: &str, properties: &[(&str, &str)]) -> Task {
        Task {
            id: "t1".into(),
            name: "train".into(),
            project: Some("Vision/Classification".into()),
            user: Some("Alice Smith".into()),
            queue_id: "q1".into(),
            queue_name: queue.into(),
            properties: properties
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            ..Task::default()
        }
    }

    fn default_chain(overrides: Value, guardrails: Value) -> Vec<Step> {
        vec![
            (
                step::<template_overrides::TemplateOverrides>,
                json!({"templateOverrides": overrides}),
            ),
            (
                step::<gpu_sizing::GpuSizing>,
                json!({"maxGpus": 4, "cpuPerGpu": 4, "memoryPerGpu": "16Gi"}),
            ),
            (
                step::<team_labels::TeamLabels>,
                json!({"labels": {"cost-center": "cc-4711"}, "userLabel": "clearml.ai/user"}),
            ),
            (step::<guardrails::Guardrails>, guardrails),
        ]
    }

    #[test]
    fn green_queue_with_gpus_by_property() {
        let green = json!({
            "labels": {"team": "green"}, "annotations": {"example": "example value"},
            "resources": {"limits": {"memory": "2Gi"}}, "env": [{"name": "MY_ENV", "value": "my_value"}]
        });
        let guard = json!({"requireLimits": ["memory"], "allowedRegistries": ["nvcr.io/nvidia"]});
        let out = run_chain(
            &base_pod("green"),
            &task("green", &[("k8s/gpus", "2")]),
            &default_chain(green, guard),
        )
        .unwrap();
        assert_eq!(
            out["metadata"]["labels"],
            json!({"team": "green", "cost-center": "cc-4711", "clearml.ai/user": "Alice-Smith",
                   "clearml-task-id": "t1", "clearml-agent-queue": "q1", "clearml-agent-queue-name": "green"})
        );
        assert_eq!(
            out["metadata"]["annotations"],
            json!({"example": "example value"})
        );
        let c = &out["spec"]["containers"][0];
        // gpu-sizing runs after the override: memory per GPU wins over the queue's 2Gi.
        assert_eq!(
            c["resources"],
            json!({"limits": {"memory": "32Gi", "nvidia.com/gpu": "2"}, "requests": {"cpu": "8", "memory": "32Gi"}})
        );
        assert_eq!(
            c["env"],
            json!([{"name": "MY_ENV", "value": "my_value"},
                   {"name": "CLEARML_API_HOST", "value": "http://clearml-apiserver:8008"}])
        );
    }

    #[test]
    fn red_queue_without_gpus_passes_through_unchanged_but_labelled() {
        let out = run_chain(
            &base_pod("red"),
            &task("red", &[]),
            &default_chain(json!({}), json!(null)),
        )
        .unwrap();
        let mut want = base_pod("red");
        want["metadata"]["labels"]["cost-center"] = json!("cc-4711");
        want["metadata"]["labels"]["clearml.ai/user"] = json!("Alice-Smith");
        assert_eq!(out, want);
    }

    #[test]
    fn guardrails_last_sees_what_the_others_did() {
        // A queue override that mounts the Docker socket: guardrails, last in the chain, refuses it.
        let risky = json!({
            "volumes": [{"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}],
            "containerSecurityContext": {"privileged": true}
        });
        let err = run_chain(
            &base_pod("risky"),
            &task("risky", &[]),
            &default_chain(risky, json!(null)),
        )
        .unwrap_err();
        let PolicyError::Reject(message) = err else {
            panic!("expected a reject, got {err:?}")
        };
        assert!(
            message.contains("rule `hostPath`: spec.volumes[0] (docker)"),
            "{message}"
        );
        assert!(
            message.contains("rule `privileged`: spec.containers[0] (clearml-task)"),
            "{message}"
        );
    }

    #[test]
    fn a_bad_gpu_request_stops_the_chain_with_the_users_message() {
        let err = run_chain(
            &base_pod("2xGPU"),
            &task("2xGPU", &[("k8s/gpus", "16")]),
            &default_chain(json!({}), json!(null)),
        )
        .unwrap_err();
        assert!(
            matches!(&err, PolicyError::Reject(m) if m.contains("allows at most 4 per task")),
            "{err}"
        );
    }
}
