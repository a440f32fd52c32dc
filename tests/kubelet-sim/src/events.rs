//! The Kubernetes Events a scheduler and a kubelet write about a pod (core/v1 `Event`, `involvedObject` = the pod),
//! so consumers that read them (the agent appends them to the task's log) see what a cluster would tell them.
//!
//! [`crate::decide`] says which events a step produces ([`PodEvent`]); [`event_object`] turns one into the Event
//! the I/O loop creates. Reasons and messages follow kube-scheduler's and the kubelet's wording.

use k8s_openapi::{
    api::core::v1::{Container, Event, EventSource, ObjectReference, Pod},
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
    jiff::Timestamp,
};

use crate::status::fnv;

/// Who reports an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reporter {
    /// kube-scheduler (`default-scheduler`).
    Scheduler,
    /// The kubelet of the pod's node.
    Kubelet,
}

/// One event about a pod: `Normal` or `Warning`, a reason and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEvent {
    /// `true` for `Warning`, `false` for `Normal`.
    pub warning: bool,
    /// The machine-readable reason (`Scheduled`, `FailedScheduling`, `Pulling`, `BackOff`, `Evicted`, ...).
    pub reason: &'static str,
    /// The human-readable message.
    pub message: String,
    /// Who reports it.
    pub reporter: Reporter,
    /// The container the event is about (`involvedObject.fieldPath`), if any.
    pub container: Option<String>,
}

impl PodEvent {
    fn new(warning: bool, reporter: Reporter, reason: &'static str, message: String) -> Self {
        Self {
            warning,
            reason,
            message,
            reporter,
            container: None,
        }
    }

    fn on(mut self, c: &Container) -> Self {
        self.container = Some(c.name.clone());
        self
    }
}

/// `Scheduled`: the scheduler bound the pod.
pub(crate) fn scheduled(pod: &Pod, node: &str) -> PodEvent {
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    PodEvent::new(
        false,
        Reporter::Scheduler,
        "Scheduled",
        format!("Successfully assigned {ns}/{name} to {node}"),
    )
}

/// `FailedScheduling` with the scheduler's FitError message.
pub(crate) fn failed_scheduling(message: &str) -> PodEvent {
    PodEvent::new(
        true,
        Reporter::Scheduler,
        "FailedScheduling",
        message.to_owned(),
    )
}

/// `Pulling` then `Pulled` for a container's image.
pub(crate) fn pulled(c: &Container) -> [PodEvent; 2] {
    let image = c.image.as_deref().unwrap_or_default();
    [
        PodEvent::new(
            false,
            Reporter::Kubelet,
            "Pulling",
            format!("Pulling image \"{image}\""),
        )
        .on(c),
        PodEvent::new(
            false,
            Reporter::Kubelet,
            "Pulled",
            format!(
                "Successfully pulled image \"{image}\" in 0s (0s including waiting) (simulated)"
            ),
        )
        .on(c),
    ]
}

/// `Created` then `Started` for a container.
pub(crate) fn started(c: &Container) -> [PodEvent; 2] {
    [
        PodEvent::new(
            false,
            Reporter::Kubelet,
            "Created",
            format!("Created container: {}", c.name),
        )
        .on(c),
        PodEvent::new(
            false,
            Reporter::Kubelet,
            "Started",
            format!("Started container {}", c.name),
        )
        .on(c),
    ]
}

/// A kubelet `Failed` warning about a container (`Failed to pull image ...`, `Error: ErrImagePull`, ...).
pub(crate) fn failed(c: &Container, message: String) -> PodEvent {
    PodEvent::new(true, Reporter::Kubelet, "Failed", message).on(c)
}

/// `BackOff`: the kubelet waits before pulling again.
pub(crate) fn back_off(c: &Container) -> PodEvent {
    let image = c.image.as_deref().unwrap_or_default();
    PodEvent::new(
        true,
        Reporter::Kubelet,
        "BackOff",
        format!("Back-off pulling image \"{image}\""),
    )
    .on(c)
}

/// `InspectFailed`: the image reference does not parse.
pub(crate) fn inspect_failed(c: &Container, message: String) -> PodEvent {
    PodEvent::new(true, Reporter::Kubelet, "InspectFailed", message).on(c)
}

