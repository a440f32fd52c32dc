#!/usr/bin/env bash
# Regenerate the Go wrapper modules (apiserver/go.mod, etcd/go.mod and their go.sum) for the pinned versions in
# versions.env. Run by hand when bumping Kubernetes; the result is committed. The staging `replace` list is derived
# mechanically from k8s.io/kubernetes' own go.mod (it maps every staging module to ./staging/..., which does not
# exist in the downloaded module, so each one is redirected to its published v0.X.Y tag).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
export GOTOOLCHAIN GOFLAGS=-mod=mod

# --- kube-apiserver wrapper -------------------------------------------------------------------------------------
cd "$here/apiserver"
rm -f go.mod go.sum
go mod init "clearml-k8s-agent.local/testenv/apiserver"
go mod edit -go=1.26.0   # what k8s.io/kubernetes 1.37 declares; any newer 1.26.x toolchain builds it
modfile="$(go mod download -json "k8s.io/kubernetes@v${KUBE_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
staging=$(sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/.*#\1#p' "$modfile")
[ -n "$staging" ] || { echo "no staging replaces found in $modfile" >&2; exit 1; }
minor="${KUBE_VERSION#1.}"
for m in $staging; do
    go mod edit "-replace=$m=$m@v0.${minor}"
done
go mod edit "-require=k8s.io/kubernetes@v${KUBE_VERSION}"
go mod tidy
echo "apiserver: $(echo "$staging" | wc -l) staging replaces; etcd client: $(go list -m -f '{{.Version}}' go.etcd.io/etcd/client/v3)"

# --- etcd wrapper -----------------------------------------------------------------------------------------------
cd "$here/etcd"
rm -f go.mod go.sum
go mod init "clearml-k8s-agent.local/testenv/etcd"
go mod edit -go=1.26.0
# The module root of etcd/server/v3 is `package main` (etcdmain) and its go.mod replaces ../api, so it cannot be
# `go install`ed at a version; a `tool` directive pins it here and `go build go.etcd.io/etcd/server/v3` builds it.
go get -tool "go.etcd.io/etcd/server/v3@v${ETCD_VERSION}"
go mod tidy
