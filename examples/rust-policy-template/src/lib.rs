//! A queue policy in Rust, and the template to copy for your own.
//!
//! It adds labels and sets resources on the task container, both from the queue's config:
//! ```yaml
//! labels: { team: vision }                  # added to the pod (never over the agent's clearml-* labels)
//! resources:                                # set on the task container (the first container)
//!   limits: { cpu: "4", memory: 16Gi }
//!   requests: { cpu: "2" }
//! taskLabel: true                           # also label the pod with the task's user (sanitised)
//! ```
//! The logic lives in `policy.rs` as plain functions over `serde_json::Value`, so it is unit-tested natively
//! (`cargo test`) and can be benchmarked against the component; this file is only the WIT glue.

pub mod policy;

#[cfg(target_arch = "wasm32")]
mod component {
    // `wit` is the WIT package beside Cargo.toml (in this repository a link to wit/0.1.0; see README.md).
    wit_bindgen::generate!({ path: "wit", world: "queue-policy" });

    use clearml::queue_policy::host::log;
    use clearml::queue_policy::types::{LogLevel, PolicyError, Task};
    use exports::clearml::queue_policy::policy::Guest;

    struct TemplatePolicy;

    impl Guest for TemplatePolicy {
        fn validate_config(config: String) -> Result<(), PolicyError> {
            crate::policy::parse_config(&config)
                .map(|_| ())
                .map_err(PolicyError::InvalidConfig)
        }

        fn transform(pod: String, task: Task, config: String) -> Result<String, PolicyError> {
            let config =
                crate::policy::parse_config(&config).map_err(PolicyError::InvalidConfig)?;
            let mut pod: serde_json::Value = serde_json::from_str(&pod)
                .map_err(|e| PolicyError::Internal(format!("pod is not JSON: {e}")))?;
            let task = crate::policy::TaskInfo {
                id: &task.id,
                user: task.user.as_deref(),
            };
            crate::policy::transform(&mut pod, &task, &config).map_err(PolicyError::Internal)?;
            log(
                LogLevel::Debug,
                &format!("labelled and sized pod for task {}", task.id),
            );
            Ok(pod.to_string())
        }
    }

    export!(TemplatePolicy);
}
