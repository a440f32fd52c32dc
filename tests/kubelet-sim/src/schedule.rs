//! The scheduler's part: bind a pending pod to the first simulated node that fits, or say why none does.
//!
//! Fit is by the pod's effective requests (as kube-scheduler computes them) against each node's allocatable minus
//! what non-terminal pods already take, and by `nodeSelector`; the failure message has the scheduler's FitError
//! shape (`0/2 nodes are available: 2 Insufficient nvidia.com/gpu.`).

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{Container, Pod},
    jiff::Timestamp,
};
use serde_json::{Value, json};

use crate::{
    config::{DecideError, NodeSpec, SimConfig, parse},
    decide::Action,
    pod_view::containers,
    status::time,
};

/// The only scheduler the simulator stands in for.
pub const DEFAULT_SCHEDULER: &str = "default-scheduler";

/// The cluster as the scheduler sees it: resources already requested on each node by non-terminal pods.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// Node name → resource → milli-units requested.
    pub by_node: BTreeMap<String, BTreeMap<String, i128>>,
}

impl Usage {
    /// Account `requests` on `node` (a pod each; the `pods` resource counts one per pod).
    pub fn add(&mut self, node: &str, requests: &BTreeMap<String, i128>) {
        let used = self.by_node.entry(node.to_owned()).or_default();
        for (k, v) in requests {
            *used.entry(k.clone()).or_default() += v;
        }
        *used.entry("pods".to_owned()).or_default() += 1000;
    }
}

/// Effective requests of a pod, like the scheduler computes them: the sum over containers, or the largest init
/// container if that is more, per resource. Limits stand in for missing requests (the apiserver defaults them so).
pub fn pod_requests(pod: &Pod) -> Result<BTreeMap<String, i128>, DecideError> {
    let mut total: BTreeMap<String, i128> = BTreeMap::new();
    for c in containers(pod) {
        for (k, v) in container_requests(c)? {
            *total.entry(k).or_default() += v;
        }
    }
    if let Some(init) = pod.spec.as_ref().and_then(|s| s.init_containers.as_ref()) {
        for c in init {
            for (k, v) in container_requests(c)? {
                let e = total.entry(k).or_default();
                *e = (*e).max(v);
            }
        }
    }
    Ok(total)
}

fn container_requests(c: &Container) -> Result<BTreeMap<String, i128>, DecideError> {
    let mut out = BTreeMap::new();
    let Some(res) = &c.resources else {
        return Ok(out);
    };
    if let Some(limits) = &res.limits {
        for (k, q) in limits {
            out.insert(k.clone(), parse(k, &q.0)?);
        }
    }
    if let Some(requests) = &res.requests {
        for (k, q) in requests {
            out.insert(k.clone(), parse(k, &q.0)?);
        }
    }
    Ok(out)
}

pub(crate) fn schedule(pod: &Pod, config: &SimConfig, usage: &Usage) -> Action {
    let scheduler = pod
        .spec
        .as_ref()
        .and_then(|s| s.scheduler_name.as_deref())
        .unwrap_or(DEFAULT_SCHEDULER);
    if scheduler != DEFAULT_SCHEDULER || config.nodes.is_empty() {
        return Action::None;
    }
    let requests = match pod_requests(pod) {
        Ok(r) => r,
        Err(e) => return unschedulable_unless_same(pod, format!("invalid resource requests: {e}")),
    };
    let selector = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_selector.clone())
        .unwrap_or_default();
    // Reason → number of nodes that failed for it, like the scheduler's FitError message.
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let empty = BTreeMap::new();
    for node in &config.nodes {
        if !selector
            .iter()
            .all(|(k, v)| node_label(node, k).is_some_and(|l| l == v))
        {
            *reasons
                .entry("node(s) didn't match Pod's node affinity/selector".to_owned())
                .or_default() += 1;
            continue;
        }
        let used = usage.by_node.get(&node.name).unwrap_or(&empty);
        let mut fits = true;
        let mut wanted = requests.clone();
        *wanted.entry("pods".to_owned()).or_default() += 1000;
        for (resource, want) in &wanted {
            if *want <= 0 {
                continue;
            }
            let have = node.allocatable.get(resource).copied().unwrap_or(0);
            let taken = used.get(resource).copied().unwrap_or(0);
            if taken + want > have {
                let reason = if resource == "pods" {
                    "Too many pods".to_owned()
                } else {
                    format!("Insufficient {resource}")
                };
                *reasons.entry(reason).or_default() += 1;
                fits = false;
            }
        }
        if fits {
            return Action::Bind(node.name.clone());
        }
    }
    let n = config.nodes.len();
    let parts: Vec<String> = reasons
        .iter()
        .map(|(reason, count)| format!("{count} {reason}"))
        .collect();
    unschedulable_unless_same(
        pod,
        format!("0/{n} nodes are available: {}.", parts.join(", ")),
    )
}

