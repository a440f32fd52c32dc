//! The rules around the shape: env overrides, defaults, requirements, queue names, plugins, ignored keys, secrets.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent::config::{AgentConfig, ConfigError, Overrides};

use crate::{env_overrides, example_path, golden};

const MINIMAL: &str = "
clearml:
  agentk8sglueKey: FILEACCESSKEY
  agentk8sglueSecret: file-secret-never-shown
agentk8sglue:
  apiServerUrlReference: http://file-api:8008
  queues:
    default: {}
";

fn load(text: &str) -> Result<AgentConfig, ConfigError> {
    AgentConfig::from_yaml(text, &Overrides::default())
}

fn error(text: &str) -> String {
    load(text).unwrap_err().to_string()
}

#[test]
fn defaults_are_the_charts() {
    let config = load(MINIMAL).unwrap();
    assert_eq!(config.queue_poll_frequency, Duration::from_secs(1));
    assert_eq!(config.status_report_frequency, Duration::from_secs(30));
    assert_eq!(config.completed_pod_deletion_delay, Duration::ZERO);
    assert_eq!(config.default_container_image, "ubuntu:24.04");
    assert!(!config.create_queues);
    assert_eq!(config.max_pods, None);
    assert!(config.ignored_keys.is_empty());
    let queue = &config.queues[0];
    assert_eq!(queue.template_overrides, serde_json::json!({}));
    assert!(queue.overrides.is_empty() && queue.policies.is_empty());
}

#[test]
fn timings_take_fractions_and_minutes_are_minutes() {
    let text = format!(
        "{MINIMAL}  queuePollFrequencySeconds: 0.5\n  statusReportFrequencySeconds: 10\n  completedPodDeletionDelayMinutes: 1.5\n"
    );
    let config = load(&text).unwrap();
    assert_eq!(config.queue_poll_frequency, Duration::from_millis(500));
    assert_eq!(config.status_report_frequency, Duration::from_secs(10));
    assert_eq!(config.completed_pod_deletion_delay, Duration::from_secs(90));
    assert_eq!(
        error(&format!("{MINIMAL}  queuePollFrequencySeconds: 0\n")),
        "agentk8sglue.queuePollFrequencySeconds: expected a number more than 0, found 0"
    );
}

#[test]
fn the_task_watchdog_is_off_by_default_and_takes_fractional_minutes() {
    let config = load(MINIMAL).unwrap();
    assert_eq!(config.task_watchdog.no_update, None);
    assert!(!config.task_watchdog.fail_task);
    let config = load(&format!(
        "{MINIMAL}  taskWatchdog:\n    noUpdateMinutes: 0.5\n    failTask: true\n"
    ))
    .unwrap();
    assert_eq!(
        config.task_watchdog.no_update,
        Some(Duration::from_secs(30))
    );
    assert!(config.task_watchdog.fail_task);
    // failTask alone leaves the watchdog off: there is no limit to fail a task on.
    let config = load(&format!("{MINIMAL}  taskWatchdog: {{failTask: true}}\n")).unwrap();
    assert_eq!(config.task_watchdog.no_update, None);
    for (value, message) in [
        (
            "{noUpdateMinutes: 0}",
            "agentk8sglue.taskWatchdog.noUpdateMinutes: expected a number more than 0, found 0",
        ),
        (
            "{noUpdateMinutes: '30'}",
            "agentk8sglue.taskWatchdog.noUpdateMinutes: expected a number, found a string",
        ),
        (
            "{failTask: 'yes'}",
            "agentk8sglue.taskWatchdog.failTask: expected true or false, found a string",
        ),
        (
            "{noUpdateMinute: 30}",
            "agentk8sglue.taskWatchdog.noUpdateMinute: unknown key (did you mean noUpdateMinutes?)",
        ),
        (
            "30",
            "agentk8sglue.taskWatchdog: expected a map, found an integer",
        ),
    ] {
        assert_eq!(
            error(&format!("{MINIMAL}  taskWatchdog: {value}\n")),
            message
        );
    }
}

