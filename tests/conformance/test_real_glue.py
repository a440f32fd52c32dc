"""The real k8s glue: clearml-agent 3.0.3 `K8sIntegration` (glue/k8s.py) driving an emulator and the real control
plane (kube-apiserver from kube-testenv, kubectl pointed at it, kubelet-sim binding pods), once with the basic and
once with the enterprise feature set. Queued tasks become pods, the pending-pods daemon writes an unschedulable
pod's reason to its task, and an abort from the UI (`tasks.stop_many`) makes the glue delete the pending pod.

The glue crashes when a pod ends while its task is still queued or in progress (reference/clearml-glue.md (g)), so
every pod here is told to run for an hour, and the glue is stopped before the namespace goes.

Needs CONFORMANCE_KUBECONFIG and KUBELET_SIM_BIN (run.sh sets both when it could start the control plane) and
kubectl; without them the test is skipped, and under CI=true it fails."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import requests

from conftest import EmulatorProcess, emulator_errors

HERE = os.path.dirname(os.path.abspath(__file__))
KUBECONFIG = os.environ.get("CONFORMANCE_KUBECONFIG")
KUBELET_SIM = os.environ.get("KUBELET_SIM_BIN")
# What the glue is expected to get wrong against any server: before re-enqueueing into the pending queue it
# removes the task from that queue "just to make sure" (glue/k8s.py), which is 703 when it is not there.
ALLOWED_GLUE_ERRORS = {("queues.remove_task", 400, 703)}


def require_control_plane():
    missing = []
    if not KUBECONFIG or not os.path.exists(KUBECONFIG):
        missing.append("CONFORMANCE_KUBECONFIG (the kube-testenv control plane)")
    if not KUBELET_SIM or not os.access(KUBELET_SIM, os.X_OK):
        missing.append("KUBELET_SIM_BIN (the kubelet-sim binary)")
    if not shutil.which("kubectl"):
        missing.append("kubectl on PATH")
    if missing:
        msg = "the real glue needs " + ", ".join(missing) + " (run through `just conformance`)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)


class Api:
    """A strict client for an emulator of the test's own: any error result fails the test."""

    def __init__(self, emu):
        self.url = emu.url
        res = requests.post(f"{self.url}/auth.login", auth=(emu.access_key, emu.secret_key), timeout=10)
        res.raise_for_status()
        self.token = res.json()["data"]["token"]

    def __call__(self, endpoint, version="2.23", **body):
        res = requests.post(
            f"{self.url}/v{version}/{endpoint}", json=body, timeout=10,
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert res.ok, f"{endpoint}: {res.status_code} {res.text}"
        return res.json()["data"]


def kubectl(*args, check=True):
    res = subprocess.run(["kubectl", "--kubeconfig", KUBECONFIG, *args], capture_output=True, text=True, timeout=60)
    if check:
        assert res.returncode == 0, f"kubectl {' '.join(args)}: {res.stderr}"
    return res


def pod(namespace, name):
    res = kubectl("get", "pod", "-n", namespace, name, "-o", "json", check=False)
    return json.loads(res.stdout) if res.returncode == 0 else None


def wait_for(what, condition, procs, timeout=90):
    """Polls `condition` until it returns something truthy; fails naming `what` (and any process that died)."""
    deadline = time.monotonic() + timeout
    while True:
        for name, p in procs.items():
            if p.poll() is not None:
                pytest.fail(f"{name} exited ({p.returncode}) while waiting for {what}:\n{p.stdout_text()}")
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.25)


class Proc:
    def __init__(self, args, env, log_path):
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.p = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def poll(self):
        return self.p.poll()

    @property
    def returncode(self):
        return self.p.returncode

    def stdout_text(self):
        self.log.flush()
        return open(self.log_path, errors="replace").read()[-4000:]

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


TEMPLATE = """\
apiVersion: v1
kind: Pod
metadata:
  namespace: {namespace}
  annotations:
    sim.clearml-k8s-agent/run-seconds: "3600"
spec:
  containers:
  - resources:
      limits:
        nvidia.com/gpu: 1
"""


