//! Building a container's environment the way the kubelet does: plain values, `fieldRef`, and values from Secrets
//! and ConfigMaps (`valueFrom.secretKeyRef` / `configMapKeyRef`, `envFrom`) read through the Kubernetes API. A
//! reference to a Secret, ConfigMap or key that does not exist (and is not `optional`) is the kubelet's
//! `CreateContainerConfigError`, with its message.
//!
//! [`resolve`] is pure (given what the referenced objects hold); [`resolve_pod`] fetches them.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use kube::{Api, Client};

use crate::pod_view::containers;

/// The container that runs the task in the agent's pods (else the first container is taken).
pub const TASK_CONTAINER: &str = "clearml-task";

/// What a referenced object holds, by kind and name; `None` when it does not exist.
#[derive(Debug, Clone, Default)]
pub struct Objects {
    /// Secret name → decoded data.
    pub secrets: BTreeMap<String, Option<BTreeMap<String, String>>>,
    /// ConfigMap name → data.
    pub config_maps: BTreeMap<String, Option<BTreeMap<String, String>>>,
}

/// The environment of one pod's containers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodEnv {
    /// Container name → why its environment cannot be built.
    pub errors: BTreeMap<String, String>,
    /// The task container's environment, when it could be built.
    pub task: Option<BTreeMap<String, String>>,
}

/// The task container: `clearml-task`, else the first container.
pub fn task_container(pod: &Pod) -> Option<&Container> {
    let all = containers(pod);
    all.iter()
        .find(|c| c.name == TASK_CONTAINER)
        .or_else(|| all.first())
}

/// The environment of `container` in `pod`, or the kubelet's message for the first reference that cannot be
/// resolved.
pub fn resolve(
    pod: &Pod,
    container: &Container,
    objects: &Objects,
) -> Result<BTreeMap<String, String>, String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let mut env = BTreeMap::new();
    let lookup = |kind: Kind, name: &str| match kind {
        Kind::Secret => objects.secrets.get(name).cloned().flatten(),
        Kind::ConfigMap => objects.config_maps.get(name).cloned().flatten(),
    };
    for from in container.env_from.iter().flatten() {
        let (kind, name, optional) = if let Some(s) = &from.secret_ref {
            (Kind::Secret, s.name.as_str(), s.optional.unwrap_or(false))
        } else if let Some(c) = &from.config_map_ref {
            (
                Kind::ConfigMap,
                c.name.as_str(),
                c.optional.unwrap_or(false),
            )
        } else {
            continue;
        };
        match lookup(kind, name) {
            Some(data) => {
                let prefix = from.prefix.as_deref().unwrap_or_default();
                env.extend(data.into_iter().map(|(k, v)| (format!("{prefix}{k}"), v)));
            }
            None if optional => {}
            None => return Err(kind.not_found(name)),
        }
    }
    for var in container.env.iter().flatten() {
        let value = if let Some(from) = &var.value_from {
            let (kind, name, key, optional) = if let Some(r) = &from.secret_key_ref {
                (
                    Kind::Secret,
                    r.name.as_str(),
                    r.key.as_str(),
                    r.optional.unwrap_or(false),
                )
            } else if let Some(r) = &from.config_map_key_ref {
                (
                    Kind::ConfigMap,
                    r.name.as_str(),
                    r.key.as_str(),
                    r.optional.unwrap_or(false),
                )
            } else if let Some(f) = &from.field_ref {
                match field(pod, &f.field_path) {
                    Some(v) => {
                        env.insert(var.name.clone(), v);
                    }
                    None => {
                        return Err(format!("unsupported fieldPath: {}", f.field_path));
                    }
                }
                continue;
            } else {
                // resourceFieldRef and the like: nothing the simulator needs; an empty value is harmless.
                env.insert(var.name.clone(), String::new());
                continue;
            };
            match lookup(kind, name) {
                Some(data) => match data.get(key) {
                    Some(v) => v.clone(),
                    None if optional => continue,
                    None => {
                        return Err(format!(
                            "couldn't find key {key} in {} {ns}/{name}",
                            kind.title()
                        ));
                    }
                },
                None if optional => continue,
                None => return Err(kind.not_found(name)),
            }
        } else {
            var.value.clone().unwrap_or_default()
        };
        env.insert(var.name.clone(), value);
    }
    Ok(env)
}

/// Every container's environment, and the task container's values (see [`resolve`]).
pub fn resolve_all(pod: &Pod, objects: &Objects) -> PodEnv {
    let mut out = PodEnv::default();
    let task = task_container(pod).map(|c| c.name.clone());
    for c in containers(pod) {
        match resolve(pod, c, objects) {
            Ok(env) if Some(&c.name) == task.as_ref() => out.task = Some(env),
            Ok(_) => {}
            Err(message) => {
                out.errors.insert(c.name.clone(), message);
            }
        }
    }
    out
}

