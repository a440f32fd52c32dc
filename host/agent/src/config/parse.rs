//! The values file → [`AgentConfig`]: the shape of each map (see [`super::keys`]), the renamed chart's aliases, the
//! env overrides, defaults, and the checks that need more than one key (queue names, plugin names, what is
//! required). Structure is checked before requirements, so a misspelt key is reported as such rather than as the
//! missing value it was meant to be.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pod_template::Template;
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

use super::keys;
use super::walk::{Map, Node, join, suggest, type_name};
use super::{
    AgentConfig, ConfigError, Credentials, DEFAULT_CONTAINER_IMAGE, Overrides, PluginSource,
    PolicyBinding, QueueConfig, QueueSettings, Secret, TaskWatchdog,
};

/// The values root the original Enterprise chart uses, and the renamed ("Klique") chart's.
const GLUE_ROOTS: (&str, &str) = ("agentk8sglue", "orchestratork8sglue");

const DEFAULT_QUEUE_POLL: Duration = Duration::from_secs(1);
const DEFAULT_STATUS_REPORT: Duration = Duration::from_secs(30);

impl AgentConfig {
    /// Parse a values file's text. `overrides` (from the environment, read by the binary) win over the file's
    /// credentials and API URL. Keys the agent does not use but the chart does are accepted, listed in
    /// [`AgentConfig::ignored_keys`] and logged in one debug line.
    pub fn from_yaml(text: &str, overrides: &Overrides) -> Result<Self, ConfigError> {
        let config = parse(text, overrides)?;
        if !config.ignored_keys.is_empty() {
            tracing::debug!(
                keys = %config.ignored_keys.join(", "),
                "values keys accepted and ignored (chart-only, or Enterprise features this agent does not implement)"
            );
        }
        Ok(config)
    }

    /// Read and parse the values file at `path`; errors name the file. Relative plugin `file` paths are taken
    /// relative to the values file's directory, so a values file and its plugins can move together.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::from_yaml(&text, overrides).map_err(|e| ConfigError::InFile {
            path: path.to_owned(),
            source: Box::new(e),
        })?;
        if let Some(dir) = path.parent() {
            for plugin in config.plugins.values_mut() {
                if plugin.file.is_relative() {
                    plugin.file = dir.join(&plugin.file);
                }
            }
        }
        Ok(config)
    }
}

