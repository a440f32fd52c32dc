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
