//! `guardrails` queue policy: refuses pods a queue must not run, and says which rule and which field.
//!
//! Rules (each configurable; the defaults are the safe choice for a shared cluster):
//! - `privileged` (`allowPrivileged: false`): no container with `securityContext.privileged: true` or
//!   `capabilities.add` of `SYS_ADMIN` / `ALL`.
//! - `hostPath` (`allowHostPath: false`, `allowedHostPaths: []`): no `hostPath` volume, except under an allowed path.
//! - `hostNetwork`, `hostPID`, `hostIPC` (`allowHostNetwork` / `allowHostPID` / `allowHostIPC: false`).
//! - `requireLimits` (default `[]`): every container must set these limits (e.g. `[cpu, memory]`).
//! - `allowedRegistries` (default `[]`, any): every image must come from one of these registries or repository
//!   prefixes (`docker.io/library`, `registry.example.com/ml`, or a Docker Hub organisation such as `nvidia`).
//!   `python:3.11` means `docker.io/library/python`.
//!
//! All violations are reported at once, so an ML user fixes the task in one go. Guardrails does not change the pod.

use policy_kit::{Logger, Policy, PolicyError, Task, config_from_value, container_label};
use serde::Deserialize;
use serde_json::Value;

/// The policy type exported as the component.
pub struct Guardrails;

/// The policy config (camelCase keys; unknown keys are an error).
/// Every `allow*` defaults to false and every list to empty: a queue switches rules off explicitly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    pub allow_privileged: bool,
    pub allow_host_path: bool,
    /// Host paths allowed even when `allowHostPath` is false (matched on path boundaries: `/data` allows
    /// `/data/x`, not `/database`).
    pub allowed_host_paths: Vec<String>,
    pub allow_host_network: bool,
    #[serde(rename = "allowHostPID")]
    pub allow_host_pid: bool,
    #[serde(rename = "allowHostIPC")]
    pub allow_host_ipc: bool,
    /// Resource names every container must limit.
    pub require_limits: Vec<String>,
    /// Registries or repository prefixes images may come from; empty allows any.
    pub allowed_registries: Vec<String>,
}

impl Config {
    fn check(&self) -> Result<(), PolicyError> {
        for (i, path) in self.allowed_host_paths.iter().enumerate() {
            if !path.starts_with('/') {
                return Err(PolicyError::InvalidConfig(format!(
                    "allowedHostPaths[{i}]: `{path}` must be an absolute path"
                )));
            }
        }
        for (i, name) in self.require_limits.iter().enumerate() {
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(PolicyError::InvalidConfig(format!(
                    "requireLimits[{i}]: `{name}` is not a resource name (e.g. cpu, memory, nvidia.com/gpu)"
                )));
            }
        }
        for (i, registry) in self.allowed_registries.iter().enumerate() {
            if registry.is_empty()
                || registry.contains(char::is_whitespace)
                || registry.contains('@')
            {
                return Err(PolicyError::InvalidConfig(format!(
                    "allowedRegistries[{i}]: `{registry}` is not a registry (e.g. docker.io, registry.example.com/ml)"
                )));
            }
        }
        Ok(())
    }
}

/// The repository of an image without tag or digest, with Docker Hub's implicit parts spelled out:
/// `python:3.11` -> `docker.io/library/python`, `ghcr.io/org/img@sha256:..` -> `ghcr.io/org/img`.
pub fn normalise_image(image: &str) -> String {
    let without_digest = image.split('@').next().unwrap_or(image);
    // A ':' after the last '/' is a tag; one before it is a registry port.
    let repo = match without_digest.rfind(':') {
        Some(i) if !without_digest[i..].contains('/') => &without_digest[..i],
        _ => without_digest,
    };
    let (first, rest) = repo.split_once('/').unwrap_or(("", repo));
    let is_registry = first.contains('.') || first.contains(':') || first == "localhost";
    if is_registry {
        let registry = if first == "index.docker.io" {
            "docker.io"
        } else {
            first
        };
        format!("{registry}/{rest}")
    } else if first.is_empty() {
        format!("docker.io/library/{rest}")
    } else {
        format!("docker.io/{repo}")
    }
}

