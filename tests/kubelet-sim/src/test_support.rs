//! Fixtures shared by the unit tests of the pure modules.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use k8s_openapi::{api::core::v1::Pod, jiff::Timestamp};
use regex::Regex;
use serde_json::{Value, json};

use crate::config::{NodeSpec, SimConfig};

pub(crate) fn pod(json: Value) -> Pod {
    serde_json::from_value(json).unwrap()
}

pub(crate) fn gpu_pod(gpus: u32) -> Pod {
    pod(json!({
        "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
        "spec": {"containers": [{"name": "main", "image": "busybox",
            "resources": {"limits": {"nvidia.com/gpu": gpus.to_string()}}}]},
    }))
}

pub(crate) fn config() -> SimConfig {
    SimConfig {
        nodes: vec![
            NodeSpec::new("cpu-0", "8", "32Gi", 0).unwrap(),
            NodeSpec::new("gpu-0", "16", "64Gi", 2)
                .unwrap()
                .with_label("gpu-type", "a100"),
        ],
        default_run: Duration::from_secs(5),
        image_pull_error: Some(Regex::new("^registry.invalid/").unwrap()),
        in_pod_agent: Some(crate::config::InPodAgent::default()),
        events: true,
    }
}

pub(crate) fn now() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

/// Apply a status patch the simple way (replace fields), good enough to feed `decide` its own output.
pub(crate) fn apply(p: &Pod, patch: &Value) -> Pod {
    let mut v = serde_json::to_value(p).unwrap();
    let status = v
        .as_object_mut()
        .unwrap()
        .entry("status")
        .or_insert(json!({}));
    for (k, val) in patch["status"].as_object().unwrap() {
        status[k] = val.clone();
    }
    pod(v)
}

pub(crate) fn bound(mut p: Pod, node: &str) -> Pod {
    p.spec.as_mut().unwrap().node_name = Some(node.to_owned());
    p
}
