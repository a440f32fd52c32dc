"""The official SDK's high-level Task API against the emulator: create, enqueue by queue name, read back, change
status, fail, stop. Mirrors the SDK call sequence in reference/clearml-api.md §10."""

import pytest
from clearml import Task
from clearml.backend_api import Session
from clearml.backend_api.session.client import APIClient


@pytest.fixture(scope="module")
def client():
    return APIClient()


def test_login_token_claims_drive_the_sdk_version():
    session = Task._get_default_session()
    # The token's api_version/server_version/feature_set claims, as the SDK decoded them.
    assert (str(Session.api_version), str(Session.server_version), session.feature_set) == ("2.31", "2.0.0", "basic")
    assert session.check_min_api_version("2.23") and not session.check_min_api_version("2.32")
    # ... which make the SDK use its newest service bindings, so its URLs are /v2.23/....
    from clearml.backend_api.services import tasks

    assert tasks.__name__.endswith(".v2_23.tasks")


def test_create_task_with_docker_image_and_read_it_back(unique):
    task = Task.create(project_name=f"conformance-{unique}", task_name="train model", docker="python:3.11-slim --ipc=host")
    task.reload()
    assert task.name == "train model"
    assert task.status == "created"
    assert task.get_project_name() == f"conformance-{unique}"
    container = task.get_base_docker()
    assert container.startswith("python:3.11-slim")
    assert task.data.container["image"] == "python:3.11-slim"
    again = Task.get_task(task_id=task.id)
    assert again.id == task.id and again.name == "train model"


def test_enqueue_by_queue_name_then_status_flow(client, unique):
    queue_name = f"gpu-{unique}"
    client.queues.create(name=queue_name)
    task = Task.create(project_name=f"conformance-{unique}", task_name="enqueue me", docker="ubuntu:24.04")
    Task.enqueue(task, queue_name=queue_name)
    task.reload()
    assert task.status == "queued"
    queue = client.queues.get_all(name=f"^{queue_name}$")[0]
    assert task.data.execution.queue == queue.id
    entries = client.queues.get_by_id(queue=queue.id).entries
    assert [e.task for e in entries] == [task.id]

    # What an agent does with it: pop, start, fail.
    res = client.queues.get_next_task(queue=queue.id)
    assert res.entry.task == task.id
    assert client.queues.get_by_id(queue=queue.id).entries == []
    client.tasks.started(task=task.id)
    task.reload()
    assert task.status == "in_progress"
    task.mark_failed(status_reason="pod failed", status_message="OOMKilled")
    task.reload()
    assert task.status == "failed"
    assert task.data.status_message == "OOMKilled"


def test_enqueue_to_unknown_queue_name_raises(unique):
    task = Task.create(project_name=f"conformance-{unique}", task_name="nowhere to go")
    with pytest.raises(ValueError):
        Task.enqueue(task, queue_name=f"missing-{unique}")
    task.reload()
    assert task.status == "created"


def test_abort_a_queued_task_removes_it_from_the_queue(client, unique):
    queue_name = f"cpu-{unique}"
    queue_id = client.queues.create(name=queue_name).id
    task = Task.create(project_name=f"conformance-{unique}", task_name="abort me")
    Task.enqueue(task, queue_id=queue_id)
    client.tasks.stop(task=task.id)
    task.reload()
    assert task.status == "stopped"
    assert task.data.status_message.startswith("Stopped by")
    assert client.queues.get_by_id(queue=queue_id).entries == []


def test_mark_stopped_on_a_running_task(client, unique):
    task = Task.create(project_name=f"conformance-{unique}", task_name="stop me")
    client.tasks.started(task=task.id, force=True)
    task.mark_stopped(force=True, status_message="aborted by test")
    task.reload()
    assert task.status == "stopped"
    assert task.data.status_message == "aborted by test"


def test_illegal_transition_is_refused_then_forced(client, unique):
    task = Task.create(project_name=f"conformance-{unique}", task_name="state machine")
    with pytest.raises(Exception) as err:
        client.tasks.failed(task=task.id)
    assert "110" in str(err.value) or "Invalid task status" in str(err.value)
    client.tasks.failed(task=task.id, force=True)
    task.reload()
    assert task.status == "failed"