@pytest.mark.parametrize("feature_set", ["basic", "enterprise"])
def test_real_glue_launches_reports_and_aborts(feature_set, unique, tmp_path):
    require_control_plane()
    emu = EmulatorProcess(feature_set, str(tmp_path))
    procs = {}
    namespace = f"glue-{feature_set}-{unique}"
    try:
        api = Api(emu)
        queue_name, pending_name = f"1xGPU-{unique}", f"k8s_scheduler_{unique}"
        queue = api("queues.create", name=queue_name)["id"]
        running = api("tasks.create", name="glue runs this", type="training")["id"]
        waiting = api("tasks.create", name="glue cannot place this", type="training")["id"]
        for task in (running, waiting):
            api("tasks.enqueue", task=task, queue=queue)

        kubectl("create", "namespace", namespace)
        template = tmp_path / "template.yaml"
        template.write_text(TEMPLATE.format(namespace=namespace))
        base_env = dict(os.environ, KUBECONFIG=KUBECONFIG, HOME=str(tmp_path), **emu.client_env())
        # One node with one GPU: the first pod runs, the second is Unschedulable.
        procs["kubelet-sim"] = Proc(
            [KUBELET_SIM, "--namespace", namespace, "--run-seconds", "3600",
             "--node", f"name=sim-{feature_set}-{unique},cpu=32,memory=128Gi,gpu=1"],
            base_env, tmp_path / "kubelet-sim.log",
        )
        glue_env = dict(
            base_env,
            CLEARML_WORKER_ID=f"k8s-glue:{feature_set}-{unique}",
            CLEARML_AGENT_QUEUE_POLL_FREQ_SEC="1",
            CLEARML_AGENT_STATUS_REPORT_FREQ_SEC="2",
            PYTHONUNBUFFERED="1",
        )
        procs["glue"] = Proc(
            [sys.executable, os.path.join(HERE, "glue_driver.py"), "--queue", queue_name,
             "--k8s-pending-queue-name", pending_name, "--template-yaml", str(template), "--namespace", namespace],
            glue_env, tmp_path / "glue.log",
        )

        def phase(name, want):
            p = pod(namespace, f"clearml-id-{name}")
            return p if p and p.get("status", {}).get("phase") == want else None

        run_pod = wait_for("the first task's pod to run", lambda: phase(running, "Running"), procs)
        wait_for("the second task's pod to be created", lambda: pod(namespace, f"clearml-id-{waiting}"), procs)
        # glue/k8s.py labels its pods with the queue they came from (QUEUE_LABEL), and the agent label.
        assert run_pod["metadata"]["labels"]["clearml-agent-queue"] == queue

        def task(t):
            return api("tasks.get_all", id=[t])["tasks"][0]

        msg = wait_for(
            "the pending-pods daemon to report the unschedulable pod",
            lambda: (task(waiting).get("status_message") or "").startswith("K8S glue status: Unschedulable")
            and task(waiting)["status_message"],
            procs,
        )
        assert "Insufficient nvidia.com/gpu" in msg, msg
        # The glue left both tasks queued in its pending queue (hidden, k8s-glue tag). The basic path points
        # execution.queue at it; the enterprise path (server >= 3.22.3) keeps the user's queue.
        pending = api("queues.get_all", name=f"^{pending_name}$", search_hidden=True)["queues"][0]
        assert {e["task"] for e in pending["entries"]} == {running, waiting}
        doc = task(running)
        assert doc["status"] == "queued"
        want_queue = pending["id"] if feature_set == "basic" else queue
        assert doc["execution"]["queue"] == want_queue, (feature_set, doc["execution"])
        assert doc["hyperparams"]["properties"]["k8s-queue"]["value"] == queue_name

        # Abort from the UI: the waiting task stops at once, and the glue deletes its pending pod.
        res = api("tasks.stop_many", ids=[waiting], status_reason="aborted by user")
        assert [s["id"] for s in res["succeeded"]] == [waiting] and res["failed"] == []
        wait_for("the glue to delete the aborted task's pending pod",
                 lambda: pod(namespace, f"clearml-id-{waiting}") is None, procs)
        assert task(waiting)["status"] == "stopped"
        assert phase(running, "Running"), "the running pod is untouched"

        errors, _ = emulator_errors(emu.log_path)
        unexpected = [e for e in errors if e not in ALLOWED_GLUE_ERRORS]
        assert unexpected == [], f"server errors the glue got: {unexpected}"
    finally:
        for p in reversed(list(procs.values())):
            p.stop()
        if KUBECONFIG and os.path.exists(KUBECONFIG):
            kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        emu.stop()
