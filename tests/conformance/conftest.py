"""Shared setup for the conformance tests: the real ClearML SDK pointed at a running emulator, offline.

The runner (run.sh) starts `clearml-k8s-agent emulator` and exports CLEARML_EMULATOR_URL plus the CLEARML_* client
variables before pytest imports anything, because the SDK reads its configuration at import time.
"""

import ipaddress
import os
import socket
import uuid

import pytest

EMULATOR_URL = os.environ.get("CLEARML_EMULATOR_URL")
if not EMULATOR_URL:
    raise RuntimeError(
        "CLEARML_EMULATOR_URL is not set: run these tests through tests/conformance/run.sh (just conformance), "
        "which starts the emulator and configures the SDK"
    )

# The SDK must never leave this machine: refuse any connection that is not to loopback. A test that trips this
# fails with the address it tried, instead of hanging on a network that is not there.
_real_connect = socket.socket.connect
# Background threads swallow exceptions, so refused attempts are also recorded and fail the session at the end.
REFUSED = []


def _loopback_only(self, address):
    host = address[0] if isinstance(address, tuple) else address
    try:
        ok = ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = host == "localhost" or self.family == getattr(socket, "AF_UNIX", None)
    if not ok:
        REFUSED.append(address)
        raise ConnectionRefusedError(f"conformance tests are offline: refused connection to {address!r}")
    return _real_connect(self, address)


socket.socket.connect = _loopback_only

# The SDK checks a public update server from a background thread; make that a no-op.
from clearml.utilities.check_updates import CheckPackageUpdates  # noqa: E402

CheckPackageUpdates.check_new_package_available = classmethod(lambda cls, only_once=False: None)


@pytest.fixture
def unique():
    """A short unique suffix, so tests do not collide on names in the shared emulator."""
    return uuid.uuid4().hex[:8]


def pytest_sessionfinish(session, exitstatus):
    if REFUSED:
        print(f"\nconformance: the clients tried to leave the machine: {REFUSED!r}")
        session.exitstatus = 1


def emulator_errors(log_path, since=0):
    """Calls the emulator answered with an error, from its debug log (one `call` line per request), as
    (endpoint, code, subcode) after byte offset `since`; and the new offset. The real clients log and swallow most
    server errors, so tests read them here instead of trusting the client to fail."""
    import re

    with open(log_path, "rb") as f:
        f.seek(since)
        text = f.read().decode("utf-8", "replace")
        end = f.tell()
    ansi = re.compile(r"\x1b\[[0-9;]*m")
    errors = []
    for line in ansi.sub("", text).splitlines():
        if " call" not in line or "result_code=200" in line:
            continue
        m = re.search(r'endpoint="?([\w.]+)"?.*result_code=(\d+)(?:.*result_subcode=(\d+))?', line)
        if m:
            errors.append((m.group(1), int(m.group(2)), int(m.group(3) or 0)))
    return errors, end


class StrictSession:
    """clearml-agent's own Session, but a server error fails the test instead of being returned for the caller to
    log: `send_request` asserts the answer is OK unless the test says which error it expects."""

    def __init__(self):
        from clearml_agent.session import Session

        self.session = Session()

    def __getattr__(self, name):
        return getattr(self.session, name)

    def send_request(self, service, action, expect=None, **kwargs):
        res = self.session.send_request(service, action, **kwargs)
        meta = res.json().get("meta", {}) if res.text else {}
        got = (meta.get("result_code"), meta.get("result_subcode"))
        if expect is None:
            assert res.ok, f"{service}.{action}: {res.status_code} {res.text}"
        else:
            assert got == tuple(expect), f"{service}.{action}: expected {expect}, got {got}: {res.text}"
        return res


@pytest.fixture
def strict_session():
    return StrictSession()


class EmulatorProcess:
    """A `clearml-k8s-agent emulator` of its own (e.g. with the enterprise feature set), for tests that need one."""

    def __init__(self, feature_set, workdir):
        import subprocess
        import time

        self.binary = os.environ["CLEARML_K8S_AGENT_BIN"]
        self.access_key = f"conformance-{uuid.uuid4().hex[:12]}"
        self.secret_key = uuid.uuid4().hex
        self.log_path = os.path.join(workdir, f"emulator-{feature_set}.log")
        url_file = os.path.join(workdir, f"url-{feature_set}")
        env = dict(os.environ, RUST_LOG="clearml_emulator=debug", NO_COLOR="1")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [self.binary, "emulator", "--port", "0", "--url-file", url_file, "--feature-set", feature_set,
             "--access-key", self.access_key, "--secret-key", self.secret_key],
            stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )
        # The binary writes the file once it listens: that is the signal, the loop only bounds the wait.
        deadline = time.monotonic() + 20
        while not (os.path.exists(url_file) and os.path.getsize(url_file) > 0):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"emulator did not start: {open(self.log_path).read()[-2000:]}")
            time.sleep(0.05)
        self.url = open(url_file).read().strip()

    def client_env(self):
        """The variables the SDK, the glue and the in-pod agent read."""
        return {
            "CLEARML_API_HOST": self.url, "CLEARML_WEB_HOST": self.url, "CLEARML_FILES_HOST": self.url,
            "CLEARML_API_ACCESS_KEY": self.access_key, "CLEARML_API_SECRET_KEY": self.secret_key,
        }

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
        self.log.close()
