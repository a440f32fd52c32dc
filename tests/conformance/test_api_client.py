"""The SDK's low-level APIClient for queues and workers, as an agent or the k8s glue uses them."""

import time

import pytest
from clearml.backend_api.session.client import APIClient, APIError


@pytest.fixture(scope="module")
def client():
    return APIClient()


def raw(client, endpoint, body, version="2.31"):
    """Send a call the SDK's 2.23 bindings cannot express (newer fields the glue uses); return its data."""
    service, action = endpoint.split(".")
    res = client.session.send_request(service, action, version=version, json=body)
    assert res.status_code == 200, res.text
    return res.json()["data"]


def test_default_queue_exists(client):
    default = client.queues.get_default()
    assert default.name == "default"


def test_queue_create_lookup_and_duplicate(client, unique):
    qid = client.queues.create(name=f"q-{unique}", tags=["team-a"]).id
    assert len(qid) == 32
    by_name = client.queues.get_all(name=f"^q-{unique}$", only_fields=["id", "name"])
    assert [q.id for q in by_name] == [qid]
    assert client.queues.get_by_id(queue=qid).tags == ["team-a"]
    with pytest.raises(APIError) as err:
        client.queues.create(name=f"q-{unique}")
    assert err.value.code == 400 and err.value.subcode == 801


def test_unknown_queue_is_701(client):
    with pytest.raises(APIError) as err:
        client.queues.get_by_id(queue="not-a-queue")
    assert (err.value.code, err.value.subcode) == (400, 701)


def test_hidden_queue_needs_search_hidden(client, unique):
    name = f"k8s_scheduler_{unique}"
    qid = client.queues.create(name=name, system_tags=["k8s-glue"]).id
    assert qid not in [q.id for q in client.queues.get_all()]
    assert qid in [q.id for q in client.queues.get_all(search_hidden=True)]
    assert qid in [q.id for q in client.queues.get_all(name=name)]


def test_queue_is_fifo_and_get_next_task_pops_atomically(client, unique):
    qid = client.queues.create(name=f"fifo-{unique}").id
    project = client.projects.create(name=f"fifo-{unique}").id
    ids = [client.tasks.create(name=f"task {i}", type="training", project=project).id for i in range(3)]
    for t in ids:
        client.tasks.enqueue(task=t, queue=qid)
    assert client.queues.get_num_entries(queue=qid).num == 3
    popped = [client.queues.get_next_task(queue=qid).entry.task for _ in ids]
    assert popped == ids
    empty = client.queues.get_next_task(queue=qid)
    assert getattr(empty, "entry", None) is None


def test_add_and_remove_task(client, unique):
    qid = client.queues.create(name=f"manual-{unique}").id
    tid = client.tasks.create(name="manual entry", type="training").id
    client.queues.add_task(queue=qid, task=tid)
    with pytest.raises(APIError) as err:
        client.queues.add_task(queue=qid, task=tid)
    assert err.value.subcode == 706
    assert client.queues.remove_task(queue=qid, task=tid).removed == 1
    with pytest.raises(APIError) as err:
        client.queues.remove_task(queue=qid, task=tid)
    assert err.value.subcode == 703


def test_workers_register_report_and_list(client, unique):
    qid = client.queues.create(name=f"workers-{unique}").id
    tid = client.tasks.create(name="worker task", type="training").id
    worker = f"k8s-agent:{unique}"
    client.workers.register(worker=worker, queues=[qid], timeout=600, tags=["gpus=4"])
    client.workers.status_report(
        worker=worker,
        timestamp=int(time.time() * 1000),
        task=tid,
        queue=qid,
        machine_stats={"gpu_usage": [10.0, 20.0], "memory_used": 1024, "memory_free": 2048, "cpu_usage": [5.0]},
    )
    listed = {w.id: w for w in client.workers.get_all()}
    assert worker in listed
    assert listed[worker].task.id == tid
    assert client.tasks.get_by_id(task=tid).last_worker == worker
    client.workers.unregister(worker=worker)
    assert worker not in [w.id for w in client.workers.get_all()]


def test_status_report_for_unknown_task_is_101(client, unique):
    with pytest.raises(APIError) as err:
        client.workers.status_report(worker=f"w-{unique}", timestamp=int(time.time() * 1000), task="f00")
    assert (err.value.code, err.value.subcode) == (400, 101)


def test_glue_pending_queue_sequence(client, unique):
    """The k8s glue's launch path on an open-source server (reference §9): stop, re-enqueue to the hidden pending
    queue with update_execution_queue, write properties, then the in-pod dequeue/started."""
    pending = client.queues.create(name=f"k8s_scheduler_{unique}", system_tags=["k8s-glue"]).id
    queue = client.queues.create(name=f"glue-{unique}").id
    tid = client.tasks.create(name="glue task", type="training").id
    client.tasks.enqueue(task=tid, queue=queue)
    assert client.queues.get_next_task(queue=queue).entry.task == tid
    assert client.tasks.get_all(id=[tid])[0].status.value == "queued"
    client.tasks.stop(task=tid, force=True)
    assert client.tasks.get_by_id(task=tid).status.value == "stopped"
    with pytest.raises(APIError):
        client.queues.remove_task(queue=pending, task=tid)
    # update_execution_queue is a 2.31 field the SDK's 2.23 bindings lack; the glue sends it, so send it raw.
    data = raw(
        client,
        "tasks.enqueue",
        {"task": tid, "queue": pending, "status_reason": "k8s pending scheduler", "update_execution_queue": True},
    )
    assert data["queued"] == 1 and data["fields"]["execution.queue"] == pending
    t = client.tasks.get_by_id(task=tid)
    assert (t.status.value, t.execution.queue, t.status_reason) == ("queued", pending, "k8s pending scheduler")
    client.tasks.edit_hyper_params(
        task=tid, hyperparams=[{"section": "properties", "name": "k8s-queue", "value": f"glue-{unique}"}]
    )
    assert client.tasks.get_by_id(task=tid).hyperparams["properties"]["k8s-queue"].value == f"glue-{unique}"
    # In the pod:
    assert raw(client, "tasks.dequeue", {"task": tid, "new_status": "in_progress"}, version="2.26")["dequeued"] == 1
    client.tasks.started(task=tid, force=True)
    assert client.tasks.get_by_id(task=tid).status.value == "in_progress"
    assert client.queues.get_by_id(queue=pending).entries == []
    client.tasks.completed(task=tid)
    assert client.tasks.get_by_id(task=tid).status.value == "completed"
