//! Wire types: request bodies and response `data` of the endpoints the agent calls. Responses are lenient (every
//! field defaults) because `only_fields` trims documents and servers add fields over time; requests omit unset
//! optional fields so the server applies its own defaults.
//!
//! By service: [`tasks`], [`queues`], [`workers`], [`events`]; everything is re-exported here.

mod events;
mod queues;
mod tasks;
mod workers;

pub use events::*;
pub use queues::*;
pub use tasks::*;
pub use workers::*;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // clearml-agent 3.0.3 helper/resource_monitor.py send_cluster_report: limits nest under `properties`.
    #[test]
    fn cluster_report_has_the_body_clearml_agent_sends() {
        let mut r = ClusterReport::new("k8s:glue:agent-1", 1_000);
        r.max_gpus = Some(8);
        r.timeout = Some(120);
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({
                "worker": "k8s:glue:agent-1", "partial": false, "key": "k8s", "timestamp": 1000,
                "timeout": 120, "resource_groups": ["k8s:glue"], "properties": {"max_gpus": 8},
            })
        );
        let short = ClusterReport::new("agent-1", 0);
        assert_eq!(
            (short.key.as_str(), short.resource_groups[0].as_str()),
            ("onprem", "onprem:agent-1")
        );
    }

    #[test]
    fn unset_fields_are_not_sent() {
        let body = serde_json::to_value(QueuesGetAll {
            name: Some("^q$".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(body, json!({"name": "^q$"}));
        let body = serde_json::to_value(StatusChange::new("t").force().message("m")).unwrap();
        assert_eq!(
            body,
            json!({"task": "t", "force": true, "status_message": "m"})
        );
    }

    #[test]
    fn trimmed_and_future_documents_decode() {
        let t: Task = serde_json::from_value(
            json!({"id": "t", "container": {"image": "img", "arguments": null}}),
        )
        .unwrap();
        assert_eq!(t.image(), Some("img"));
        assert_eq!(t.status, None);
        let t: Task =
            serde_json::from_value(json!({"id": "t", "status": "hibernating", "new_field": 1}))
                .unwrap();
        assert_eq!(t.status, Some(TaskStatus::Other));
    }
}
