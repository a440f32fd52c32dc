//! The simulator's writes to the Kubernetes API: node registration, bindings, forced deletes and events.

use k8s_openapi::{
    api::core::v1::{Binding, Event, Node, ObjectReference, Pod},
    jiff::Timestamp,
};
use kube::{
    Api, Client, ResourceExt as _,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

use crate::{
    config::NodeSpec,
    events::{PodEvent, event_object},
};

/// Label on every node the simulator registers (so they are easy to find and clean up).
pub const NODE_LABEL: &str = "sim.clearml-k8s-agent/node";

/// Create (or update) one simulated Node and mark it Ready with its capacity.
pub(crate) async fn register_node(client: &Client, spec: &NodeSpec) -> Result<(), kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut labels = spec.labels.clone();
    for (k, v) in [
        ("kubernetes.io/hostname", spec.name.as_str()),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("type", "kwok"),
        (NODE_LABEL, "true"),
    ] {
        labels.entry(k.to_owned()).or_insert_with(|| v.to_owned());
    }
    let node = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": spec.name, "labels": labels},
        "spec": {},
    });
    // Server-side apply: creates the node or updates its labels, idempotently across runs.
    let params = PatchParams::apply("kubelet-sim").force();
    nodes
        .patch(&spec.name, &params, &Patch::Apply(&node))
        .await?;
    nodes
        .patch_status(
            &spec.name,
            &PatchParams::default(),
            &Patch::Merge(node_status(spec)),
        )
        .await?;
    Ok(())
}

/// Create the events of one step about `pod` (as it was when the step was decided), concurrently. An event that
/// exists already (a retried step) is fine; other failures are logged, never fatal: events are informational.
pub(crate) async fn create_events(client: &Client, pod: &Pod, events: &[PodEvent]) {
    let namespace = pod.namespace().unwrap_or_default();
    let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
    let now = Timestamp::now();
    let creates = events.iter().enumerate().map(|(index, event)| {
        let api = api.clone();
        let object = event_object(pod, event, index, now);
        async move {
            match api.create(&PostParams::default(), &object).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => {
                    tracing::warn!(pod = %pod.name_any(), reason = event.reason, error = %e, "creating an event failed")
                }
            }
        }
    });
    futures::future::join_all(creates).await;
}

pub(crate) async fn bind(api: &Api<Pod>, pod: &Pod, node: &str) -> Result<(), kube::Error> {
    let name = pod.name_any();
    let binding = Binding {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.clone()),
            namespace: pod.namespace(),
            uid: pod.uid(),
            ..Default::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.to_owned()),
            ..Default::default()
        },
    };
    let _: serde_json::Value = api
        .create_subresource("binding", &name, &PostParams::default(), &binding)
        .await?;
    Ok(())
}

/// kwok's `delete` stage: clear finalizers, then delete with grace period 0.
pub(crate) async fn force_delete(api: &Api<Pod>, pod: &Pod) -> Result<(), kube::Error> {
    let name = pod.name_any();
    if pod
        .metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| !f.is_empty())
    {
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await?;
    }
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    api.delete(&name, &params).await.map(drop)
}

/// The Node status: capacity = allocatable, Ready, an address and the system info a kubelet reports.
fn node_status(spec: &NodeSpec) -> serde_json::Value {
    let now = serde_json::to_value(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        Timestamp::now(),
    ))
    .unwrap_or(serde_json::Value::Null);
    let resources = spec.allocatable_quantities();
    let cond = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    json!({
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "phase": "Running",
            "conditions": [
                cond("Ready", "True", "KubeletReady", "kubelet-sim is posting ready status"),
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "simulated"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "simulated"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "simulated"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": "10.96.0.1"},
                {"type": "Hostname", "address": spec.name},
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": "",
                "containerRuntimeVersion": "kubelet-sim://0.1.0",
                "kernelVersion": "",
                "kubeProxyVersion": "",
                "kubeletVersion": "v1.37.2-sim",
                "machineID": "",
                "operatingSystem": "linux",
                "osImage": "kubelet-sim",
                "systemUUID": "",
            },
        }
    })
}
