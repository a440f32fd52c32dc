//! Unit tests of [`super::decide`]: each step a cluster takes, from the pod's state alone.
use super::*;
use crate::test_support::{apply, bound, config, gpu_pod, now};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
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
fn lifecycle_running_then_succeeded() {
    let p = bound(gpu_pod(0), "cpu-0");
    let Action::PatchStatus(patch) = decide(&p, &config(), &Usage::default(), now()) else {
        panic!()
    };
    assert_eq!(patch["status"]["phase"], "Running");
    assert_eq!(patch["status"]["podIP"], patch["status"]["podIPs"][0]["ip"]);
    assert_eq!(patch["status"]["containerStatuses"][0]["name"], "main");
    assert!(patch["status"]["containerStatuses"][0]["state"]["running"]["startedAt"].is_string());
    let running = apply(&p, &patch);
    assert!(running.status.as_ref().unwrap().start_time.is_some());

    // Before the run time: come back later; after: Succeeded, exit 0.
    let later = now().checked_add(Duration::from_secs(2)).unwrap();
    assert_eq!(
        decide(&running, &config(), &Usage::default(), later),
        Action::RequeueAfter(Duration::from_secs(3))
    );
    let done = now().checked_add(Duration::from_secs(5)).unwrap();
    let Action::PatchStatus(patch) = decide(&running, &config(), &Usage::default(), done) else {
        panic!()
    };
    assert_eq!(patch["status"]["phase"], "Succeeded");
    let term = &patch["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(
        (term["exitCode"].as_i64(), term["reason"].as_str()),
        (Some(0), Some("Completed"))
    );
    assert_eq!(
        decide(&apply(&running, &patch), &config(), &Usage::default(), done),
        Action::None
    );
}

fn finish(annotations: Value) -> Value {
    let mut p = bound(gpu_pod(0), "cpu-0");
    p.metadata.annotations = Some(serde_json::from_value(annotations).unwrap());
    let Action::PatchStatus(patch) = decide(&p, &config(), &Usage::default(), now()) else {
        panic!()
    };
    let running = apply(&p, &patch);
    let end = now().checked_add(Duration::from_secs(60)).unwrap();
    match decide(&running, &config(), &Usage::default(), end) {
        Action::PatchStatus(patch) => patch,
        other => json!({"action": format!("{other:?}")}),
    }
}

