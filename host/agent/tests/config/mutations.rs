//! Each example with one thing broken: the error message (golden) names the key's full path and what is wrong.

use agent::config::AgentConfig;

use crate::{example_text, golden, overrides_for};

/// One broken variant: the edit (`from` must occur exactly once in the example) and the golden file's name.
struct Case {
    name: &'static str,
    example: &'static str,
    from: &'static str,
    to: &'static str,
}

const fn case(
    name: &'static str,
    example: &'static str,
    from: &'static str,
    to: &'static str,
) -> Case {
    Case {
        name,
        example,
        from,
        to,
    }
}

const CASES: &[Case] = &[
    // one key misspelt
    case(
        "example-queue.misspelt-queue-key",
        "example-queue",
        "      templateOverrides: {}",
        "      templateOverides: {}",
    ),
    case(
        "gpu-queues.misspelt-glue-key",
        "gpu-queues",
        "  createQueues: true",
        "  createQueue: true",
    ),
    case(
        "red-blue-green.misspelt-queue-key",
        "red-blue-green",
        "      # Does not override\n      templateOverrides: {}",
        "      # Does not override\n      templateOverides: {}",
    ),
    case(
        "red-blue-green.misspelt-template-key",
        "red-blue-green",
        "        annotations:",
        "        anotations:",
    ),
    case(
        "example-queue.misspelt-credential-key",
        "example-queue",
        "  agentk8sglueSecret:",
        "  agentk8sglueSecrets:",
    ),
    case(
        "gpu-queues.misspelt-watchdog-key",
        "gpu-queues",
        "  createQueues: true",
        "  createQueues: true\n  taskWatchdog:\n    noUpdateMinutes: 30\n    failTasks: true",
    ),
    // a wrong type
    case(
        "example-queue.max-pods-string",
        "example-queue",
        "  createQueues: true\n",
        "  createQueues: true\n  maxPods: \"10\"\n",
    ),
    case(
        "red-blue-green.watchdog-minutes-negative",
        "red-blue-green",
        "  createQueues: true\n",
        "  createQueues: true\n  taskWatchdog: {noUpdateMinutes: -5}\n",
    ),
    case(
        "example-queue.create-queues-string",
        "example-queue",
        "  createQueues: true",
        "  createQueues: \"yes\"",
    ),
    case(
        "gpu-queues.gpu-limit-list",
        "gpu-queues",
        "            nvidia.com/gpu: 2",
        "            nvidia.com/gpu: [2]",
    ),
    case(
        "red-blue-green.env-map",
        "red-blue-green",
        "        env:\n          - name: MY_ENV\n            value: \"my_value\"",
        "        env:\n          MY_ENV: my_value",
    ),
    case(
        "red-blue-green.queue-settings-list",
        "red-blue-green",
        "      # Does not override\n      templateOverrides: {}",
        "      # Does not override\n      templateOverrides: {}\n      queueSettings: [maxPods]",
    ),
    // an unknown plugin field, and an unknown plugin
    case(
        "gpu-queues.unknown-policy-field",
        "gpu-queues",
        "    2xGPU:\n",
        "    2xGPU:\n      policies:\n        - plugin: gpu-sizing\n          confg: {maxGpus: 2}\n",
    ),
    case(
        "gpu-queues.unknown-plugin",
        "gpu-queues",
        "    2xGPU:\n",
        "    2xGPU:\n      policies:\n        - plugin: gpu-sizng\n",
    ),
    case(
        "red-blue-green.unknown-plugin-source-field",
        "red-blue-green",
        "  createQueues: true\n",
        "  createQueues: true\n  plugins:\n    spot:\n      file: spot.wasm\n      sha: abc\n",
    ),
    case(
        "example-queue.plugin-without-file",
        "example-queue",
        "  createQueues: true\n",
        "  createQueues: true\n  plugins:\n    spot: {sha256: null}\n",
    ),
    // both alias forms at once
    case(
        "example-queue.both-glue-roots",
        "example-queue",
        "agentk8sglue:\n",
        "orchestratork8sglue:\n  createQueues: true\nagentk8sglue:\n",
    ),
    case(
        "example-queue.both-access-keys",
        "example-queue",
        "clearml:\n",
        "controlPlane:\n  apiKey: \"<ACCESS_KEY>\"\nclearml:\n",
    ),
    case(
        "red-blue-green.both-secret-keys",
        "red-blue-green",
        "agentk8sglue:\n",
        "clearml:\n  agentk8sglueSecret: a\ncontrolPlane:\n  apiSecret: b\nagentk8sglue:\n",
    ),
    // names ClearML would resolve to one queue
    case(
        "red-blue-green.queue-names-differ-in-case",
        "red-blue-green",
        "    blue:\n",
        "    Red: {}\n    blue:\n",
    ),
    // YAML that does not parse: the position is given
    case(
        "gpu-queues.bad-indentation",
        "gpu-queues",
        "    2xGPU:\n",
        "    2xGPU:\n   bad: indentation\n",
    ),
];

#[test]
fn broken_examples_fail_naming_the_full_path() {
    let results = CASES
        .iter()
        .map(|case| {
            let text = example_text(case.example);
            assert_eq!(
                text.matches(case.from).count(),
                1,
                "{}: the edit must apply exactly once",
                case.name
            );
            let broken = text.replacen(case.from, case.to, 1);
            let message = match AgentConfig::from_yaml(&broken, &overrides_for(case.example)) {
                Ok(_) => format!("unexpectedly loaded:\n{broken}"),
                Err(e) => format!("{e}\n"),
            };
            golden::compare(&format!("errors/{}.txt", case.name), &message)
        })
        .collect();
    golden::assert_all(results);
}

#[test]
fn the_issues_example_message_is_exact() {
    let text = example_text("red-blue-green").replacen(
        "# Does not override\n      templateOverrides",
        "# Does not override\n      templateOverides",
        1,
    );
    let error = AgentConfig::from_yaml(&text, &overrides_for("red-blue-green")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "agentk8sglue.queues.red.templateOverides: unknown key (did you mean templateOverrides?)"
    );
}

#[test]
fn a_file_error_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("values.yaml");
    std::fs::write(&path, "agentk8sglue:\n  maxPods: \"10\"\n").unwrap();
    let error = AgentConfig::load(&path, &Default::default()).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{}: agentk8sglue.maxPods: expected an integer, found a string",
            path.display()
        )
    );
    let missing = dir.path().join("nope.yaml");
    let error = AgentConfig::load(&missing, &Default::default()).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with(&format!("cannot read {}: ", missing.display())),
        "{error}"
    );
}