/// An `allowedRegistries` entry in the form [`normalise_image`] gives: a Docker Hub organisation written the short
/// way (`nvidia`) means `docker.io/nvidia`; an entry naming a registry host (`nvcr.io/nvidia`) is used as is.
fn normalise_entry(entry: &str) -> String {
    let entry = entry.trim_end_matches('/');
    let first = entry.split('/').next().unwrap_or(entry);
    if first == "index.docker.io" {
        entry.replacen("index.docker.io", "docker.io", 1)
    } else if first.contains('.') || first.contains(':') || first == "localhost" {
        entry.to_owned()
    } else {
        format!("docker.io/{entry}")
    }
}

fn registry_allowed(image: &str, allowed: &[String]) -> bool {
    let repo = normalise_image(image);
    allowed.iter().any(|entry| {
        let entry = normalise_entry(entry);
        repo == entry
            || repo
                .strip_prefix(entry.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

fn path_allowed(path: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|prefix| {
        let prefix = prefix.trim_end_matches('/');
        path == prefix
            || prefix.is_empty()
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

fn truthy(value: Option<&Value>) -> bool {
    value.and_then(Value::as_bool).unwrap_or(false)
}

/// Every rule the pod breaks, as `rule `x`: field ...` lines.
pub fn violations(pod: &Value, config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    let host_rules = [
        ("hostNetwork", config.allow_host_network, "host networking"),
        (
            "hostPID",
            config.allow_host_pid,
            "the host's process namespace",
        ),
        ("hostIPC", config.allow_host_ipc, "the host's IPC namespace"),
    ];
    for (field, allowed, what) in host_rules {
        if !allowed && truthy(spec.get(field)) {
            out.push(format!(
                "rule `{field}`: spec.{field} is true (this queue does not allow {what})"
            ));
        }
    }
    if let Some(volumes) = spec.get("volumes").and_then(Value::as_array) {
        for (i, volume) in volumes.iter().enumerate() {
            let Some(host_path) = volume.get("hostPath") else {
                continue;
            };
            let path = host_path.get("path").and_then(Value::as_str).unwrap_or("");
            if !config.allow_host_path && !path_allowed(path, &config.allowed_host_paths) {
                let name = volume.get("name").and_then(Value::as_str).unwrap_or("?");
                out.push(format!(
                    "rule `hostPath`: spec.volumes[{i}] ({name}).hostPath.path is `{path}` (this queue does not allow \
                     host paths{})",
                    if config.allowed_host_paths.is_empty() {
                        String::new()
                    } else {
                        format!(" outside {}", config.allowed_host_paths.join(", "))
                    }
                ));
            }
        }
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(containers) = spec.get(list).and_then(Value::as_array) else {
            continue;
        };
        for (i, container) in containers.iter().enumerate() {
            let at = container_label(list, i, container);
            let security = container.get("securityContext").unwrap_or(&Value::Null);
            if !config.allow_privileged {
                if truthy(security.get("privileged")) {
                    out.push(format!(
                        "rule `privileged`: {at}.securityContext.privileged is true (this queue does not allow \
                         privileged containers)"
                    ));
                }
                let added = security
                    .pointer("/capabilities/add")
                    .and_then(Value::as_array);
                for cap in added.into_iter().flatten().filter_map(Value::as_str) {
                    let bare = cap.trim_start_matches("CAP_").to_ascii_uppercase();
                    if bare == "SYS_ADMIN" || bare == "ALL" {
                        out.push(format!(
                            "rule `privileged`: {at}.securityContext.capabilities.add has `{cap}` (this queue does not \
                             allow privileged containers)"
                        ));
                    }
                }
            }
            // Ephemeral containers cannot have resources; limits are checked on the others.
            if list != "ephemeralContainers" {
                for name in &config.require_limits {
                    if container
                        .pointer("/resources/limits")
                        .and_then(|l| l.get(name))
                        .is_none()
                    {
                        out.push(format!(
                            "rule `requireLimits`: {at}.resources.limits.{name} is missing (this queue requires a \
                             {name} limit on every container)"
                        ));
                    }
                }
            }
            if !config.allowed_registries.is_empty() {
                let image = container.get("image").and_then(Value::as_str).unwrap_or("");
                if !registry_allowed(image, &config.allowed_registries) {
                    out.push(format!(
                        "rule `allowedRegistries`: {at}.image `{image}` is not from an allowed registry ({})",
                        config.allowed_registries.join(", ")
                    ));
                }
            }
        }
    }
    out
}

impl Policy for Guardrails {
    type Config = Config;

    // Guardrails only accept or refuse: the pod goes back as it came, without being serialised again.
    const INSPECTS_ONLY: bool = true;

    fn parse_config(config: &Value) -> Result<Config, PolicyError> {
        let config: Config = config_from_value(config)?;
        config.check()?;
        Ok(config)
    }

    fn transform(
        pod: Value,
        task: &Task,
        config: &Config,
        _log: &mut dyn Logger,
    ) -> Result<Value, PolicyError> {
        let found = violations(&pod, config);
        if found.is_empty() {
            Ok(pod)
        } else {
            Err(PolicyError::Reject(format!(
                "queue `{}` refuses this pod: {}",
                task.queue_name,
                found.join("; ")
            )))
        }
    }
}

policy_kit::export_policy!(Guardrails);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn normalises_images() {
        let cases = [
            ("python:3.11", "docker.io/library/python"),
            (
                "pytorch/pytorch:2.3.0-cuda12.1",
                "docker.io/pytorch/pytorch",
            ),
            ("nvcr.io/nvidia/pytorch:24.05-py3", "nvcr.io/nvidia/pytorch"),
            ("localhost:5000/train@sha256:abc", "localhost:5000/train"),
            (
                "registry.example.com:8443/ml/img",
                "registry.example.com:8443/ml/img",
            ),
            ("index.docker.io/library/ubuntu", "docker.io/library/ubuntu"),
        ];
        for (image, want) in cases {
            assert_eq!(normalise_image(image), want, "{image}");
        }
    }

    #[test]
    fn registry_and_path_prefixes_respect_boundaries() {
        let allowed = vec![
            "registry.example.com/ml".to_owned(),
            "docker.io/library".to_owned(),
        ];
        assert!(registry_allowed(
            "registry.example.com/ml/train:1",
            &allowed
        ));
        assert!(!registry_allowed(
            "registry.example.com/mlops/train:1",
            &allowed
        ));
        assert!(registry_allowed("python:3.11", &allowed));
        assert!(!registry_allowed("pytorch/pytorch", &allowed));
        // Docker Hub organisations may be written the short way, as in `docker pull nvidia/cuda`.
        let hub = vec!["nvidia".to_owned(), "index.docker.io/pytorch".to_owned()];
        assert!(registry_allowed(
            "nvidia/cuda:12.4.1-runtime-ubuntu22.04",
            &hub
        ));
        assert!(registry_allowed("docker.io/pytorch/pytorch:2.3.0", &hub));
        assert!(!registry_allowed("nvcr.io/nvidia/pytorch:24.05-py3", &hub));
        let paths = vec!["/data".to_owned()];
        assert!(path_allowed("/data/imagenet", &paths));
        assert!(!path_allowed("/database", &paths));
    }

    #[test]
    fn defaults_allow_a_plain_pod() {
        let pod =
            json!({"spec": {"containers": [{"name": "clearml-task", "image": "python:3.11"}]}});
        let config = Guardrails::parse_config(&Value::Null).unwrap();
        assert!(violations(&pod, &config).is_empty());
    }

    #[test]
    fn config_errors_name_the_key() {
        let cases = [
            (json!({"allowPrivileged": "no"}), "config.allowPrivileged"),
            (
                json!({"allowHostPid": true}),
                "unknown field `allowHostPid`",
            ),
            (json!({"allowedHostPaths": ["data"]}), "allowedHostPaths[0]"),
            (
                json!({"requireLimits": ["memory limit"]}),
                "requireLimits[0]",
            ),
        ];
        for (config, want) in cases {
            let err = Guardrails::parse_config(&config).unwrap_err();
            assert!(
                matches!(&err, PolicyError::InvalidConfig(m) if m.contains(want)),
                "{config}: {err}"
            );
        }
    }
}
