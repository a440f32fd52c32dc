use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::*;

fn pod(status: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "clearml-id-t1", "labels": {"clearml-task-id": "t1"}},
        "spec": {"containers": [{"name": "clearml-task", "image": "python:3.12"}]},
        "status": status,
    }))
    .unwrap()
}

fn task(status: TaskStatus) -> TaskView {
    TaskView {
        status: Some(status),
        status_message: None,
        last_update: None,
    }
}

const SETTINGS: Settings = Settings {
    deletion_delay: Duration::ZERO,
    requeue_evicted: true,
    report_grace: Duration::from_secs(10),
    no_update_limit: None,
    fail_stalled: false,
};

fn now() -> Timestamp {
    "2026-12-03T10:00:00Z".parse().unwrap()
}

fn decide_for(pod: &Pod, task: Option<&TaskView>) -> Vec<Action> {
    decide(pod, task, &Memory::default(), SETTINGS, now())
}

#[test]
fn unschedulable_reaches_the_task_once() {
    let pod = pod(json!({"phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."}]}));
    let queued = task(TaskStatus::Queued);
    let actions = decide_for(&pod, Some(&queued));
    let expected = "pod clearml-id-t1 pending: Unschedulable: 0/2 nodes are available: 2 Insufficient nvidia.com/gpu.";
    assert_eq!(actions, vec![Action::Message(expected.into())]);
    // Said once: the same reason again changes nothing.
    let memory = Memory {
        last_message: Some(expected.into()),
        ..Memory::default()
    };
    assert!(decide(&pod, Some(&queued), &memory, SETTINGS, now()).is_empty());
}

