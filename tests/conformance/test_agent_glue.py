"""The clearml-agent 3.0.3 k8s glue's own session and helper functions against the emulator: the startup, launch
and pending-daemon call sequence of reference/clearml-api.md §9, through the same code paths the glue runs."""

import re
import time

import pytest
from clearml_agent.backend_api import services
from clearml_agent.commands.worker import get_next_task, get_task_container, set_task_container
from clearml_agent.session import Session


@pytest.fixture(scope="module")
def session():
    return Session()


def resolve_queue(session, name):
    """What the glue does for each --queue (commands/base.py _resolve_name with search_hidden)."""
    request = services.queues.GetAllRequest.from_dict(
        {"name": re.escape(name), "only_fields": ["name", "id"], "_allow_extra_fields_": True, "search_hidden": True}
    )
    matches = [q for q in session.send_api(request).queues if q.name.lower() == name.lower()]
    assert len(matches) == 1, f"{name}: {matches}"
    return matches[0].id


def ok(res):
    assert res.ok, res.text
    return res.json()["data"]


def test_agent_session_reads_the_token_claims(session):
    assert session.api_version == "2.31"
    assert session.feature_set == "basic"
    assert session.check_min_api_version("2.13")


def test_glue_startup_launch_and_pending_daemon(session, unique):
    api = session.api_client
    # Startup: the user's queue exists; the pending queue is created hidden.
    queue_name, pending_name = f"1xGPU-{unique}", f"k8s_scheduler_{unique}"
    ok(session.send_request("queues", "create", json={"name": queue_name}))
    ok(session.send_request("queues", "create", json={"name": pending_name, "system_tags": ["k8s-glue"]}))
    queue_id, pending_id = resolve_queue(session, queue_name), resolve_queue(session, pending_name)
    worker = f"k8s-glue:{unique}"
    ok(session.send_request("workers", "register", json={"worker": worker, "queues": [queue_id], "timeout": 600}))
    ok(session.send_request("workers", "status_report", json={"worker": worker, "timestamp": int(time.time() * 1000)}))

    # A user enqueues a task.
    task_id = ok(session.send_request("tasks", "create", json={"name": "glue launch", "type": "training"}))["id"]
    ok(session.send_request("tasks", "enqueue", json={"task": task_id, "queue": queue_id}))

    # Loop: pop (/v2.14/ helper), read, stop (basic server), re-enqueue into the pending queue.
    popped = get_next_task(session, queue=queue_id, get_task_info=True)
    assert popped["entry"]["task"] == task_id and popped["task_info"]["user"]
    assert get_next_task(session, queue=queue_id) == {}
    task = session.get(service="tasks", action="get_all", version="2.13", id=[task_id])["tasks"][0]
    assert task["status"] == "queued"
    api.tasks.stop(task_id, force=True, status_reason="moving to k8s pending queue")
    res = session.send_request(
        "tasks",
        "enqueue",
        json={
            "task": task_id,
            "queue": pending_id,
            "status_reason": "k8s pending scheduler",
            "update_execution_queue": True,
        },
    )
    assert ok(res)["queued"] == 1

    # Image: none on the task, so the glue writes its default back with tasks.edit (force).
    assert not get_task_container(session, task_id).get("image")
    assert set_task_container(session, task_id, docker_image="nvidia/cuda:12.4.0-base-ubuntu22.04", docker_arguments="-e A=1")
    assert get_task_container(session, task_id)["image"] == "nvidia/cuda:12.4.0-base-ubuntu22.04"
    assert api.queues.get_by_id(queue=queue_id).name == queue_name
    ok(
        session.send_request(
            "tasks",
            "edit_hyper_params",
            version="2.9",
            json={"task": task_id, "hyperparams": [{"section": "properties", "name": "k8s-queue", "value": queue_name}]},
        )
    )

    # Pending daemon: status message while the pod waits; stopped tasks are listed for pod deletion.
    ok(session.send_request("tasks", "update", json={"task": task_id, "status_message": "K8S glue status: Unschedulable"}))
    queued = session.get(service="tasks", action="get_all", version="2.13", id=[task_id])["tasks"][0]
    assert (queued["status"], queued["status_message"]) == ("queued", "K8S glue status: Unschedulable")
    assert queued["execution"]["queue"] == pending_id

    # In the pod: dequeue straight to in_progress, started, completed.
    ok(session.send_request("tasks", "dequeue", version="2.26", json={"task": task_id, "new_status": "in_progress"}))
    ok(session.send_request("tasks", "started", json={"task": task_id, "force": True}))
    ok(session.send_request("tasks", "completed", json={"task": task_id}))
    assert session.get(service="tasks", action="get_all", version="2.13", id=[task_id])["tasks"][0]["status"] == "completed"
    assert api.queues.get_by_id(queue=pending_id).entries == []


def test_glue_failure_path(session, unique):
    """kubectl failed: remove from the pending queue, fail with force."""
    pending_id = ok(session.send_request("queues", "create", json={"name": f"pending-{unique}", "system_tags": ["k8s-glue"]}))["id"]
    task_id = ok(session.send_request("tasks", "create", json={"name": "glue failure", "type": "training"}))["id"]
    ok(session.send_request("tasks", "enqueue", json={"task": task_id, "queue": pending_id}))
    ok(session.send_request("queues", "remove_task", json={"task": task_id, "queue": pending_id}))
    session.api_client.tasks.failed(task_id, force=True, status_reason="kubectl apply failed")
    task = session.get(service="tasks", action="get_all", version="2.13", id=[task_id])["tasks"][0]
    assert (task["status"], task["status_reason"]) == ("failed", "kubectl apply failed")
    stopped = session.get(service="tasks", action="get_all", version="2.13", status=["stopped"])["tasks"]
    assert task_id not in [t["id"] for t in stopped]
