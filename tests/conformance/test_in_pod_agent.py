"""The real in-pod agent: `clearml-agent execute --full-monitoring --require-queue --id <task>` (the command the k8s
glue's pod runs, glue/k8s.py `K8S_GLUE_DEF_EXEC_AGENT_ARGS`) as a local process against the emulator. It dequeues
the task, starts it, runs the task's one-line script, streams its console through events.add_batch and reports the
outcome; every call it makes must succeed."""

import os
import subprocess
import sys

import pytest

from conftest import emulator_errors

EMULATOR_LOG = os.environ.get("CLEARML_EMULATOR_LOG")


def make_task(session, unique, name, source):
    """A standalone-script task (no repository: the agent writes `script.diff` to the entry point), queued the way
    the glue leaves it for its pod: in the pending queue."""
    pending = session.send_request(
        "queues", "create", json={"name": f"k8s_scheduler_{unique}_{name}", "system_tags": ["k8s-glue"]}
    ).json()["data"]["id"]
    script = {"binary": "python3", "entry_point": "task.py", "working_dir": ".", "diff": source}
    task = session.send_request(
        "tasks", "create", json={"name": f"in-pod {name}", "type": "training", "script": script}
    ).json()["data"]["id"]
    session.send_request("tasks", "enqueue", json={"task": task, "queue": pending})
    return task


def run_agent(task, tmp_path):
    env = dict(
        os.environ,
        # The venv already has everything the one-line script needs: no virtualenv, no pip (offline).
        CLEARML_AGENT_SKIP_PYTHON_ENV_INSTALL="1",
        CLEARML_AGENT_SKIP_PIP_VENV_INSTALL=sys.executable,
        CLEARML_WORKER_ID=f"k8s-glue:conformance:{task}",
        HOME=str(tmp_path),
    )
    return subprocess.run(
        [sys.executable, "-m", "clearml_agent", "execute", "--full-monitoring", "--require-queue", "--id", task],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )


def task_doc(session, task):
    return session.get(service="tasks", action="get_all", version="2.13", id=[task])["tasks"][0]


def console(session, task):
    data = session.send_request("events", "get_task_log", version="2.9", json={"task": task, "order": "asc"})
    return [e.get("msg", "") for e in data.json()["data"]["events"]]


@pytest.mark.parametrize(
    "name, source, status",
    [("completes", "print('hello from the task')\n", "completed"), ("fails", "import sys; sys.exit(1)\n", "failed")],
)
def test_execute_takes_the_task_from_pending_to_its_outcome(strict_session, unique, tmp_path, name, source, status):
    mark = os.path.getsize(EMULATOR_LOG) if EMULATOR_LOG else 0
    task = make_task(strict_session, unique, name, source)
    proc = run_agent(task, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = task_doc(strict_session, task)
    assert doc["status"] == status, (doc["status"], doc.get("status_reason"), proc.stdout[-2000:])
    assert doc.get("started"), "tasks.started stamped the start"
    lines = "\n".join(console(strict_session, task))
    assert "Starting Task Execution" in lines, lines[-2000:]
    if status == "completed":
        assert "hello from the task" in lines
    if EMULATOR_LOG:
        errors, _ = emulator_errors(EMULATOR_LOG, mark)
        assert errors == [], f"the in-pod agent got server errors: {errors}"


def test_require_queue_refuses_a_task_that_is_not_queued(strict_session, unique, tmp_path):
    task = strict_session.send_request(
        "tasks", "create", json={"name": "never queued", "type": "training"}
    ).json()["data"]["id"]
    proc = run_agent(task, tmp_path)
    doc = task_doc(strict_session, task)
    assert doc["status"] == "created", "execute must not run a task that was not queued"
    assert "not queued" in (proc.stdout + proc.stderr), proc.stdout[-2000:]
