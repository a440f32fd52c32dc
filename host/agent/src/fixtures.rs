//! Builders for unit-test fixtures (compiled for tests only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pod_template::Template;
use policy_runtime::TaskContext;
use serde_json::Value;

use crate::config::{AgentConfig, Overrides, QueueConfig, QueueSettings};
use crate::render::Identity;

/// A config with the page's red/blue/green base template and no queues, through the real parser.
pub fn config() -> AgentConfig {
    AgentConfig::from_yaml(
        r#"
clearml:
  agentk8sglueKey: ACCESSKEY-FIXTURE
  agentk8sglueSecret: secret-key-fixture-value
agentk8sglue:
  apiServerUrlReference: http://clearml-apiserver:8008
  webServerUrlReference: http://clearml-webserver:8080
  fileServerUrlReference: http://clearml-fileserver:8081
  basePodTemplate:
    labels:
      team: red
    resources:
      limits:
        memory: 1Gi
  queues:
    red:
      templateOverrides: {}
"#,
        &Overrides::default(),
    )
    .unwrap()
}

/// A queue with these overrides and default settings.
pub fn queue(name: &str, overrides: Value) -> QueueConfig {
    QueueConfig {
        name: name.into(),
        overrides: Template::from_value(&overrides, "templateOverrides").unwrap(),
        template_overrides: overrides,
        settings: QueueSettings::default(),
        policies: Vec::new(),
    }
}

/// The agent's identity in tests.
pub fn identity() -> Identity {
    Identity {
        instance: "agent-test".into(),
        namespace: "clearml".into(),
        credentials_secret: "agent-test-credentials".into(),
    }
}

/// A task on `queue`.
pub fn task(queue: &str) -> TaskContext {
    TaskContext::for_test("7c0ffee0d15c4a5e9b3f2a1d0c9b8a77", queue)
}
