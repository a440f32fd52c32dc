//! The values file: the Enterprise page's examples load unchanged (golden parse results), and broken variants
//! of them fail with messages that name the key's full path (golden error messages). `BLESS=1` rewrites the golden
//! files under `golden/`; see `golden.rs`.
//!
//! `examples/` holds the page's examples verbatim (shared/reference/clearml-enterprise-agent-doc.md). Each broken
//! variant is made here by one textual edit of an example, so the fixtures stay exactly as published.
// Test helpers panic on failure, with the backtrace: that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod behaviour;
mod golden;
mod mutations;

use std::path::{Path, PathBuf};

use agent::config::{AgentConfig, Overrides, QueueConfig, TaskWatchdog};
use serde_json::{Value as Json, json};

/// The page's examples, by file name under `examples/`: the install one, the three queue examples, and the
/// `dashboardReportMaxGpu` fragment (no queues: it parses; `validate_for_run` would refuse it alone).
pub const EXAMPLES: [&str; 4] = [
    "example-queue",
    "dashboard-gpu",
    "gpu-queues",
    "red-blue-green",
];

/// What the binary would read from env for the two examples that carry no server or credentials (they are
/// fragments of the first on the page; a deployment passes the Secret as env).
pub fn env_overrides() -> Overrides {
    Overrides {
        access_key: Some("ENVACCESSKEY0123".to_owned()),
        secret_key: Some("env-secret-never-shown-0123".to_owned()),
        api_host: Some("http://clearml-apiserver:8008".to_owned()),
    }
}

/// The overrides each example is loaded with: none for the complete one, env for the fragments.
pub fn overrides_for(example: &str) -> Overrides {
    match example {
        "example-queue" => Overrides::default(),
        _ => env_overrides(),
    }
}

/// Relative to the package root (cargo's working directory for tests), so messages naming it are stable.
pub fn example_path(example: &str) -> PathBuf {
    Path::new("tests/config/examples").join(format!("{example}.yaml"))
}

pub fn example_text(example: &str) -> String {
    std::fs::read_to_string(example_path(example)).unwrap()
}

/// Every field of the parsed config, as YAML. The destructuring is exhaustive on purpose: a new field fails to
/// compile here until it is shown in the golden files.
pub fn summary(config: &AgentConfig) -> String {
    let AgentConfig {
        credentials,
        api_server_url,
        web_server_url,
        file_server_url,
        create_queues,
        dashboard_report_max_gpu,
        default_container_image,
        base_pod_template,
        queues,
        max_pods,
        queue_poll_frequency,
        status_report_frequency,
        completed_pod_deletion_delay,
        plugins,
        task_watchdog,
        values_root,
        api_server_url_from_env,
        ignored_keys,
    } = config;
    let TaskWatchdog {
        no_update,
        fail_task,
    } = task_watchdog;
    let queues: Vec<Json> = queues.iter().map(queue_summary).collect();
    let plugins: Vec<Json> = plugins
        .iter()
        .map(|(name, source)| json!({"name": name, "file": source.file, "sha256": source.sha256}))
        .collect();
    let value = json!({
        "credentials": format!("{credentials:?}"),
        "api_server_url": api_server_url,
        "api_server_url_from_env": api_server_url_from_env,
        "web_server_url": web_server_url,
        "file_server_url": file_server_url,
        "create_queues": create_queues,
        "dashboard_report_max_gpu": dashboard_report_max_gpu,
        "default_container_image": default_container_image,
        "base_pod_template": base_pod_template.to_value(),
        "queues": queues,
        "max_pods": max_pods,
        "queue_poll_frequency": format!("{queue_poll_frequency:?}"),
        "status_report_frequency": format!("{status_report_frequency:?}"),
        "completed_pod_deletion_delay": format!("{completed_pod_deletion_delay:?}"),
        "plugins": plugins,
        "task_watchdog": {"no_update": format!("{no_update:?}"), "fail_task": fail_task},
        "values_root": values_root,
        "ignored_keys": ignored_keys,
    });
    serde_yaml::to_string(&value).unwrap()
}

fn queue_summary(queue: &QueueConfig) -> Json {
    let QueueConfig {
        name,
        template_overrides,
        overrides,
        settings,
        policies,
    } = queue;
    json!({
        "name": name,
        "template_overrides": template_overrides,
        "overrides": overrides.to_value(),
        "settings": {
            "max_pods": settings.max_pods,
            "default_image": settings.default_image,
            "use_image_entrypoint": settings.use_image_entrypoint,
        },
        "policies": policies
            .iter()
            .map(|p| json!({"plugin": p.plugin, "config": p.config}))
            .collect::<Vec<_>>(),
    })
}

#[test]
fn the_pages_examples_load_unchanged() {
    let results = EXAMPLES
        .iter()
        .map(|example| {
            let config = AgentConfig::load(&example_path(example), &overrides_for(example))
                .unwrap_or_else(|e| panic!("{example}: {e}"));
            golden::compare(&format!("{example}.parsed.yaml"), &summary(&config))
        })
        .collect();
    golden::assert_all(results);
}

#[test]
fn the_examples_keep_the_pages_promises() {
    let gpu = AgentConfig::load(&example_path("gpu-queues"), &env_overrides()).unwrap();
    let names: Vec<&str> = gpu.queues.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(
        names,
        ["1xGPU", "2xGPU"],
        "queues keep the file's order (polling priority)"
    );
    let limits = |q: &QueueConfig| q.overrides.get("resources").unwrap()["limits"].clone();
    // The YAML number 1 becomes the quantity "1" the Pod schema wants.
    assert_eq!(limits(&gpu.queues[0]), json!({"nvidia.com/gpu": "1"}));
    assert_eq!(limits(&gpu.queues[1]), json!({"nvidia.com/gpu": "2"}));
    assert!(gpu.create_queues);

    let colours = AgentConfig::load(&example_path("red-blue-green"), &env_overrides()).unwrap();
    let [red, blue, green] = &colours.queues[..] else {
        panic!("three queues")
    };
    assert!(red.overrides.is_empty(), "red inherits everything");
    assert_eq!(blue.overrides.keys().collect::<Vec<_>>(), ["labels"]);
    assert_eq!(
        green.overrides.keys().collect::<Vec<_>>(),
        ["annotations", "env", "labels", "resources"]
    );
    assert_eq!(
        colours.base_pod_template.get("resources").unwrap()["limits"]["memory"],
        "1Gi"
    );

    let example = AgentConfig::load(&example_path("example-queue"), &Overrides::default()).unwrap();
    assert_eq!(example.ignored_keys, ["imageCredentials"]);
    assert_eq!(example.api_server_url, "<CLEARML_API_SERVER_REFERENCE>");
}

#[test]
fn the_renamed_charts_roots_load_the_same_config() {
    for example in EXAMPLES {
        let text = example_text(example);
        let renamed = text
            .replace("agentk8sglue:\n", "orchestratork8sglue:\n")
            .replace("clearml:\n", "controlPlane:\n")
            .replace("agentk8sglueKey:", "apiKey:")
            .replace("agentk8sglueSecret:", "apiSecret:");
        assert_ne!(renamed, text);
        let original = AgentConfig::from_yaml(&text, &overrides_for(example)).unwrap();
        let mut aliased = AgentConfig::from_yaml(&renamed, &overrides_for(example)).unwrap();
        assert_eq!(aliased.values_root, "orchestratork8sglue", "{example}");
        aliased.values_root = original.values_root;
        assert_eq!(aliased, original, "{example}");
    }
}