fn unschedulable_unless_same(pod: &Pod, message: String) -> Action {
    let current = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"));
    match current {
        Some(c) if c.status == "False" && c.message.as_deref() == Some(message.as_str()) => {
            Action::None
        }
        _ => Action::Unschedulable(message),
    }
}

/// The status patch that marks a pod unschedulable (what kube-scheduler writes).
pub fn unschedulable_status(message: &str, now: Timestamp) -> Value {
    json!({
        "status": {
            "phase": "Pending",
            "conditions": [{
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastProbeTime": null,
                "lastTransitionTime": time(now),
            }],
        }
    })
}

fn node_label<'a>(node: &'a NodeSpec, key: &str) -> Option<&'a str> {
    if key == "kubernetes.io/hostname" {
        return Some(&node.name);
    }
    node.labels.get(key).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::GPU,
        decide::Action,
        test_support::{apply, bound, config, gpu_pod, now, pod},
    };
    use serde_json::json;

    /// The action of one step with nothing observed beyond the pod (no config errors, no in-pod process).
    fn decide(pod: &Pod, config: &SimConfig, usage: &Usage, now: Timestamp) -> Action {
        crate::decide::decide(
            pod,
            config,
            usage,
            now,
            &crate::decide::KubeletView::default(),
        )
        .action
    }

    #[test]
    fn binds_to_a_node_that_fits() {
        assert_eq!(
            decide(&gpu_pod(0), &config(), &Usage::default(), now()),
            Action::Bind("cpu-0".into())
        );
        assert_eq!(
            decide(&gpu_pod(2), &config(), &Usage::default(), now()),
            Action::Bind("gpu-0".into())
        );
    }

    #[test]
    fn too_many_gpus_is_unschedulable_with_the_scheduler_message() {
        let action = decide(&gpu_pod(4), &config(), &Usage::default(), now());
        assert_eq!(
            action,
            Action::Unschedulable("0/2 nodes are available: 2 Insufficient nvidia.com/gpu.".into())
        );
        // Already marked with the same message: nothing to do (no patch loop).
        let patched = apply(
            &gpu_pod(4),
            &unschedulable_status(
                "0/2 nodes are available: 2 Insufficient nvidia.com/gpu.",
                now(),
            ),
        );
        assert_eq!(
            decide(&patched, &config(), &Usage::default(), now()),
            Action::None
        );
    }

    #[test]
    fn usage_counts_against_capacity() {
        let mut usage = Usage::default();
        usage.add("gpu-0", &[(GPU.to_owned(), 2000)].into());
        let action = decide(&gpu_pod(1), &config(), &usage, now());
        assert_eq!(
            action,
            Action::Unschedulable("0/2 nodes are available: 2 Insufficient nvidia.com/gpu.".into())
        );
    }

    #[test]
    fn node_selector_is_honoured_and_reported() {
        let mut p = gpu_pod(0);
        p.spec.as_mut().unwrap().node_selector =
            Some([("gpu-type".to_owned(), "a100".to_owned())].into());
        assert_eq!(
            decide(&p, &config(), &Usage::default(), now()),
            Action::Bind("gpu-0".into())
        );
        p.spec.as_mut().unwrap().node_selector =
            Some([("gpu-type".to_owned(), "h100".to_owned())].into());
        assert_eq!(
            decide(&p, &config(), &Usage::default(), now()),
            Action::Unschedulable(
                "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."
                    .into()
            )
        );
    }

    #[test]
    fn mixed_reasons_are_counted_per_reason() {
        let p = pod(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "main", "resources": {"requests": {"cpu": "20", "nvidia.com/gpu": "1"}}}]},
        }));
        assert_eq!(
            decide(&p, &config(), &Usage::default(), now()),
            Action::Unschedulable(
                "0/2 nodes are available: 2 Insufficient cpu, 1 Insufficient nvidia.com/gpu."
                    .into()
            )
        );
    }

    #[test]
    fn other_schedulers_and_foreign_nodes_are_left_alone() {
        let mut p = gpu_pod(0);
        p.spec.as_mut().unwrap().scheduler_name = Some("volcano".into());
        assert_eq!(
            decide(&p, &config(), &Usage::default(), now()),
            Action::None
        );
        assert_eq!(
            decide(
                &bound(gpu_pod(0), "real-node"),
                &config(),
                &Usage::default(),
                now()
            ),
            Action::None
        );
    }

    #[test]
    fn requests_sum_containers_and_take_the_largest_init_container() {
        let p = pod(json!({
            "metadata": {"name": "p"},
            "spec": {
                "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "3"}}}],
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
                    {"name": "b", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "250m"}}},
                ],
            },
        }));
        let r = pod_requests(&p).unwrap();
        assert_eq!(r["cpu"], 3000);
        assert_eq!(r["memory"], (1i128 << 30) * 1000);
    }
}