#[test]
fn env_overrides_win_and_empty_env_is_unset() {
    let config = AgentConfig::from_yaml(MINIMAL, &env_overrides()).unwrap();
    assert_eq!(config.credentials.access_key.expose(), "ENVACCESSKEY0123");
    assert_eq!(
        config.credentials.secret_key.expose(),
        "env-secret-never-shown-0123"
    );
    assert_eq!(config.api_server_url, "http://clearml-apiserver:8008");
    assert!(config.api_server_url_from_env);

    let empty = Overrides {
        access_key: Some(String::new()),
        secret_key: Some(" ".to_owned()),
        api_host: Some(String::new()),
    };
    let config = AgentConfig::from_yaml(MINIMAL, &empty).unwrap();
    assert_eq!(config.credentials.access_key.expose(), "FILEACCESSKEY");
    assert_eq!(config.api_server_url, "http://file-api:8008");
    assert!(!config.api_server_url_from_env);
}

#[test]
fn missing_values_and_whole_file_problems_are_named_plainly() {
    let cases = [
        (
            "missing-api-server-url",
            "agentk8sglue:\n  queues: {q: {}}\n".to_owned(),
            Overrides::default(),
        ),
        (
            "missing-access-key",
            "agentk8sglue:\n  queues: {q: {}}\n".to_owned(),
            Overrides {
                api_host: Some("http://api:8008".to_owned()),
                ..Default::default()
            },
        ),
        (
            "missing-secret-key",
            "agentk8sglue:\n  queues: {q: {}}\n".to_owned(),
            Overrides {
                api_host: Some("http://api:8008".to_owned()),
                access_key: Some("A".to_owned()),
                ..Default::default()
            },
        ),
        (
            "missing-api-server-url-renamed-root",
            "orchestratork8sglue:\n  queues: {q: {}}\n".to_owned(),
            Overrides::default(),
        ),
        (
            "no-queues",
            MINIMAL.replace("    default: {}\n", ""),
            Overrides::default(),
        ),
        ("empty-file", String::new(), Overrides::default()),
        (
            "oss-chart-single-queue",
            MINIMAL.replace(
                "  queues:\n    default: {}\n",
                "  queue: default\n  createQueueIfNotExists: true\n",
            ),
            Overrides::default(),
        ),
        ("not-a-map", "- a\n- b\n".to_owned(), Overrides::default()),
        (
            "duplicate-key",
            format!("{MINIMAL}  queues:\n    other: {{}}\n"),
            Overrides::default(),
        ),
        (
            "misspelt-root",
            MINIMAL.replace("agentk8sglue:\n", "agentk8sglu:\n"),
            Overrides::default(),
        ),
        (
            "two-documents",
            format!("{MINIMAL}---\n{MINIMAL}"),
            Overrides::default(),
        ),
    ];
    let results = cases
        .into_iter()
        .map(|(name, text, overrides)| {
            // What `run` does: parse, then check the config can run.
            let checked = AgentConfig::from_yaml(&text, &overrides)
                .and_then(|config| config.validate_for_run());
            let message = match checked {
                Ok(()) => "unexpectedly usable\n".to_owned(),
                Err(e) => format!("{e}\n"),
            };
            golden::compare(&format!("errors/{name}.txt"), &message)
        })
        .collect();
    golden::assert_all(results);
}

#[test]
fn queue_names_must_be_non_empty_and_unique_ignoring_case() {
    assert_eq!(
        error(&format!("{MINIMAL}    DEFAULT: {{}}\n")),
        "agentk8sglue.queues: queues `default` and `DEFAULT` are the same ClearML queue (queue names are \
         case-insensitive); keep one"
    );
    assert_eq!(
        error(&format!("{MINIMAL}    '': {{}}\n")),
        "agentk8sglue.queues: a queue name is empty"
    );
    // Helm stringifies scalar keys; so does the agent. `red:` with nothing under it is a queue with no settings.
    let config = load(&format!("{MINIMAL}    42: {{}}\n    red:\n")).unwrap();
    let names: Vec<&str> = config.queues.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, ["default", "42", "red"]);
}

