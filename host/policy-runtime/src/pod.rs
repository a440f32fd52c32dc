//! Strict `v1/Pod` validation of what policies return.
//!
//! `k8s-openapi` types ignore unknown fields when deserialising, which would let a typo (`resourcez`) or a field
//! from a newer API silently vanish on the way to the API server. So: deserialise strictly typed (errors name the
//! path), serialise back, and report any input key that did not survive the round trip as an unknown field.
//!
//! [`parse_pod`] is the same check straight from the JSON a policy returned, for the hot path: one typed
//! deserialise that notes every key it skipped, and only when that finds anything wrong the full check above, for
//! its message. Both accept and refuse exactly the same documents.

use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde_json::Value;

/// Why a document is not a valid Pod.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PodError {
    /// Not a JSON object at all.
    #[error("expected a JSON object, got {0}")]
    NotAnObject(&'static str),
    /// `apiVersion`/`kind` are not `v1`/`Pod`.
    #[error(
        "expected apiVersion `v1` and kind `Pod`, got apiVersion {api_version} and kind {kind}"
    )]
    WrongKind {
        /// The `apiVersion` given.
        api_version: String,
        /// The `kind` given.
        kind: String,
    },
    /// A field has the wrong type or value.
    #[error("at `{path}`: {message}")]
    Invalid {
        /// Where in the pod.
        path: String,
        /// What is wrong there.
        message: String,
    },
    /// A field the Pod schema does not have.
    #[error("unknown field `{0}`")]
    UnknownField(String),
    /// The pod has no containers.
    #[error("`spec.containers` must list at least one container")]
    NoContainers,
    /// Not JSON at all.
    #[error("not JSON: {0}")]
    NotJson(String),
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Check that `value` is a valid `v1/Pod` with no unknown fields and at least one container.
pub fn validate_pod(value: &Value) -> Result<Pod, PodError> {
    let Value::Object(map) = value else {
        return Err(PodError::NotAnObject(type_name(value)));
    };
    let api_version = map.get("apiVersion").and_then(Value::as_str);
    let kind = map.get("kind").and_then(Value::as_str);
    if api_version != Some("v1") || kind != Some("Pod") {
        let show = |v: Option<&Value>| v.map_or_else(|| "(missing)".to_string(), Value::to_string);
        return Err(PodError::WrongKind {
            api_version: show(map.get("apiVersion")),
            kind: show(map.get("kind")),
        });
    }
    let pod: Pod = serde_path_to_error::deserialize(value).map_err(|e| PodError::Invalid {
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })?;
    let round_trip = serde_json::to_value(&pod).map_err(|e| PodError::Invalid {
        path: ".".to_string(),
        message: e.to_string(),
    })?;
    if let Some(path) = first_unknown_field(value, &round_trip, &mut String::new()) {
        return Err(PodError::UnknownField(path));
    }
    if pod.spec.as_ref().is_none_or(|s| s.containers.is_empty()) {
        return Err(PodError::NoContainers);
    }
    Ok(pod)
}

/// [`validate_pod`] on a pod given as JSON, without building a `Value` when the pod is valid.
pub fn parse_pod(json: &str) -> Result<Pod, PodError> {
    if let Some(pod) = parse_valid_pod(json) {
        return Ok(pod);
    }
    let value: Value = serde_json::from_str(json).map_err(|e| PodError::NotJson(e.to_string()))?;
    validate_pod(&value)
}

/// A Pod's top level with `apiVersion` and `kind` required (k8s-openapi's `Pod` checks them only when present).
#[derive(Deserialize)]
struct PodDocument {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    #[serde(default)]
    metadata: ObjectMeta,
    spec: Option<PodSpec>,
    status: Option<PodStatus>,
}