#[test]
fn outcomes_from_annotations() {
    let oom = finish(json!({OUTCOME_ANNOTATION: "oom"}));
    assert_eq!(oom["status"]["phase"], "Failed");
    assert_eq!(
        oom["status"]["containerStatuses"][0]["state"]["terminated"]["reason"],
        "OOMKilled"
    );
    assert_eq!(
        oom["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
        137
    );

    let fail = finish(json!({OUTCOME_ANNOTATION: "fail", EXIT_CODE_ANNOTATION: "3"}));
    assert_eq!(fail["status"]["phase"], "Failed");
    assert_eq!(
        fail["status"]["containerStatuses"][0]["state"]["terminated"]["reason"],
        "Error"
    );
    assert_eq!(
        fail["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
        3
    );

    assert_eq!(
        finish(json!({OUTCOME_ANNOTATION: "hang"})),
        json!({"action": "None"})
    );

    // A typo fails the pod at once, with the reason in its status.
    let mut typo = bound(gpu_pod(0), "cpu-0");
    typo.metadata.annotations =
        Some([(OUTCOME_ANNOTATION.to_owned(), "explode".to_owned())].into());
    let Action::PatchStatus(bad) = decide(&typo, &config(), &Usage::default(), now()) else {
        panic!()
    };
    assert_eq!(bad["status"]["phase"], "Failed");
    assert!(
        bad["status"]["message"]
            .as_str()
            .unwrap()
            .contains("explode")
    );
}

#[test]
fn run_seconds_annotation_overrides_the_default() {
    let mut p = bound(gpu_pod(0), "cpu-0");
    p.metadata.annotations = Some([(RUN_SECONDS_ANNOTATION.to_owned(), "30".to_owned())].into());
    let Action::PatchStatus(patch) = decide(&p, &config(), &Usage::default(), now()) else {
        panic!()
    };
    let running = apply(&p, &patch);
    let later = now().checked_add(Duration::from_secs(10)).unwrap();
    assert_eq!(
        decide(&running, &config(), &Usage::default(), later),
        Action::RequeueAfter(Duration::from_secs(20))
    );
}

#[test]
fn deletion_is_forced_for_our_pods() {
    let mut p = bound(gpu_pod(0), "cpu-0");
    p.metadata.deletion_timestamp = Some(Time(now()));
    assert_eq!(
        decide(&p, &config(), &Usage::default(), now()),
        Action::ForceDelete
    );
    let mut foreign = bound(gpu_pod(0), "elsewhere");
    foreign.metadata.deletion_timestamp = Some(Time(now()));
    assert_eq!(
        decide(&foreign, &config(), &Usage::default(), now()),
        Action::None
    );
}

/// One full step with what the kubelet observed.
fn step(p: &Pod, view: &KubeletView, at: Timestamp) -> Decision {
    crate::decide::decide(p, &config(), &Usage::default(), at, view)
}

fn reasons(d: &Decision) -> Vec<&'static str> {
    d.events.iter().map(|e| e.reason).collect()
}

fn status_patch(d: &Decision) -> &Value {
    match &d.action {
        Action::PatchStatus(patch) => patch,
        other => panic!("expected a status patch, got {other:?}"),
    }
}

fn annotated(outcome: &str) -> Pod {
    let mut p = bound(gpu_pod(0), "cpu-0");
    p.metadata.annotations = Some([(OUTCOME_ANNOTATION.to_owned(), outcome.to_owned())].into());
    p
}

fn later(secs: u64) -> Timestamp {
    now().checked_add(Duration::from_secs(secs)).unwrap()
}

/// A pod of the agent's shape (labelled with its task), bound and then started.
fn task_pod(outcome: &str) -> (Pod, Decision) {
    let mut p = annotated(outcome);
    p.metadata.labels = Some([(TASK_ID_LABEL.to_owned(), "t1".to_owned())].into());
    let d = step(&p, &KubeletView::default(), now());
    let running = apply(&p, status_patch(&d));
    (running, d)
}

fn in_process(process: Process) -> KubeletView {
    KubeletView {
        process,
        ..KubeletView::default()
    }
}

#[test]
fn scheduling_and_starting_emit_the_scheduler_and_kubelet_events() {
    let d = step(&gpu_pod(0), &KubeletView::default(), now());
    assert_eq!(d.action, Action::Bind("cpu-0".into()));
    assert_eq!(reasons(&d), ["Scheduled"]);
    let d = step(&gpu_pod(9), &KubeletView::default(), now());
    assert_eq!(reasons(&d), ["FailedScheduling"]);
    assert!(d.events[0].warning);
    assert_eq!(
        d.events[0].message,
        "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
    );
    let d = step(&bound(gpu_pod(0), "cpu-0"), &KubeletView::default(), now());
    assert_eq!(reasons(&d), ["Pulling", "Pulled", "Created", "Started"]);
    // A pod without the task label runs no in-pod agent.
    assert_eq!(d.start_process, None);
}

#[test]
fn a_missing_image_is_err_image_pull_then_image_pull_backoff() {
    let mut p = bound(gpu_pod(0), "cpu-0");
    p.spec.as_mut().unwrap().containers[0].image = Some("registry.invalid/nope:1".into());
    let first = step(&p, &KubeletView::default(), now());
    let patch = status_patch(&first);
    assert_eq!(patch["status"]["phase"], "Pending");
    let waiting = &patch["status"]["containerStatuses"][0]["state"]["waiting"];
    assert_eq!(waiting["reason"], "ErrImagePull");
    assert!(
        waiting["message"]
            .as_str()
            .unwrap()
            .contains("registry.invalid/nope:1")
    );
    assert_eq!(reasons(&first), ["Pulling", "Failed", "Failed"]);
    let p = apply(&p, patch);
    let second = step(&p, &KubeletView::default(), now());
    let waiting = &status_patch(&second)["status"]["containerStatuses"][0]["state"]["waiting"];
    assert_eq!(waiting["reason"], "ImagePullBackOff");
    assert_eq!(reasons(&second), ["BackOff", "Failed"]);
    let p = apply(&p, status_patch(&second));
    assert_eq!(
        step(&p, &KubeletView::default(), now()).action,
        Action::None
    );
}

#[test]
fn err_image_pull_stays_and_invalid_names_are_detected() {
    let p = annotated("err-image-pull");
    let p = apply(&p, status_patch(&step(&p, &KubeletView::default(), now())));
    assert_eq!(
        step(&p, &KubeletView::default(), now()).action,
        Action::None
    );

    let mut p = bound(gpu_pod(0), "cpu-0");
    p.spec.as_mut().unwrap().containers[0].image = Some("Busybox:1.36".into());
    let d = step(&p, &KubeletView::default(), now());
    let waiting = &status_patch(&d)["status"]["containerStatuses"][0]["state"]["waiting"];
    assert_eq!(waiting["reason"], "InvalidImageName");
    assert!(
        waiting["message"]
            .as_str()
            .unwrap()
            .contains("invalid reference format")
    );
    assert_eq!(reasons(&d), ["InspectFailed", "Failed"]);
    assert_eq!(
        outcome(&annotated("invalid-image-name"), &config()),
        Ok(Outcome::ImagePull(PullFailure::InvalidImageName))
    );
}

#[test]
fn image_references_are_checked_like_the_runtime() {
    for ok in [
        "busybox",
        "busybox:1.36",
        "registry:5000/team/img:Tag",
        "a/b@sha256:abc",
    ] {
        assert!(!invalid_image_reference(ok), "{ok}");
    }
    for bad in ["", "Busybox", "team/Img:1", "has space:1", ":tag"] {
        assert!(invalid_image_reference(bad), "{bad}");
    }
}

#[test]
fn a_missing_secret_keeps_the_pod_pending_with_create_container_config_error() {
    let p = bound(gpu_pod(0), "cpu-0");
    let view = KubeletView {
        config_errors: [("main".to_owned(), "secret \"creds\" not found".to_owned())].into(),
        ..KubeletView::default()
    };
    let d = step(&p, &view, now());
    let patch = status_patch(&d);
    assert_eq!(patch["status"]["phase"], "Pending");
    let waiting = &patch["status"]["containerStatuses"][0]["state"]["waiting"];
    assert_eq!(waiting["reason"], "CreateContainerConfigError");
    assert_eq!(waiting["message"], "secret \"creds\" not found");
    assert_eq!(reasons(&d), ["Pulling", "Pulled", "Failed"]);
    assert_eq!(d.events[2].message, "Error: secret \"creds\" not found");
    // Same error again: nothing to do. Error gone (the Secret was created): the pod starts.
    let p = apply(&p, patch);
    assert_eq!(step(&p, &view, now()).action, Action::None);
    let started = step(&p, &KubeletView::default(), now());
    assert_eq!(status_patch(&started)["status"]["phase"], "Running");
}

#[test]
fn evictions_and_preemptions_fail_the_pod_with_their_reason() {
    for (outcome, reason) in [
        ("evicted-pending", "Evicted"),
        ("preempted-pending", "Preempted"),
    ] {
        let d = step(&annotated(outcome), &KubeletView::default(), now());
        let status = &status_patch(&d)["status"];
        assert_eq!(
            (status["phase"].as_str(), status["reason"].as_str()),
            (Some("Failed"), Some(reason))
        );
        let term = &status["containerStatuses"][0]["state"]["terminated"];
        assert_eq!(
            term["reason"], "ContainerStatusUnknown",
            "{outcome}: never started"
        );
        assert_eq!(reasons(&d), [reason]);
    }
    for (outcome, reason) in [("evicted", "Evicted"), ("preempted", "Preempted")] {
        let p = annotated(outcome);
        let running = apply(&p, status_patch(&step(&p, &KubeletView::default(), now())));
        let d = step(&running, &KubeletView::default(), later(60));
        let status = &status_patch(&d)["status"];
        assert_eq!(
            (status["phase"].as_str(), status["reason"].as_str()),
            (Some("Failed"), Some(reason))
        );
        assert!(status["message"].as_str().unwrap().contains("(simulated)"));
        let disruption = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "DisruptionTarget")
            .unwrap();
        assert_eq!(disruption["status"], "True");
        assert_eq!(reasons(&d), [reason, "Killing"]);
    }
}