#[test]
fn queue_settings_are_read_and_checked() {
    let text = format!(
        "{MINIMAL}    gpu:\n      queueSettings:\n        maxPods: 4\n        defaultImage: nvcr.io/nvidia/pytorch:24.01-py3\n        useImageEntrypoint: true\n        customWorkerIdTemplate: '{{queue}}-{{task_id}}'\n        multiNode: {{enabled: true}}\n"
    );
    let config = load(&text).unwrap();
    let settings = &config.queues[1].settings;
    assert_eq!(settings.max_pods, Some(4));
    assert_eq!(
        settings.default_image.as_deref(),
        Some("nvcr.io/nvidia/pytorch:24.01-py3")
    );
    assert!(settings.use_image_entrypoint);
    assert_eq!(
        config.ignored_keys,
        [
            "agentk8sglue.queues.gpu.queueSettings.customWorkerIdTemplate",
            "agentk8sglue.queues.gpu.queueSettings.multiNode"
        ]
    );
    assert_eq!(
        error(&format!(
            "{MINIMAL}    gpu:\n      queueSettings: {{maxPods: 0}}\n"
        )),
        "agentk8sglue.queues.gpu.queueSettings.maxPods: expected an integer from 1 to 4294967295, found 0"
    );
    assert_eq!(
        error(&format!(
            "{MINIMAL}    gpu:\n      queueSettings: {{useImageEntrypoint: yes}}\n"
        )),
        "agentk8sglue.queues.gpu.queueSettings.useImageEntrypoint: expected true or false, found a string"
    );
}

#[test]
fn policies_and_extra_plugins_are_bound_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    let digest = "AB".repeat(32);
    let text = format!(
        "{MINIMAL}    gpu:\n      policies:\n        - plugin: gpu-sizing\n          config: {{maxGpus: 4}}\n        - plugin: spot\n  plugins:\n    spot: {{file: plugins/spot.wasm, sha256: {digest}}}\n    abs: {{file: /opt/p.wasm}}\n"
    );
    std::fs::write(&values, &text).unwrap();
    let config = AgentConfig::load(&values, &Overrides::default()).unwrap();
    let policies = &config.queues[1].policies;
    assert_eq!(policies[0].plugin, "gpu-sizing");
    assert_eq!(policies[0].config, serde_json::json!({"maxGpus": 4}));
    assert_eq!(policies[1].plugin, "spot");
    assert_eq!(policies[1].config, serde_json::Value::Null);
    // Relative plugin files are found beside the values file; absolute ones are kept.
    assert_eq!(
        config.plugins["spot"].file,
        dir.path().join("plugins/spot.wasm")
    );
    assert_eq!(
        config.plugins["spot"].sha256.as_deref(),
        Some("ab".repeat(32).as_str())
    );
    assert_eq!(
        config.plugins["abs"].file,
        std::path::Path::new("/opt/p.wasm")
    );

    assert_eq!(
        error(&format!(
            "{MINIMAL}  plugins:\n    spot: {{file: s.wasm, sha256: abc}}\n"
        )),
        "agentk8sglue.plugins.spot.sha256: expected the file's sha256 as 64 hex digits, found 3 characters"
    );
    assert_eq!(
        error(&format!(
            "{MINIMAL}  plugins:\n    guardrails: {{file: g.wasm}}\n"
        )),
        "agentk8sglue.plugins.guardrails: `guardrails` is a default plugin's name; give this plugin another name"
    );
    assert_eq!(
        error(&format!(
            "{MINIMAL}    gpu:\n      policies: {{plugin: gpu-sizing}}\n"
        )),
        "agentk8sglue.queues.gpu.policies: expected a list of {plugin, config}, found a map"
    );
    assert_eq!(
        error(&format!(
            "{MINIMAL}    gpu:\n      policies: [{{config: {{}}}}]\n"
        )),
        "agentk8sglue.queues.gpu.policies[0]: `plugin` is required (a default plugin's name or a key of `plugins`)"
    );
}