fn parse(text: &str, overrides: &Overrides) -> Result<AgentConfig, ConfigError> {
    let mut document: Yaml = serde_yaml::from_str(text).map_err(syntax_error)?;
    // Helm (Go YAML) honours `<<: *anchor` merge keys; serde_yaml only does when asked.
    document.apply_merge().map_err(syntax_error)?;
    if !matches!(document, Yaml::Null | Yaml::Mapping(_)) {
        return Err(ConfigError::InvalidType {
            path: "the values file".to_owned(),
            expected: "a map (clearml, agentk8sglue, ...)",
            found: type_name(&document),
        });
    }
    let mut ignored = Vec::new();
    let root_node = Node {
        path: String::new(),
        value: &document,
    };
    let root = Map::strict(Some(root_node), "", &keys::ROOT, &mut ignored)?;

    let (glue_root, glue_node) = one_of(&root, GLUE_ROOTS.0, GLUE_ROOTS.1)?;
    let clearml = Map::strict(root.get("clearml"), "clearml", &keys::CLEARML, &mut ignored)?;
    let control = Map::strict(
        root.get("controlPlane"),
        "controlPlane",
        &keys::CONTROL_PLANE,
        &mut ignored,
    )?;
    let access_key = file_credential(&clearml, "agentk8sglueKey", &control, "apiKey")?;
    let secret_key = file_credential(&clearml, "agentk8sglueSecret", &control, "apiSecret")?;

    let glue = Map::strict(glue_node, glue_root, &keys::GLUE, &mut ignored)?;
    let file_api_url = optional_string(glue.get("apiServerUrlReference"))?;
    let web_server_url = optional_string(glue.get("webServerUrlReference"))?;
    let file_server_url = optional_string(glue.get("fileServerUrlReference"))?;
    let create_queues = glue.get("createQueues").map(|n| n.bool()).transpose()?;
    let dashboard_report_max_gpu = glue
        .get("dashboardReportMaxGpu")
        .map(|n| n.u32_at_least(0))
        .transpose()?;
    let default_container_image = glue
        .get("defaultContainerImage")
        .map(|n| n.non_empty_string().map(str::to_owned))
        .transpose()?;
    let (_, base_pod_template) = template(
        glue.get("basePodTemplate"),
        &join(glue_root, "basePodTemplate"),
        &mut ignored,
    )?;
    let max_pods = glue.get("maxPods").map(|n| n.u32_at_least(1)).transpose()?;
    let queue_poll_frequency = seconds(glue.get("queuePollFrequencySeconds"), 1.0, false)?;
    let status_report_frequency = seconds(glue.get("statusReportFrequencySeconds"), 1.0, false)?;
    let completed_pod_deletion_delay =
        seconds(glue.get("completedPodDeletionDelayMinutes"), 60.0, true)?;
    let plugins = plugins(
        glue.get("plugins"),
        &join(glue_root, "plugins"),
        &mut ignored,
    )?;
    let task_watchdog = task_watchdog(
        glue.get("taskWatchdog"),
        &join(glue_root, "taskWatchdog"),
        &mut ignored,
    )?;
    let queues_path = join(glue_root, "queues");
    let queues = queues(glue.get("queues"), &queues_path, &plugins, &mut ignored)?;

    // Requirements last: by now every key is known to be spelt right. (An empty `queues` is a fragment that still
    // parses, like the page's `dashboardReportMaxGpu` snippet; `validate_for_run` refuses it.)
    let env_api_url = non_empty(overrides.api_host.as_deref());
    let api_server_url_from_env = env_api_url.is_some();
    let api_server_url = env_api_url
        .map(str::to_owned)
        .or(file_api_url)
        .ok_or_else(|| ConfigError::Missing {
            path: join(glue_root, "apiServerUrlReference"),
            alternatives: "env CLEARML_API_HOST".to_owned(),
            needed_for: "the agent needs the ClearML API server's URL (e.g. http://clearml-apiserver:8008)",
        })?;
    let credentials = Credentials {
        access_key: required_credential(
            access_key,
            overrides.access_key.as_deref(),
            (
                "clearml.agentk8sglueKey",
                "controlPlane.apiKey",
                "CLEARML_API_ACCESS_KEY",
            ),
            "the agent needs a ClearML access key to log in",
        )?,
        secret_key: required_credential(
            secret_key,
            overrides.secret_key.as_deref(),
            (
                "clearml.agentk8sglueSecret",
                "controlPlane.apiSecret",
                "CLEARML_API_SECRET_KEY",
            ),
            "the agent needs a ClearML secret key to log in",
        )?,
    };

    Ok(AgentConfig {
        credentials,
        api_server_url,
        web_server_url,
        file_server_url,
        create_queues: create_queues.unwrap_or(false),
        dashboard_report_max_gpu,
        default_container_image: default_container_image
            .unwrap_or_else(|| DEFAULT_CONTAINER_IMAGE.to_owned()),
        base_pod_template,
        queues,
        max_pods,
        queue_poll_frequency: queue_poll_frequency.unwrap_or(DEFAULT_QUEUE_POLL),
        status_report_frequency: status_report_frequency.unwrap_or(DEFAULT_STATUS_REPORT),
        completed_pod_deletion_delay: completed_pod_deletion_delay.unwrap_or(Duration::ZERO),
        plugins,
        task_watchdog,
        values_root: glue_root,
        api_server_url_from_env,
        ignored_keys: ignored,
    })
}

/// serde_yaml's message carries " at line L column C"; the position is kept in fields and shown once.
fn syntax_error(error: serde_yaml::Error) -> ConfigError {
    let message = error.to_string();
    match error.location() {
        Some(at) => {
            let suffix = format!(" at line {} column {}", at.line(), at.column());
            ConfigError::Syntax {
                line: at.line(),
                column: at.column(),
                message: message.replacen(&suffix, "", 1),
            }
        }
        None => ConfigError::Yaml { problem: message },
    }
}

/// The one of two alias keys that is set (the first when neither is, so messages use the original chart's name).
fn one_of<'a>(
    map: &Map<'a>,
    first: &'static str,
    second: &'static str,
) -> Result<(&'static str, Option<Node<'a>>), ConfigError> {
    match (map.get(first), map.get(second)) {
        (Some(_), Some(_)) => Err(ConfigError::BothSet {
            first: first.to_owned(),
            second: second.to_owned(),
        }),
        (None, Some(node)) => Ok((second, Some(node))),
        (node, None) => Ok((first, node)),
    }
}

fn file_credential(
    clearml: &Map<'_>,
    clearml_key: &str,
    control: &Map<'_>,
    control_key: &str,
) -> Result<Option<Secret>, ConfigError> {
    let node = match (clearml.get(clearml_key), control.get(control_key)) {
        (Some(a), Some(b)) => {
            return Err(ConfigError::BothSet {
                first: a.path,
                second: b.path,
            });
        }
        (Some(node), None) | (None, Some(node)) => node,
        (None, None) => return Ok(None),
    };
    // Only the type is ever reported, never the value.
    Ok(non_empty(Some(node.string()?)).map(Secret::new))
}