#[test]
fn oom_emits_the_oom_event() {
    let p = annotated("oom");
    let running = apply(&p, status_patch(&step(&p, &KubeletView::default(), now())));
    let d = step(&running, &KubeletView::default(), later(60));
    assert_eq!(reasons(&d), ["OOMKilling"]);
}

#[test]
fn a_task_pod_runs_the_in_pod_agent_and_ends_with_its_exit() {
    let (running, started) = task_pod("succeed");
    assert_eq!(
        started.start_process,
        Some(ProcessStart {
            watch_aborts: true,
            silent_after: None
        })
    );
    // Its run does not count until the agent has started the task.
    assert_eq!(
        step(&running, &in_process(Process::Starting), later(60)).action,
        Action::None
    );
    assert_eq!(
        step(&running, &in_process(Process::Working), later(2)).action,
        Action::RequeueAfter(Duration::from_secs(3))
    );
    // Run over: the agent reports first, and the pod ends when its process has exited.
    assert_eq!(
        step(&running, &in_process(Process::Working), later(5)).action,
        Action::FinishProcess(0)
    );
    let d = step(&running, &in_process(Process::Exited(0)), later(5));
    assert_eq!(status_patch(&d)["status"]["phase"], "Succeeded");

    let (failing, _) = task_pod("fail");
    assert_eq!(
        step(&failing, &in_process(Process::Working), later(5)).action,
        Action::FinishProcess(1)
    );
    let d = step(&failing, &in_process(Process::Exited(1)), later(5));
    let term = &status_patch(&d)["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(
        (term["exitCode"].as_i64(), term["reason"].as_str()),
        (Some(1), Some("Error"))
    );
}

