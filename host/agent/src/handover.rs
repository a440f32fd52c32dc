//! The hand-over: a popped task goes into the hidden pending queue, with the status message that tells the ML user
//! (and recovery) which pod it waits for, before its pod is created.
//!
//! A popped task is still `queued`. clearml-server before 1.17.0 refused to enqueue a queued task (a same-status
//! change, `allow_same_state_transition=False` in `enqueue_task`), so the Python glue stops it (forced) first;
//! 1.17.0 ("Allow enqueueing enqueued tasks", clearml-server commit fa41e14) and ClearML Enterprise 3.22.3 (the
//! glue's `_server_supports_same_state_transition`) accept it. The agent reads the server's version from its
//! login token's claims once at start-up and skips the stop where the server allows that: one request and one round trip less per task,
//! with the same end state (queued in the pending queue, `execution.queue` the pending queue, the same reason and
//! message, so recovery reads it back the same way).

use backon::Retryable;
use clearml_api::{Enqueue, StatusChange, TokenClaims};

use crate::render;
use crate::run::{Failpoint, Shared};
use crate::startup::ResolvedQueue;
use crate::submit::{backoff, clearml_down, until_it_answers};

/// The status reason of a task in the pending queue (the glue's).
pub const HANDOVER_REASON: &str = "k8s pending scheduler";

/// The first open-source clearml-server that enqueues a queued task (`feature_set: basic`).
const OPEN_SOURCE_SAME_STATE: (u32, u32, u32) = (1, 17, 0);
/// The first ClearML Enterprise server that does (any other feature set), as the glue checks it.
const ENTERPRISE_SAME_STATE: (u32, u32, u32) = (3, 22, 3);

/// `major.minor.patch` of a version string (`2.0.0`, `3.22.3-1234`, `1.17`): missing parts are 0, anything after
/// the number of a part is ignored. `None` when it does not start with a number.
fn version(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.trim().trim_start_matches('v').split('.').map(|part| {
        let digits = part.bytes().take_while(u8::is_ascii_digit).count();
        part[..digits].parse::<u32>().ok()
    });
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

/// Whether this server enqueues a task that is still `queued` (so the hand-over needs no stop first). An unknown
/// version keeps the stop: it works on every server.
pub fn enqueues_queued_tasks(claims: &TokenClaims) -> bool {
    let Some(found) = claims.server_version.as_deref().and_then(version) else {
        return false;
    };
    let first = match claims.feature_set.as_deref() {
        Some("basic") | None => OPEN_SOURCE_SAME_STATE,
        Some(_) => ENTERPRISE_SAME_STATE,
    };
    found >= first
}

/// Move a popped task into the pending queue, with the message that tells the ML user (and recovery) what it waits
/// for. Once it starts, the task is in no queue and only this submission knows it, so the enqueue retries until
/// ClearML answers (an outage holds the submission, it does not drop the task); an error is one retrying cannot
/// fix, or a stop that kept failing (the caller puts the task back).
pub async fn hand_over(
    shared: &Shared,
    queue: &ResolvedQueue,
    task_id: &str,
) -> Result<(), clearml_api::Error> {
    let message = crate::recover::pending_message(
        &render::pod_name(task_id),
        &queue.config.name,
        &shared.identity.instance,
    );
    if !shared.enqueues_queued_tasks {
        // The stop carries the hand-over's message as its status reason (the server keeps a stop's reason, not its
        // message): a kill between the two calls leaves the task `stopped` with it, and recovery finds it by that.
        let stop = StatusChange::new(task_id).force().reason(message.clone());
        (|| shared.clearml.tasks_stop(&stop))
            .retry(backoff())
            .when(|e| e.is_transient())
            .notify(|e, _| clearml_down(shared, e))
            .await?;
    }
    // Reached with or without the stop: the submission stops here, its task out of every queue, `stopped` (old
    // servers) or still `queued` with its own queue as `execution.queue` (recovery finds either).
    shared.failpoint(Failpoint::AfterHandoverStop).await;
    let handoff = Enqueue {
        task: task_id.to_string(),
        queue: Some(shared.pending_queue_id.clone()),
        status_reason: Some(HANDOVER_REASON.to_string()),
        status_message: Some(message),
        ..Enqueue::default()
    };
    (|| shared.clearml.tasks_enqueue(&handoff))
        .retry(until_it_answers())
        .when(|e| e.is_transient())
        .notify(|e, _| clearml_down(shared, e))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(feature_set: Option<&str>, server_version: Option<&str>) -> TokenClaims {
        TokenClaims {
            feature_set: feature_set.map(str::to_string),
            server_version: server_version.map(str::to_string),
            ..TokenClaims::default()
        }
    }

    #[test]
    fn versions_read_major_minor_patch() {
        assert_eq!(version("2.0.0"), Some((2, 0, 0)));
        assert_eq!(version("3.22.3-1234"), Some((3, 22, 3)));
        assert_eq!(version("1.17"), Some((1, 17, 0)));
        assert_eq!(version("v1.16.2"), Some((1, 16, 2)));
        assert_eq!(version("unknown"), None);
        assert_eq!(version(""), None);
    }

    #[test]
    fn the_open_source_server_enqueues_queued_tasks_from_1_17() {
        assert!(enqueues_queued_tasks(&claims(Some("basic"), Some("2.0.0"))));
        assert!(enqueues_queued_tasks(&claims(
            Some("basic"),
            Some("1.17.0")
        )));
        assert!(!enqueues_queued_tasks(&claims(
            Some("basic"),
            Some("1.16.2")
        )));
        // No feature set in the token: an open-source server.
        assert!(enqueues_queued_tasks(&claims(None, Some("2.3.0"))));
    }

    #[test]
    fn enterprise_servers_from_3_22_3_as_the_glue_checks() {
        assert!(enqueues_queued_tasks(&claims(
            Some("enterprise"),
            Some("3.24.0")
        )));
        assert!(enqueues_queued_tasks(&claims(Some("pro"), Some("3.22.3"))));
        assert!(!enqueues_queued_tasks(&claims(
            Some("enterprise"),
            Some("3.22.2")
        )));
        assert!(!enqueues_queued_tasks(&claims(
            Some("enterprise"),
            Some("2.0.0")
        )));
    }

    #[test]
    fn an_unknown_version_keeps_the_stop() {
        assert!(!enqueues_queued_tasks(&claims(Some("basic"), None)));
        assert!(!enqueues_queued_tasks(&claims(Some("basic"), Some("dev"))));
    }
}
