//! Reading a pod: the few fields every part of the simulator looks at.

use k8s_openapi::{
    api::core::v1::{Container, Pod},
    jiff::Timestamp,
};

/// When the pod's containers started (the earliest `running.startedAt`), if they did.
pub fn started_at(pod: &Pod) -> Option<Timestamp> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .filter_map(|cs| {
            cs.state
                .as_ref()?
                .running
                .as_ref()?
                .started_at
                .as_ref()
                .map(|t| t.0)
        })
        .min()
}

/// The waiting reason and message of the named container, if it is waiting.
pub(crate) fn waiting_of<'a>(pod: &'a Pod, container: &str) -> Option<(&'a str, &'a str)> {
    let waiting = pod
        .status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|cs| cs.name == container)?
        .state
        .as_ref()?
        .waiting
        .as_ref()?;
    Some((
        waiting.reason.as_deref().unwrap_or_default(),
        waiting.message.as_deref().unwrap_or_default(),
    ))
}

pub(crate) fn containers(pod: &Pod) -> &[Container] {
    pod.spec.as_ref().map_or(&[], |s| s.containers.as_slice())
}

pub(crate) fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

pub(crate) fn label<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata.labels.as_ref()?.get(key).map(String::as_str)
}