/// The env value when given, else the file's; an error naming every place it could come from otherwise.
fn required_credential(
    from_file: Option<Secret>,
    from_env: Option<&str>,
    (clearml_key, control_key, env): (&str, &str, &str),
    needed_for: &'static str,
) -> Result<Secret, ConfigError> {
    non_empty(from_env)
        .map(Secret::new)
        .or(from_file)
        .ok_or_else(|| ConfigError::Missing {
            path: clearml_key.to_owned(),
            alternatives: format!("{control_key} or env {env}"),
            needed_for,
        })
}

/// An empty env var or value is unset (a Helm `""` default, an exported but empty variable).
fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

fn optional_string(node: Option<Node<'_>>) -> Result<Option<String>, ConfigError> {
    Ok(match node {
        Some(node) => non_empty(Some(node.string()?)).map(str::to_owned),
        None => None,
    })
}

/// A duration given as a number of units (`unit` seconds each).
fn seconds(
    node: Option<Node<'_>>,
    unit: f64,
    zero_allowed: bool,
) -> Result<Option<Duration>, ConfigError> {
    let Some(node) = node else { return Ok(None) };
    let value = node.non_negative_number(zero_allowed)?;
    Duration::try_from_secs_f64(value * unit)
        .map(Some)
        .map_err(|_| ConfigError::InvalidValue {
            path: node.path.clone(),
            problem: format!("{value} is too large"),
        })
}

/// `taskWatchdog`: off unless `noUpdateMinutes` (fractions allowed, more than 0) is given.
fn task_watchdog(
    node: Option<Node<'_>>,
    path: &str,
    ignored: &mut Vec<String>,
) -> Result<TaskWatchdog, ConfigError> {
    let map = Map::strict(node, path, &keys::TASK_WATCHDOG, ignored)?;
    Ok(TaskWatchdog {
        no_update: seconds(map.get("noUpdateMinutes"), 60.0, false)?,
        fail_task: map
            .get("failTask")
            .map(|n| n.bool())
            .transpose()?
            .unwrap_or(false),
    })
}

/// A values-shaped template: its JSON as written (minus an empty `fileMounts`) and parsed.
fn template(
    node: Option<Node<'_>>,
    path: &str,
    ignored: &mut Vec<String>,
) -> Result<(Json, Template), ConfigError> {
    let mut json = match node {
        Some(node) => node.json()?,
        None => Json::Object(serde_json::Map::new()),
    };
    if let Some(fields) = json.as_object_mut()
        && let Some(mounts) = fields.get(keys::TEMPLATE_FILE_MOUNTS)
    {
        let mounts_path = join(path, keys::TEMPLATE_FILE_MOUNTS);
        if !(mounts.is_null() || mounts.as_array().is_some_and(Vec::is_empty)) {
            return Err(ConfigError::InvalidValue {
                path: mounts_path,
                problem: "not supported: mount a Secret or ConfigMap through `volumes` and `volumeMounts` instead"
                    .to_owned(),
            });
        }
        fields.remove(keys::TEMPLATE_FILE_MOUNTS);
        ignored.push(mounts_path);
    }
    let template = Template::from_value(&json, path)?;
    Ok((json, template))
}

fn plugins(
    node: Option<Node<'_>>,
    path: &str,
    ignored: &mut Vec<String>,
) -> Result<BTreeMap<String, PluginSource>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, node) in Map::free(node, path)?.entries() {
        if name.trim().is_empty() {
            return Err(ConfigError::InvalidValue {
                path: path.to_owned(),
                problem: "a plugin name is empty".to_owned(),
            });
        }
        if default_plugins::get(name).is_some() {
            return Err(ConfigError::InvalidValue {
                path: node.path,
                problem: format!(
                    "`{name}` is a default plugin's name; give this plugin another name"
                ),
            });
        }
        let entry_path = node.path.clone();
        let entry = Map::strict(Some(node), &entry_path, &keys::PLUGIN, ignored)?;
        let file = entry
            .get("file")
            .ok_or_else(|| ConfigError::InvalidValue {
                path: entry_path.clone(),
                problem: "`file` is required (the path of the plugin's component)".to_owned(),
            })?
            .non_empty_string()?;
        let sha256 = entry.get("sha256").map(|n| sha256(&n)).transpose()?;
        out.insert(
            name.to_owned(),
            PluginSource {
                file: PathBuf::from(file),
                sha256,
            },
        );
    }
    Ok(out)
}