/// `Killing`: the kubelet stops a running container.
pub(crate) fn killing(c: &Container) -> PodEvent {
    PodEvent::new(
        false,
        Reporter::Kubelet,
        "Killing",
        format!("Stopping container {}", c.name),
    )
    .on(c)
}

/// `OOMKilling`-style warning: the container was killed by the kernel's OOM killer.
pub(crate) fn oom_killed(c: &Container) -> PodEvent {
    PodEvent::new(
        true,
        Reporter::Kubelet,
        "OOMKilling",
        format!(
            "Memory cgroup out of memory: Killed process 1 in container {} (simulated)",
            c.name
        ),
    )
    .on(c)
}

/// `Evicted`: the kubelet evicted the pod.
pub(crate) fn evicted(message: String) -> PodEvent {
    PodEvent::new(true, Reporter::Kubelet, "Evicted", message)
}

/// `Preempted`: the scheduler preempted the pod.
pub(crate) fn preempted(pod: &Pod, node: &str) -> PodEvent {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    PodEvent::new(
        false,
        Reporter::Scheduler,
        "Preempted",
        format!("Preempted by a higher-priority pod on node {node} (simulated; victim {uid})"),
    )
}

/// The core/v1 Event for `event` about `pod`, as the reporter would create it. The name is derived from the pod's
/// uid and resourceVersion and the event's position in the step, so a retried step does not create it twice.
pub fn event_object(pod: &Pod, event: &PodEvent, index: usize, now: Timestamp) -> Event {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    let key = format!(
        "{}/{}/{index}/{}",
        pod.metadata.uid.as_deref().unwrap_or_default(),
        pod.metadata.resource_version.as_deref().unwrap_or_default(),
        event.reason
    );
    let (component, host) = match event.reporter {
        Reporter::Scheduler => ("default-scheduler", None),
        Reporter::Kubelet => ("kubelet", node.clone()),
    };
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{name}.{:016x}", fnv(&key))),
            namespace: pod.metadata.namespace.clone(),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(name),
            namespace: pod.metadata.namespace.clone(),
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            field_path: event
                .container
                .as_ref()
                .map(|c| format!("spec.containers{{{c}}}")),
        },
        reason: Some(event.reason.to_owned()),
        message: Some(event.message.clone()),
        type_: Some(if event.warning { "Warning" } else { "Normal" }.to_owned()),
        source: Some(EventSource {
            component: Some(component.to_owned()),
            host: host.clone(),
        }),
        reporting_component: Some(component.to_owned()),
        reporting_instance: Some(host.unwrap_or_else(|| component.to_owned())),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        // Set, eventTime makes the apiserver validate the event as events.k8s.io-style (action required); the
        // kubelet's and scheduler's recorders write core/v1 events with first/lastTimestamp and count instead.
        event_time: None,
        count: Some(1),
        action: None,
        related: None,
        series: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{bound, gpu_pod, now};

    #[test]
    fn kubelet_events_involve_the_pod_and_its_container() {
        let p = bound(gpu_pod(0), "cpu-0");
        let c = &p.spec.as_ref().unwrap().containers[0];
        let e = event_object(&p, &back_off(c), 0, now());
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(e.reason.as_deref(), Some("BackOff"));
        assert_eq!(e.involved_object.kind.as_deref(), Some("Pod"));
        assert_eq!(e.involved_object.uid.as_deref(), Some("u1"));
        assert_eq!(
            e.involved_object.field_path.as_deref(),
            Some("spec.containers{main}")
        );
        assert_eq!(e.source.unwrap().host.as_deref(), Some("cpu-0"));
        assert_eq!(e.metadata.namespace.as_deref(), Some("ns"));
        // Stable per step and position: a retry re-creates the same name (409), not a duplicate.
        assert_eq!(
            e.metadata.name,
            event_object(&p, &back_off(c), 0, now()).metadata.name
        );
        assert_ne!(
            e.metadata.name,
            event_object(&p, &back_off(c), 1, now()).metadata.name
        );
    }

    #[test]
    fn scheduler_events_name_the_scheduler() {
        let p = gpu_pod(0);
        let e = event_object(&p, &scheduled(&p, "gpu-0"), 0, now());
        assert_eq!(
            e.message.as_deref(),
            Some("Successfully assigned ns/p to gpu-0")
        );
        assert_eq!(e.reporting_component.as_deref(), Some("default-scheduler"));
    }
}