#[test]
fn a_silent_task_pod_tells_its_agent_when_to_go_quiet_and_a_bad_value_is_loud() {
    let mut p = annotated("hang");
    p.metadata.labels = Some([(TASK_ID_LABEL.to_owned(), "t1".to_owned())].into());
    let with = |value: &str| {
        let mut p = p.clone();
        p.metadata
            .annotations
            .get_or_insert_default()
            .insert(SILENT_AFTER_ANNOTATION.to_owned(), value.to_owned());
        step(&p, &KubeletView::default(), now())
    };
    assert_eq!(
        with("1.5").start_process,
        Some(ProcessStart {
            watch_aborts: false,
            silent_after: Some(Duration::from_millis(1500))
        })
    );
    let d = with("soon");
    assert_eq!(d.start_process, None);
    let status = &status_patch(&d)["status"];
    assert_eq!(status["phase"], "Failed");
    let term = &status["containerStatuses"][0]["state"]["terminated"];
    assert!(
        term["message"]
            .as_str()
            .unwrap()
            .contains(SILENT_AFTER_ANNOTATION),
        "{term}"
    );
}

#[test]
fn an_early_exit_ends_the_pod_at_once() {
    // The agent skipped a task that was not queued (exit 1), or saw it aborted (exit 0), before the run was over.
    let (running, _) = task_pod("succeed");
    let d = step(&running, &in_process(Process::Exited(1)), now());
    assert_eq!(status_patch(&d)["status"]["phase"], "Failed");
    let (hanging, _) = task_pod("hang");
    let d = step(&hanging, &in_process(Process::Exited(0)), now());
    assert_eq!(status_patch(&d)["status"]["phase"], "Succeeded");
}

#[test]
fn killed_containers_are_not_asked_to_report() {
    let (oom, _) = task_pod("oom");
    let d = step(&oom, &in_process(Process::Working), later(60));
    let term = &status_patch(&d)["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(term["reason"], "OOMKilled");
    let (hang, started) = task_pod("hang");
    // A wedged container's agent never notices an abort, and the pod never ends by itself.
    assert_eq!(started.start_process.map(|s| s.watch_aborts), Some(false));
    assert_eq!(
        step(&hang, &in_process(Process::Working), later(3600)).action,
        Action::None
    );
    // Image pulls never start a process.
    let mut p = annotated("image-pull-backoff");
    p.metadata.labels = Some([(TASK_ID_LABEL.to_owned(), "t1".to_owned())].into());
    assert_eq!(step(&p, &KubeletView::default(), now()).start_process, None);
}

#[test]
fn deleting_a_running_pod_kills_its_containers() {
    let p = annotated("hang");
    let mut running = apply(&p, status_patch(&step(&p, &KubeletView::default(), now())));
    running.metadata.deletion_timestamp = Some(Time(now()));
    let d = step(&running, &KubeletView::default(), now());
    assert_eq!(d.action, Action::ForceDelete);
    assert_eq!(reasons(&d), ["Killing"]);
}