fn sha256(node: &Node<'_>) -> Result<String, ConfigError> {
    let value = node.string()?;
    if value.len() != 64 || !value.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ConfigError::InvalidValue {
            path: node.path.clone(),
            problem: format!(
                "expected the file's sha256 as 64 hex digits, found {} characters",
                value.chars().count()
            ),
        });
    }
    Ok(value.to_ascii_lowercase())
}

fn queues(
    node: Option<Node<'_>>,
    path: &str,
    plugins: &BTreeMap<String, PluginSource>,
    ignored: &mut Vec<String>,
) -> Result<Vec<QueueConfig>, ConfigError> {
    let mut out: Vec<QueueConfig> = Vec::new();
    for (name, node) in Map::free(node, path)?.entries() {
        if name.trim().is_empty() {
            return Err(ConfigError::InvalidValue {
                path: path.to_owned(),
                problem: "a queue name is empty".to_owned(),
            });
        }
        // ClearML resolves queue names case-insensitively: two spellings would be one queue polled twice.
        let lower = name.to_lowercase();
        if let Some(first) = out.iter().find(|q| q.name.to_lowercase() == lower) {
            return Err(ConfigError::DuplicateQueue {
                path: path.to_owned(),
                first: first.name.clone(),
                second: name.to_owned(),
            });
        }
        out.push(queue(name, node, plugins, ignored)?);
    }
    Ok(out)
}

fn queue(
    name: &str,
    node: Node<'_>,
    plugins: &BTreeMap<String, PluginSource>,
    ignored: &mut Vec<String>,
) -> Result<QueueConfig, ConfigError> {
    let path = node.path.clone();
    let queue = Map::strict(Some(node), &path, &keys::QUEUE, ignored)?;
    let (template_overrides, overrides) = template(
        queue.get("templateOverrides"),
        &join(&path, "templateOverrides"),
        ignored,
    )?;
    let settings_path = join(&path, "queueSettings");
    let settings = Map::strict(
        queue.get("queueSettings"),
        &settings_path,
        &keys::QUEUE_SETTINGS,
        ignored,
    )?;
    let settings = QueueSettings {
        max_pods: settings
            .get("maxPods")
            .map(|n| n.u32_at_least(1))
            .transpose()?,
        default_image: settings
            .get("defaultImage")
            .map(|n| n.non_empty_string().map(str::to_owned))
            .transpose()?,
        use_image_entrypoint: settings
            .get("useImageEntrypoint")
            .map(|n| n.bool())
            .transpose()?
            .unwrap_or(false),
    };
    let policies = policies(
        queue.get("policies"),
        &join(&path, "policies"),
        plugins,
        ignored,
    )?;
    Ok(QueueConfig {
        name: name.to_owned(),
        template_overrides,
        overrides,
        settings,
        policies,
    })
}

fn policies(
    node: Option<Node<'_>>,
    path: &str,
    plugins: &BTreeMap<String, PluginSource>,
    ignored: &mut Vec<String>,
) -> Result<Vec<PolicyBinding>, ConfigError> {
    let items = match node.as_ref().map(|n| n.value) {
        None => return Ok(Vec::new()),
        Some(Yaml::Sequence(items)) => items,
        Some(other) => {
            return Err(ConfigError::InvalidType {
                path: path.to_owned(),
                expected: "a list of {plugin, config}",
                found: type_name(other),
            });
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        if !item.is_mapping() {
            return Err(ConfigError::InvalidType {
                path: item_path,
                expected: "a map {plugin, config}",
                found: type_name(item),
            });
        }
        let node = Node {
            path: item_path.clone(),
            value: item,
        };
        let entry = Map::strict(Some(node), &item_path, &keys::POLICY, ignored)?;
        let plugin_node = entry
            .get("plugin")
            .ok_or_else(|| ConfigError::InvalidValue {
                path: item_path.clone(),
                problem: "`plugin` is required (a default plugin's name or a key of `plugins`)"
                    .to_owned(),
            })?;
        let plugin = plugin_node.non_empty_string()?;
        if default_plugins::get(plugin).is_none() && !plugins.contains_key(plugin) {
            // Pushed one by one: `&'static str` items shorten to the plugins map's lifetime only on a push.
            let mut available: Vec<&str> = Vec::new();
            for name in default_plugins::names() {
                available.push(name);
            }
            available.extend(plugins.keys().map(String::as_str));
            return Err(ConfigError::UnknownPlugin {
                path: plugin_node.path,
                name: plugin.to_owned(),
                suggestion: suggest(plugin, &available).map(str::to_owned),
                available: available.join(", "),
            });
        }
        let config = entry.get("config").map(|n| n.json()).transpose()?;
        out.push(PolicyBinding {
            plugin: plugin.to_owned(),
            config: config.unwrap_or(Json::Null),
        });
    }
    Ok(out)
}
