#!/usr/bin/env bash
# Conformance: start a fresh `clearml-k8s-agent emulator` on a free loopback port, point the real ClearML clients
# at it (offline: every CLEARML_*_HOST is the emulator, credentials come from the environment), start the real
# control plane (`kube-testenv up`) for the k8s glue tests, run the pytest scripts in this folder, stop everything
# it started, print "conformance: N passed, N failed".
# Usage: run.sh VENV_DIR [pytest args...]. Binaries: $CLEARML_K8S_AGENT_BIN, else $CARGO_TARGET_DIR/debug/ (default
# <cache root>/target, the root from scripts/cache-root.sh); the control plane's etcd and kube-apiserver come from
# `just testenv-build`. Without a control plane the glue tests are skipped, and fail under CI=true.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:?usage: run.sh VENV_DIR [pytest args...]}"
shift
# The cache root rule: scripts/cache-root.sh (honours CLEARML_K8S_AGENT_CACHE), as the justfile uses it.
source "$here/../../scripts/cache-root.sh" --export
target="${CARGO_TARGET_DIR:-$cache/target}"
bin="${CLEARML_K8S_AGENT_BIN:-$target/debug/clearml-k8s-agent}"
testenv_bin="$target/debug/kube-testenv"
kubelet_sim_bin="$target/debug/kubelet-sim"

fail() { echo "conformance: ERROR: $*" >&2; exit 1; }
[[ -x "$bin" ]] || fail "emulator binary $bin not found: run 'cargo build -p clearml-k8s-agent' (or 'just conformance')"
[[ -x "$venv/bin/python" ]] || fail "Python venv $venv not found: run 'just venv'"
"$venv/bin/python" -c 'import clearml, pytest' 2>/dev/null || fail "venv $venv lacks clearml/pytest: run 'just venv'"

work="$(mktemp -d)"
emulator_pid=""
testenv_dir=""
cleanup() {
    if [[ -n "$emulator_pid" ]] && kill -0 "$emulator_pid" 2>/dev/null; then
        kill -TERM "$emulator_pid" 2>/dev/null || true
        wait "$emulator_pid" 2>/dev/null || true
    fi
    # Stops exactly the etcd and kube-apiserver pids this run recorded.
    [[ -z "$testenv_dir" ]] || "$testenv_bin" down --dir "$testenv_dir" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

access_key="conformance-$RANDOM$RANDOM"
secret_key="secret-$RANDOM$RANDOM$RANDOM"
RUST_LOG="${RUST_LOG:-clearml_emulator=debug}" "$bin" emulator --port 0 --url-file "$work/url" \
    --access-key "$access_key" --secret-key "$secret_key" >"$work/emulator.log" 2>&1 &
emulator_pid=$!
for _ in $(seq 1 100); do
    [[ -s "$work/url" ]] && break
    kill -0 "$emulator_pid" 2>/dev/null || { cat "$work/emulator.log" >&2; fail "the emulator exited during startup"; }
    sleep 0.1
done
[[ -s "$work/url" ]] || { cat "$work/emulator.log" >&2; fail "the emulator did not report its address within 10 s"; }
url="$(cat "$work/url")"
echo "conformance: emulator at $url (pid $emulator_pid)"

# The real control plane for the k8s glue tests, private to this run.
if [[ -x "$testenv_bin" && -x "$kubelet_sim_bin" ]]; then
    testenv_dir="$work/testenv"
    if "$testenv_bin" up --dir "$testenv_dir" >"$work/testenv.log" 2>&1; then
        export CONFORMANCE_KUBECONFIG="$testenv_dir/kubeconfig" KUBELET_SIM_BIN="$kubelet_sim_bin"
        echo "conformance: control plane up (KUBECONFIG=$CONFORMANCE_KUBECONFIG)"
    else
        echo "conformance: WARNING: kube-testenv up failed, the glue tests will skip (fail under CI):" >&2
        tail -n 5 "$work/testenv.log" >&2
    fi
else
    echo "conformance: WARNING: $testenv_bin or $kubelet_sim_bin missing, the glue tests will skip (fail under CI)" >&2
fi

# Everything the SDK could contact is the emulator; no config file, caches in the scratch dir.
export CLEARML_EMULATOR_URL="$url" CLEARML_EMULATOR_LOG="$work/emulator.log" CLEARML_K8S_AGENT_BIN="$bin"
export CLEARML_API_HOST="$url" CLEARML_WEB_HOST="$url" CLEARML_FILES_HOST="$url"
export CLEARML_API_ACCESS_KEY="$access_key" CLEARML_API_SECRET_KEY="$secret_key"
export CLEARML_CONFIG_FILE=/dev/null CLEARML_CACHE_DIR="$work/cache" HOME="$work/home"
export CLEARML_LOG_ENVIRONMENT="" CLEARML_NO_DEFAULT_SERVER=1 PYTHONDONTWRITEBYTECODE=1
unset CLEARML_TASK_ID CLEARML_AUTH_TOKEN
mkdir -p "$HOME"

status=0
(cd "$here" && "$venv/bin/python" -m pytest -p no:cacheprovider -q --junitxml="$work/junit.xml" "$@") || status=$?

if [[ $status -ne 0 ]]; then
    echo "conformance: emulator log (last 40 lines):" >&2
    tail -n 40 "$work/emulator.log" >&2
fi
if [[ -f "$work/junit.xml" ]]; then
    "$venv/bin/python" - "$work/junit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root)
tests = sum(int(s.get("tests", 0)) for s in suites)
failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
print(f"conformance: {tests - failed - skipped} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PY
else
    echo "conformance: 0 passed, 1 failed"
    [[ $status -ne 0 ]] || status=1
fi
exit $status