/// The pod, when `json` passes every check of [`validate_pod`]; `None` when anything is off (an unknown key, even one
/// set to `null`, which [`validate_pod`] then judges).
fn parse_valid_pod(json: &str) -> Option<Pod> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let mut skipped = false;
    let document: PodDocument =
        serde_ignored::deserialize(&mut deserializer, |_| skipped = true).ok()?;
    deserializer.end().ok()?;
    let valid = !skipped
        && document.api_version == "v1"
        && document.kind == "Pod"
        && document
            .spec
            .as_ref()
            .is_some_and(|s| !s.containers.is_empty());
    valid.then_some(Pod {
        metadata: document.metadata,
        spec: document.spec,
        status: document.status,
    })
}

/// The first key present (and not null) in `input` but absent from `typed` (its typed round trip), as a path.
fn first_unknown_field(input: &Value, typed: &Value, path: &mut String) -> Option<String> {
    match (input, typed) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                let found = match b.get(key) {
                    None if !value.is_null() => Some(path.clone()),
                    None => None,
                    Some(typed_value) => first_unknown_field(value, typed_value, path),
                };
                path.truncate(len);
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        (Value::Array(a), Value::Array(b)) => {
            a.iter().zip(b).enumerate().find_map(|(i, (x, y))| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = first_unknown_field(x, y, path);
                path.truncate(len);
                found
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i",
                "resources": {"limits": {"memory": "1Gi", "nvidia.com/gpu": 1}}}]}
        })
    }

    /// Both checks give the same verdict; `parse_pod` also refuses what is not JSON.
    fn check(value: &Value) -> Result<Pod, PodError> {
        let typed = validate_pod(value);
        assert_eq!(parse_pod(&value.to_string()), typed, "on {value}");
        typed
    }

    #[test]
    fn accepts_a_valid_pod() {
        let typed = check(&pod()).unwrap();
        assert_eq!(typed.metadata.labels.unwrap()["a"], "b");
        // An unknown key set to null is no change and passes; a status is part of a Pod.
        let mut p = pod();
        p["spec"]["containers"][0]["resourcez"] = Value::Null;
        p["status"] = json!({"phase": "Pending"});
        check(&p).unwrap();
    }

    #[test]
    fn parse_pod_refuses_what_is_not_json() {
        assert!(matches!(
            parse_pod("{\"apiVersion\""),
            Err(PodError::NotJson(_))
        ));
        assert!(matches!(
            parse_pod(&format!("{} trailing", pod())),
            Err(PodError::NotJson(_))
        ));
    }

    #[test]
    fn names_unknown_fields_with_their_path() {
        let mut p = pod();
        p["spec"]["containers"][0]["resourcez"] = json!({});
        assert_eq!(
            check(&p).unwrap_err(),
            PodError::UnknownField("spec.containers[0].resourcez".into())
        );
        let mut p = pod();
        p["extra"] = json!(1);
        assert_eq!(
            check(&p).unwrap_err(),
            PodError::UnknownField("extra".into())
        );
    }

    #[test]
    fn names_badly_typed_fields() {
        let mut p = pod();
        p["spec"]["containers"][0]["ports"] = json!("8080");
        let err = check(&p).unwrap_err().to_string();
        assert!(err.contains("spec.containers[0].ports"), "{err}");
    }

    #[test]
    fn refuses_non_pods() {
        assert!(matches!(
            check(&json!([1])),
            Err(PodError::NotAnObject("an array"))
        ));
        let mut p = pod();
        p["kind"] = json!("Deployment");
        assert!(matches!(check(&p), Err(PodError::WrongKind { .. })));
        let mut p = pod();
        p.as_object_mut().unwrap().remove("apiVersion");
        assert!(matches!(check(&p), Err(PodError::WrongKind { .. })));
        let mut p = pod();
        p["spec"]["containers"] = json!([]);
        assert_eq!(check(&p).unwrap_err(), PodError::NoContainers);
        let mut p = pod();
        p.as_object_mut().unwrap().remove("spec");
        assert_eq!(check(&p).unwrap_err(), PodError::NoContainers);
    }
}