/// Fetch the Secrets and ConfigMaps the pod's containers refer to, then [`resolve_all`]. A missing object is an
/// answer (the pod cannot start); any other API error is returned, so the caller tries again later.
pub async fn resolve_pod(client: &Client, pod: &Pod) -> Result<PodEnv, kube::Error> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let (secret_names, config_map_names) = references(pod);
    let mut objects = Objects::default();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    for name in secret_names {
        let data = secrets.get_opt(&name).await?.map(|s| {
            s.data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                .collect()
        });
        objects.secrets.insert(name, data);
    }
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    for name in config_map_names {
        let data = config_maps
            .get_opt(&name)
            .await?
            .map(|c| c.data.unwrap_or_default());
        objects.config_maps.insert(name, data);
    }
    Ok(resolve_all(pod, &objects))
}

/// The names of the Secrets and ConfigMaps the pod's containers refer to.
fn references(pod: &Pod) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut secrets = BTreeSet::new();
    let mut config_maps = BTreeSet::new();
    for c in containers(pod) {
        for from in c.env_from.iter().flatten() {
            if let Some(s) = &from.secret_ref {
                secrets.insert(s.name.clone());
            }
            if let Some(m) = &from.config_map_ref {
                config_maps.insert(m.name.clone());
            }
        }
        for var in c.env.iter().flatten() {
            let Some(from) = &var.value_from else {
                continue;
            };
            if let Some(r) = &from.secret_key_ref {
                secrets.insert(r.name.clone());
            }
            if let Some(r) = &from.config_map_key_ref {
                config_maps.insert(r.name.clone());
            }
        }
    }
    (secrets, config_maps)
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Secret,
    ConfigMap,
}

impl Kind {
    fn not_found(self, name: &str) -> String {
        match self {
            Kind::Secret => format!("secret \"{name}\" not found"),
            Kind::ConfigMap => format!("configmap \"{name}\" not found"),
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::Secret => "Secret",
            Kind::ConfigMap => "ConfigMap",
        }
    }
}

/// The downward-API fields the simulator knows.
fn field(pod: &Pod, path: &str) -> Option<String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let from_map = |map: Option<&BTreeMap<String, String>>, prefix: &str| {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(map?.get(key).cloned().unwrap_or_default())
    };
    match path {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => meta.namespace.clone(),
        "metadata.uid" => meta.uid.clone(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
        _ => from_map(meta.labels.as_ref(), "metadata.labels['")
            .or_else(|| from_map(meta.annotations.as_ref(), "metadata.annotations['")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::pod;
    use serde_json::json;

    fn agent_pod() -> Pod {
        pod(json!({
            "metadata": {"name": "clearml-id-t1", "namespace": "ns", "uid": "u1", "labels": {"clearml-task-id": "t1"}},
            "spec": {"containers": [
                {"name": "sidecar", "image": "busybox"},
                {"name": "clearml-task", "image": "python:3", "env": [
                    {"name": "CLEARML_API_HOST", "value": "http://api:8008"},
                    {"name": "CLEARML_API_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "access"}}},
                    {"name": "CLEARML_API_SECRET_KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "secret"}}},
                    {"name": "TASK", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['clearml-task-id']"}}},
                    {"name": "OPTIONAL", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": true}}},
                ]},
            ]},
        }))
    }

    fn creds(data: &[(&str, &str)]) -> Objects {
        let data = data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Objects {
            secrets: [("creds".to_owned(), Some(data)), ("nope".to_owned(), None)].into(),
            ..Objects::default()
        }
    }

    #[test]
    fn secret_key_refs_resolve_to_the_secret_values() {
        let env = resolve_all(&agent_pod(), &creds(&[("access", "AK"), ("secret", "SK")]));
        assert!(env.errors.is_empty());
        let task = env.task.unwrap();
        assert_eq!(task["CLEARML_API_HOST"], "http://api:8008");
        assert_eq!(task["CLEARML_API_ACCESS_KEY"], "AK");
        assert_eq!(task["CLEARML_API_SECRET_KEY"], "SK");
        assert_eq!(task["TASK"], "t1");
        assert!(!task.contains_key("OPTIONAL"));
    }

    #[test]
    fn a_missing_secret_or_key_is_the_kubelets_config_error() {
        let missing_key = resolve_all(&agent_pod(), &creds(&[("access", "AK")]));
        assert_eq!(
            missing_key.errors["clearml-task"],
            "couldn't find key secret in Secret ns/creds"
        );
        assert!(missing_key.task.is_none());
        let missing_secret = resolve_all(&agent_pod(), &Objects::default());
        assert_eq!(
            missing_secret.errors["clearml-task"],
            "secret \"creds\" not found"
        );
        // The sidecar has no references and is fine.
        assert!(!missing_secret.errors.contains_key("sidecar"));
    }

    #[test]
    fn the_task_container_is_found_by_name() {
        assert_eq!(task_container(&agent_pod()).unwrap().name, "clearml-task");
        let (secrets, config_maps) = references(&agent_pod());
        assert_eq!(secrets, ["creds".to_owned(), "nope".to_owned()].into());
        assert!(config_maps.is_empty());
    }
}
