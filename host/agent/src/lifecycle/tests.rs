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
    }
}

const SETTINGS: Settings = Settings {
    deletion_delay: Duration::ZERO,
    requeue_evicted: true,
    report_grace: Duration::from_secs(10),
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
        settled: false,
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
        last_message: None,
        settled: true,
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