#[test]
fn image_pull_failures_fail_the_task_with_the_image_and_delete_the_pod() {
    let pod = pod(json!({"phase": "Pending", "containerStatuses": [{
        "name": "clearml-task", "image": "python:3.12", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"python:3.12\""}}}]}));
    let actions = decide_for(&pod, Some(&task(TaskStatus::Queued)));
    match &actions[..] {
        [Action::Fail { reason, message }, Action::DeletePod] => {
            assert_eq!(reason, "ImagePullBackOff");
            assert!(
                message.contains("python:3.12") && message.contains("ImagePullBackOff"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
}

fn terminated(reason: &str, exit_code: i32) -> Pod {
    pod(json!({"phase": "Failed", "containerStatuses": [{
        "name": "clearml-task", "image": "python:3.12", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"reason": reason, "exitCode": exit_code, "finishedAt": "2026-12-03T09:59:00Z"}}}]}))
}

#[test]
fn oom_and_exit_codes_are_written_before_cleanup() {
    let actions = decide_for(
        &terminated("OOMKilled", 137),
        Some(&task(TaskStatus::InProgress)),
    );
    match &actions[..] {
        [Action::Fail { reason, message }, Action::DeletePod] => {
            assert_eq!(reason, "OOMKilled");
            assert!(message.contains("more memory than its limit"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let actions = decide_for(&terminated("Error", 3), Some(&task(TaskStatus::InProgress)));
    assert!(
        matches!(&actions[0], Action::Fail { message, .. } if message.contains("exited with code 3")),
        "{actions:?}"
    );
}

#[test]
fn a_task_that_reported_its_end_is_left_alone_but_the_pod_is_cleaned_up() {
    let actions = decide_for(&terminated("Error", 1), Some(&task(TaskStatus::Failed)));
    assert_eq!(actions, vec![Action::DeletePod]);
    let actions = decide_for(&terminated("Error", 1), None);
    assert_eq!(actions, vec![Action::DeletePod]);
}

#[test]
fn cleanup_waits_for_the_deletion_delay() {
    let settings = Settings {
        deletion_delay: Duration::from_secs(300),
        ..SETTINGS
    };
    let pod = terminated("Error", 1);
    let done = task(TaskStatus::Failed);
    assert!(decide(&pod, Some(&done), &Memory::default(), settings, now()).is_empty());
    let later: Timestamp = "2026-12-03T10:05:00Z".parse().unwrap();
    assert_eq!(
        decide(&pod, Some(&done), &Memory::default(), settings, later),
        vec![Action::DeletePod]
    );
}

#[test]
fn an_evicted_pending_task_goes_back_to_its_queue() {
    let pod = pod(
        json!({"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."}),
    );
    let actions = decide_for(&pod, Some(&task(TaskStatus::Queued)));
    assert!(
        matches!(&actions[0], Action::Requeue { message } if message.contains("Evicted")),
        "{actions:?}"
    );
    // Without requeueing it fails instead, with the reason.
    let settings = Settings {
        requeue_evicted: false,
        ..SETTINGS
    };
    let actions = decide(
        &pod,
        Some(&task(TaskStatus::Queued)),
        &Memory::default(),
        settings,
        now(),
    );
    assert!(
        matches!(&actions[0], Action::Fail { reason, .. } if reason == "Evicted"),
        "{actions:?}"
    );
}

#[test]
fn an_abort_in_clearml_deletes_the_pod() {
    let running = pod(json!({"phase": "Running"}));
    let stopping = TaskView {
        status: Some(TaskStatus::InProgress),
        status_message: Some("stopping".into()),
        last_update: None,
    };
    assert_eq!(
        decide_for(&running, Some(&stopping)),
        vec![Action::DeletePod, Action::MarkStopped]
    );
    assert_eq!(
        decide_for(&running, Some(&task(TaskStatus::Stopped))),
        vec![Action::DeletePod]
    );
    assert!(decide_for(&running, Some(&task(TaskStatus::InProgress))).is_empty());
}

#[test]
fn exit_zero_without_a_report_is_not_left_running_forever() {
    let pod = pod(json!({"phase": "Succeeded"}));
    let actions = decide_for(&pod, Some(&task(TaskStatus::InProgress)));
    assert!(
        matches!(&actions[0], Action::Fail { reason, .. } if reason == "Completed"),
        "{actions:?}"
    );
    assert_eq!(
        decide_for(&pod, Some(&task(TaskStatus::Completed))),
        vec![Action::DeletePod]
    );
}

#[test]
fn the_in_pod_agent_gets_time_to_report_an_exit() {
    let just_now: Timestamp = "2026-12-03T09:59:05Z".parse().unwrap();
    let pod = terminated("Error", 2);
    let running = task(TaskStatus::InProgress);
    let early = decide(&pod, Some(&running), &Memory::default(), SETTINGS, just_now);
    assert!(early.is_empty(), "{early:?}");
    // An OOM kill is never reported by the killed agent: no waiting.
    let oom = decide(
        &terminated("OOMKilled", 137),
        Some(&running),
        &Memory::default(),
        SETTINGS,
        just_now,
    );
    assert!(matches!(&oom[0], Action::Fail { .. }), "{oom:?}");
}

#[test]
fn settled_tasks_are_not_failed_twice() {
    let memory = Memory {
        settled: true,
        ..Memory::default()
    };
    let actions = decide(
        &terminated("OOMKilled", 137),
        Some(&task(TaskStatus::InProgress)),
        &memory,
        SETTINGS,
        now(),
    );
    assert_eq!(actions, vec![Action::DeletePod]);
}

/// The watchdog at 30 min, and a running task last heard from `silent_secs` before [`now`].
const WATCHDOG: Settings = Settings {
    no_update_limit: Some(Duration::from_secs(30 * 60)),
    ..SETTINGS
};

fn running_task(silent_secs: u64) -> TaskView {
    TaskView {
        last_update: Some(now() - Duration::from_secs(silent_secs)),
        ..task(TaskStatus::InProgress)
    }
}

fn stalled() -> Memory {
    Memory {
        stalled: true,
        ..Memory::default()
    }
}

#[test]
fn a_silent_running_task_is_reported_once_and_again_only_after_it_recovers() {
    let pod = pod(json!({"phase": "Running"}));
    let silent = running_task(31 * 60 + 5);
    let report =
        |memory: &Memory, task: &TaskView| decide(&pod, Some(task), memory, WATCHDOG, now());
    let message = "no update from the task for 31 min while pod clearml-id-t1 runs (agent watchdog, limit 30 min)";
    assert_eq!(
        report(&Memory::default(), &silent),
        vec![Action::Stalled {
            message: message.into(),
            fail: false
        }]
    );
    // Said once: the next rounds of the same stall change nothing.
    assert!(report(&stalled(), &silent).is_empty());
    // Heard from again: the flag goes; a new stall is reported anew.
    assert_eq!(
        report(&stalled(), &running_task(5)),
        vec![Action::Recovered]
    );
    assert!(matches!(
        &report(&Memory::default(), &running_task(45 * 60))[..],
        [Action::Stalled { message, .. }] if message.contains("for 45 min")
    ));
    // Under the limit, or off: nothing.
    assert!(report(&Memory::default(), &running_task(29 * 60)).is_empty());
    assert!(decide(&pod, Some(&silent), &Memory::default(), SETTINGS, now()).is_empty());
}

#[test]
fn with_fail_task_a_silent_task_fails_and_its_pod_goes() {
    let settings = Settings {
        fail_stalled: true,
        ..WATCHDOG
    };
    let pod = pod(json!({"phase": "Running"}));
    let silent = running_task(40 * 60);
    let actions = decide(&pod, Some(&silent), &Memory::default(), settings, now());
    match &actions[..] {
        [
            Action::Stalled {
                message,
                fail: true,
            },
            Action::DeletePod,
        ] => {
            assert!(
                message.starts_with("no update from the task for 40 min"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Failed, but the deletion did not go through: it is tried again (and the task is not failed twice).
    let failed = Memory {
        settled: true,
        stalled: true,
        ..Memory::default()
    };
    let now_failed = TaskView {
        status: Some(TaskStatus::Failed),
        ..silent.clone()
    };
    assert_eq!(
        decide(&pod, Some(&now_failed), &failed, settings, now()),
        vec![Action::DeletePod]
    );
    let mut deleting = pod.clone();
    deleting.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
    assert!(decide(&deleting, Some(&now_failed), &failed, settings, now()).is_empty());
}

#[test]
fn the_watchdog_watches_only_running_pods_of_in_progress_tasks() {
    let silent_for = 40 * 60;
    let running = pod(json!({"phase": "Running"}));
    let pending = pod(json!({"phase": "Pending"}));
    let queued = TaskView {
        status: Some(TaskStatus::Queued),
        ..running_task(silent_for)
    };
    let check =
        |pod: &Pod, task: &TaskView| decide(pod, Some(task), &Memory::default(), WATCHDOG, now());
    assert!(check(&running, &queued).is_empty());
    assert!(check(&pending, &running_task(silent_for)).is_empty());
    // No last update to judge by, or one ahead of the agent's clock: no silence.
    assert!(check(&running, &task(TaskStatus::InProgress)).is_empty());
    let ahead = TaskView {
        last_update: Some(now() + Duration::from_secs(600)),
        ..task(TaskStatus::InProgress)
    };
    assert!(check(&running, &ahead).is_empty());
    // An abort wins over the watchdog.
    let stopping = TaskView {
        status_message: Some("stopping".into()),
        ..running_task(silent_for)
    };
    assert_eq!(
        check(&running, &stopping),
        vec![Action::DeletePod, Action::MarkStopped]
    );
}

#[test]
fn a_reported_task_that_ends_is_no_longer_counted_as_stalled() {
    let done = pod(json!({"phase": "Succeeded"}));
    assert_eq!(
        decide(
            &done,
            Some(&task(TaskStatus::Completed)),
            &stalled(),
            WATCHDOG,
            now()
        ),
        vec![Action::Recovered, Action::DeletePod]
    );
}

#[test]
fn watchdog_messages_read_well_at_any_limit() {
    assert_eq!(
        stall_message("p", Duration::from_secs(7), Duration::from_secs(6)),
        "no update from the task for 7 s while pod p runs (agent watchdog, limit 0.1 min)"
    );
    assert_eq!(
        stall_message("p", Duration::from_secs(150), Duration::from_secs(90)),
        "no update from the task for 2 min while pod p runs (agent watchdog, limit 1.5 min)"
    );
}

#[test]
fn clearml_dates_parse_with_or_without_an_offset() {
    let at: Timestamp = "2026-12-03T10:00:00.123Z".parse().unwrap();
    assert_eq!(clearml_time("2026-12-03T10:00:00.123000+00:00"), Some(at));
    assert_eq!(clearml_time("2026-12-03T11:00:00.123+01:00"), Some(at));
    assert_eq!(clearml_time("2026-12-03T10:00:00.123"), Some(at));
    assert_eq!(clearml_time("yesterday"), None);
}

#[test]
fn settings_come_from_the_values() {
    let mut config = crate::fixtures::config();
    assert_eq!(Settings::from_config(&config).no_update_limit, None);
    config.task_watchdog = crate::config::TaskWatchdog {
        no_update: Some(Duration::from_secs(60)),
        fail_task: true,
    };
    let settings = Settings::from_config(&config);
    assert_eq!(settings.no_update_limit, Some(Duration::from_secs(60)));
    assert!(settings.fail_stalled && settings.requeue_evicted);
}
