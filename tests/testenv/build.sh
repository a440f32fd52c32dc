#!/usr/bin/env bash
# Build kube-apiserver and etcd from the committed Go wrapper modules into a cache outside the clone:
#   ${CLEARML_K8S_AGENT_CACHE:-$HOME/.cache/clearml-k8s-agent}/testenv/<KUBE_VERSION>-etcd<ETCD_VERSION>/bin/
# Skips the build when both binaries are already there (CI runs in a fresh clone but keeps $HOME/.cache).
# Prints the bin dir on the last line of stdout. Cold: see tests/testenv/README.md for measured times.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# The cache root rule: scripts/cache-root.sh (one source for the justfile, the scripts and host/cache-paths).
source "$here/../../scripts/cache-root.sh" --export
bin="$cache/testenv/${KUBE_VERSION}-etcd${ETCD_VERSION}/bin"

present() { [ -x "$bin/kube-apiserver" ] && [ -x "$bin/etcd" ]; }
if present; then
    echo "testenv: kube-apiserver v${KUBE_VERSION} and etcd v${ETCD_VERSION} already built in $bin" >&2
    echo "$bin"
    exit 0
fi

# One build at a time per cache (several clones or sessions may share it); whoever waited finds the binaries.
mkdir -p "$bin"
exec 9>"$bin/../.build.lock"
if ! flock -n 9; then
    echo "testenv: another build of v${KUBE_VERSION} is running; waiting for it ..." >&2
    flock 9
fi
if present; then
    echo "testenv: built meanwhile by another process in $bin" >&2
    echo "$bin"
    exit 0
fi

# GOTOOLCHAIN comes from versions.env (`local`, or e.g. go1.27.3 if a future bump needs a newer Go).
# -mod=readonly: the committed go.mod/go.sum are the pin; a drift is an error, not a silent update.
# -buildvcs=false: the binaries do not depend on the state of this git checkout.
export GOTOOLCHAIN CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
tmp="$(mktemp -d "$bin/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# -pgo=off: cmd/kube-apiserver ships a default.pgo; a PGO build is markedly slower and the tests gain nothing.
# -trimpath -s -w: smaller binaries, reproducible paths. The -X flags make /version report the real release.
start=$(date +%s)
echo "testenv: building etcd v${ETCD_VERSION} ..." >&2
(cd "$here/etcd" && go build -pgo=off -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3)
echo "testenv: etcd built in $(( $(date +%s) - start ))s; building kube-apiserver v${KUBE_VERSION} (cold: ~10 min on 2 cores) ..." >&2
minor="${KUBE_VERSION#*.}"; minor="${minor%%.*}"
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v${KUBE_VERSION}"
ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor}"
ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=v${KUBE_VERSION}"
(cd "$here/apiserver" && go build -pgo=off -trimpath -ldflags "$ldflags" -o "$tmp/kube-apiserver" .)
# Move into place only when both succeeded, so a half build never counts as "present".
mv "$tmp/etcd" "$bin/etcd"
mv "$tmp/kube-apiserver" "$bin/kube-apiserver"
echo "testenv: built in $(( $(date +%s) - start ))s into $bin" >&2
echo "$bin"
