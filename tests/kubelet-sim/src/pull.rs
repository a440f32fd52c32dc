//! The kubelet's image pulls that fail: `ErrImagePull`, then `ImagePullBackOff` on the next step, or
//! `InvalidImageName` for a reference that does not parse, with the events the kubelet writes for each.

use k8s_openapi::{
    api::core::v1::{Container, Pod},
    jiff::Timestamp,
};

use crate::{
    config::SimConfig,
    decide::{Action, Decision, PullFailure},
    events,
    pod_view::{containers, waiting_of},
    status::{Waiting, waiting_status},
};

/// The images of a pod that do not pull: `ErrImagePull`, then `ImagePullBackOff`; or `InvalidImageName`.
pub(crate) fn image_pull(
    pod: &Pod,
    node: &str,
    config: &SimConfig,
    kind: PullFailure,
    now: Timestamp,
) -> Decision {
    let failing = |c: &Container| failing_pull(pod, c, config, kind);
    // Where the first failing container is: each step moves it one state on, as the kubelet's retries do.
    let current = containers(pod)
        .iter()
        .find(|c| failing(c).is_some())
        .and_then(|c| waiting_of(pod, &c.name))
        .map(|(reason, _)| reason);
    let next = match (kind, current) {
        (PullFailure::InvalidImageName, Some("InvalidImageName")) => return Action::None.into(),
        (PullFailure::InvalidImageName, _) => "InvalidImageName",
        (PullFailure::ErrImagePull, Some("ErrImagePull"))
        | (PullFailure::BackOff, Some("ImagePullBackOff")) => return Action::None.into(),
        (PullFailure::BackOff, Some("ErrImagePull")) => "ImagePullBackOff",
        (PullFailure::BackOff | PullFailure::ErrImagePull, _) => "ErrImagePull",
    };
    let mut evs = Vec::new();
    let patch = waiting_status(pod, node, now, |c| {
        let kind = failing(c)?;
        let image = c.image.clone().unwrap_or_default();
        let (reason, message) = match (next, kind) {
            ("InvalidImageName", _) | (_, PullFailure::InvalidImageName) => (
                "InvalidImageName",
                format!(
                    "Failed to apply default image tag \"{image}\": couldn't parse image name \"{image}\": \
                     invalid reference format"
                ),
            ),
            ("ImagePullBackOff", _) => (
                "ImagePullBackOff",
                format!("Back-off pulling image \"{image}\""),
            ),
            _ => (
                "ErrImagePull",
                format!(
                    "failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": \
                     not found (simulated)"
                ),
            ),
        };
        Some(Waiting { reason, message })
    });
    for c in containers(pod) {
        if failing(c).is_none() {
            continue;
        }
        let image = c.image.clone().unwrap_or_default();
        match next {
            "InvalidImageName" => {
                evs.push(events::inspect_failed(
                    c,
                    format!(
                        "Failed to apply default image tag \"{image}\": couldn't parse image name \
                         \"{image}\": invalid reference format"
                    ),
                ));
                evs.push(events::failed(c, "Error: InvalidImageName".into()));
            }
            "ImagePullBackOff" => {
                evs.push(events::back_off(c));
                evs.push(events::failed(c, "Error: ImagePullBackOff".into()));
            }
            _ => {
                evs.push(events::pulled(c)[0].clone());
                evs.push(events::failed(
                    c,
                    format!(
                        "Failed to pull image \"{image}\": failed to pull and unpack image \"{image}\": \
                         not found (simulated)"
                    ),
                ));
                evs.push(events::failed(c, "Error: ErrImagePull".into()));
            }
        }
    }
    Decision::with_events(Action::PatchStatus(patch), evs)
}

/// Which pull failure a container has: an invalid reference always; a pattern match; or, when the annotation asked
/// for a pull failure and no image matches the pattern, every container.
fn failing_pull(
    pod: &Pod,
    c: &Container,
    config: &SimConfig,
    kind: PullFailure,
) -> Option<PullFailure> {
    let image = c.image.as_deref().unwrap_or_default();
    if invalid_image_reference(image) {
        return Some(PullFailure::InvalidImageName);
    }
    let matches = |c: &Container| {
        config
            .image_pull_error
            .as_ref()
            .is_some_and(|re| c.image.as_deref().is_some_and(|i| re.is_match(i)))
    };
    let any_match = containers(pod).iter().any(matches);
    (matches(c) || !any_match).then_some(kind)
}

/// A reference the container runtime cannot parse: empty, with whitespace, or upper case in the repository.
pub fn invalid_image_reference(image: &str) -> bool {
    let without_digest = image.split('@').next().unwrap_or_default();
    // The tag is what follows the last ':' after the last '/' (a ':' before it is a registry port).
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    let repository = match without_digest[last_slash..].rfind(':') {
        Some(i) => &without_digest[..last_slash + i],
        None => without_digest,
    };
    repository.is_empty()
        || image.chars().any(char::is_whitespace)
        || repository.chars().any(|ch| ch.is_ascii_uppercase())
}
