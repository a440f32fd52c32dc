#!/usr/bin/env bash
# Creates (or reuses) the Python venv with the real ClearML clients for the conformance tests.
# Usage: venv.sh VENV_DIR. The venv lives outside the clone (CI clones fresh) and is rebuilt when the hash of
# requirements.txt changes, so a version bump never runs against stale packages.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:?usage: venv.sh VENV_DIR}"
req="$here/requirements.txt"
want="$(sha256sum "$req" | cut -d' ' -f1)"

if [[ -x "$venv/bin/python" && -f "$venv/.requirements-sha256" && "$(cat "$venv/.requirements-sha256")" == "$want" ]]; then
    echo "venv: $venv is up to date"
    exit 0
fi

python="${PYTHON:-python3}"
if ! command -v "$python" >/dev/null 2>&1; then
    echo "venv: ERROR: $python not found; the conformance tests need Python >= 3.9 with the venv module" >&2
    exit 1
fi
echo "venv: creating $venv (requirements changed or venv missing)"
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
if ! "$python" -m venv "$venv"; then
    echo "venv: ERROR: '$python -m venv' failed (on Debian: apt-get install python3-venv)" >&2
    exit 1
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
# Written last: an interrupted install leaves no hash, so the next run starts over.
echo "$want" > "$venv/.requirements-sha256"
echo "venv: ready ($("$venv/bin/python" -c 'import clearml; print("clearml", clearml.__version__)'))"