#[test]
fn templates_are_checked_with_their_path() {
    assert_eq!(
        error(&format!(
            "{MINIMAL}    gpu:\n      templateOverrides:\n        resources: {{limit: {{cpu: 1}}}}\n"
        )),
        "agentk8sglue.queues.gpu.templateOverrides.resources.limit: unknown key (did you mean limits?)"
    );
    // The OSS chart's defaults carry `fileMounts: []`: accepted (and ignored); a real one is refused.
    let config = load(&format!(
        "{MINIMAL}  basePodTemplate: {{fileMounts: [], labels: {{a: b}}}}\n"
    ))
    .unwrap();
    assert_eq!(
        config.ignored_keys,
        ["agentk8sglue.basePodTemplate.fileMounts"]
    );
    assert_eq!(
        config.base_pod_template.keys().collect::<Vec<_>>(),
        ["labels"]
    );
    assert!(
        error(&format!(
            "{MINIMAL}  basePodTemplate: {{fileMounts: [{{name: x, folderPath: /a}}]}}\n"
        ))
        .starts_with("agentk8sglue.basePodTemplate.fileMounts: not supported")
    );
}

#[test]
fn yaml_anchors_and_merge_keys_work_as_in_helm() {
    let text = format!(
        "{MINIMAL}    a: &gpu\n      templateOverrides: {{labels: {{pool: gpu}}}}\n    b:\n      <<: *gpu\n      queueSettings: {{maxPods: 2}}\n"
    );
    let config = load(&text).unwrap();
    assert_eq!(config.queues[2].overrides, config.queues[1].overrides);
    assert_eq!(config.queues[2].settings.max_pods, Some(2));
}

#[test]
fn chart_only_keys_are_ignored_in_one_debug_line() {
    let text = "
global: {imageRegistry: docker.io}
imageCredentials: {password: x}
clearml:
  agentk8sglueKey: K
  agentk8sglueSecret: S
  existingAgentk8sglueSecret: ''
agentk8sglue:
  image: {repository: allegroai/clearml-agent-k8s-base}
  extraEnvs: []
  apiServerUrlReference: http://api:8008
  queues: {q: {queueSettings: {multiNode: {}}}}
sessions: {portModeEnabled: false}
";
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let buffer = buffer.clone();
        move || BufferWriter(buffer.clone())
    };
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(writer)
        .finish();
    let config = tracing::subscriber::with_default(subscriber, || load(text)).unwrap();
    // Top-level keys first, then each map as it is read.
    let expected = [
        "global",
        "imageCredentials",
        "sessions",
        "clearml.existingAgentk8sglueSecret",
        "agentk8sglue.image",
        "agentk8sglue.extraEnvs",
        "agentk8sglue.queues.q.queueSettings.multiNode",
    ];
    assert_eq!(config.ignored_keys, expected);
    let logs = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines.len(), 1, "{logs}");
    assert!(
        lines[0].contains("DEBUG") && lines[0].contains(&expected.join(", ")),
        "{logs}"
    );
}

struct BufferWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for BufferWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn credentials_never_appear_in_debug_output_or_errors() {
    let config = AgentConfig::from_yaml(MINIMAL, &env_overrides()).unwrap();
    let debug = format!("{config:?}");
    for secret in [
        "FILEACCESSKEY",
        "file-secret-never-shown",
        "ENVACCESSKEY0123",
        "env-secret-never-shown",
    ] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    // A credential of the wrong type, or misplaced, is reported by type and path only.
    let wrong_type = MINIMAL.replace(
        "agentk8sglueKey: FILEACCESSKEY",
        "agentk8sglueKey: [FILEACCESSKEY]",
    );
    let message = error(&wrong_type);
    assert_eq!(
        message,
        "clearml.agentk8sglueKey: expected a string, found a list"
    );
    let misplaced = MINIMAL.replace("agentk8sglueKey:", "agentk8sglueKy:");
    let message = error(&misplaced);
    assert!(!message.contains("FILEACCESSKEY"), "{message}");
}

#[test]
fn validate_for_run_refuses_the_pages_placeholders() {
    let example = AgentConfig::load(&example_path("example-queue"), &Overrides::default()).unwrap();
    let message = format!("{}\n", example.validate_for_run().unwrap_err());
    golden::assert_all(vec![golden::compare(
        "errors/example-queue.validate-for-run.txt",
        &message,
    )]);

    // The same file with the env a deployment would give: usable.
    let example = AgentConfig::load(&example_path("example-queue"), &env_overrides()).unwrap();
    let message = example.validate_for_run().unwrap_err().to_string();
    assert!(!message.contains("apiServerUrlReference"), "{message}");
    assert!(
        !message.contains("access key") && !message.contains("secret key"),
        "{message}"
    );
    assert!(message.contains("webServerUrlReference"), "{message}");

    assert!(load(MINIMAL).unwrap().validate_for_run().is_ok());
    let bad_env = Overrides {
        api_host: Some("clearml-apiserver:8008".to_owned()),
        ..Default::default()
    };
    let config = AgentConfig::from_yaml(MINIMAL, &bad_env).unwrap();
    assert_eq!(
        config.validate_for_run().unwrap_err().to_string(),
        "the configuration cannot be used to run the agent:\n  - env CLEARML_API_HOST: `clearml-apiserver:8008` is not \
         an http(s) URL; expected e.g. http://clearml-apiserver:8008"
    );
}

/// The OSS `clearml-agent` chart's values shape (its keys with empty defaults), plus the Enterprise `queues`: a user
/// moving from that chart keeps their file and adds queues.
#[test]
fn the_oss_charts_values_shape_loads_with_queues_added() {
    let text = "
global: {imageRegistry: docker.io}
imageCredentials: {enabled: false, existingSecret: '', registry: docker.io, username: u, password: p, email: e}
clearml:
  existingAgentk8sglueSecret: ''
  agentk8sglueKey: K
  agentk8sglueSecret: S
  existingClearmlConfigSecret: ''
  clearmlConfig: 'sdk {}'
agentk8sglue:
  image: {registry: '', repository: allegroai/clearml-agent-k8s-base, tag: '1'}
  replicaCount: 1
  resources: {}
  initContainers: {resources: {}}
  serviceAccountAnnotations: {}
  serviceExistingAccountName: ''
  clearmlcheckCertificate: true
  apiServerUrlReference: https://api.example.com
  fileServerUrlReference: https://files.example.com
  webServerUrlReference: https://app.example.com
  defaultContainerImage: ubuntu:24.04
  queue: default
  createQueueIfNotExists: false
  labels: {}
  annotations: {}
  extraEnvs: []
  podSecurityContext: {}
  containerSecurityContext: {}
  additionalClusterRoleBindings: []
  additionalRoleBindings: []
  nodeSelector: {}
  tolerations: []
  affinity: {}
  volumes: []
  volumeMounts: []
  fileMounts: []
  basePodTemplate:
    labels: {}
    annotations: {}
    initContainers: []
    schedulerName: ''
    volumes: []
    volumeMounts: []
    fileMounts: []
    env: []
    resources: {}
    priorityClassName: ''
    nodeSelector: {}
    tolerations: []
    affinity: {}
    podSecurityContext: {}
    containerSecurityContext: {}
    hostAliases: []
  queues:
    default: {}
sessions: {portModeEnabled: false, svcType: NodePort, externalIP: 0.0.0.0, startingPort: 30000, maxServices: 20}
";
    let config = load(text).unwrap();
    assert!(config.validate_for_run().is_ok());
    assert_eq!(config.queues.len(), 1);
    let ignored: Vec<&str> = config.ignored_keys.iter().map(String::as_str).collect();
    assert_eq!(ignored[..3], ["global", "imageCredentials", "sessions"]);
    assert!(ignored.contains(&"agentk8sglue.queue"), "{ignored:?}");
    assert!(
        ignored.contains(&"agentk8sglue.basePodTemplate.fileMounts"),
        "{ignored:?}"
    );
    assert!(
        !ignored.iter().any(|k| k.contains("agentk8sglueKey")),
        "{ignored:?}"
    );
}
