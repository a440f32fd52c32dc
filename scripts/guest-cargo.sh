#!/usr/bin/env bash
# Build or lint every Rust guest workspace (wasm32-wasip2) and collect the components into $POLICY_DIR.
#   scripts/guest-cargo.sh build   build release components, copy each cdylib to $POLICY_DIR/<package-name>.wasm
#   scripts/guest-cargo.sh lint    cargo fmt --check + clippy -D warnings for each guest workspace
#   scripts/guest-cargo.sh test    native unit tests of each policy's logic (plugins/ and examples/, host target)
# Guest workspaces have their own lockfiles; they share $WASM_TARGET_DIR so a rebuild is incremental.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cache-root.sh --export
export CARGO_TARGET_DIR="${WASM_TARGET_DIR:-$cache/wasm-target}"
policy_dir="${POLICY_DIR:-$cache/policies}"
mkdir -p "$policy_dir"

# Every guest workspace: a directory holding a Cargo.toml with a [workspace] table.
workspaces=()
for manifest in plugins/Cargo.toml host/policy-runtime/test-components/Cargo.toml examples/*/Cargo.toml; do
    [[ -f "$manifest" ]] && workspaces+=("$manifest")
done

for manifest in "${workspaces[@]}"; do
    case "${1:-build}" in
    build)
        echo "==> building $(dirname "$manifest") (wasm32-wasip2)"
        cargo build --quiet --release --target wasm32-wasip2 --manifest-path "$manifest"
        # Copy every cdylib of this workspace under its package name (cargo writes underscores).
        cargo metadata --no-deps --format-version 1 --manifest-path "$manifest" |
            python3 -c '
import json, sys
for p in json.load(sys.stdin)["packages"]:
    for t in p["targets"]:
        if "cdylib" in t["kind"]:
            print(p["name"], t["name"].replace("-", "_"))' |
            while read -r package target; do
                cp "$CARGO_TARGET_DIR/wasm32-wasip2/release/$target.wasm" "$policy_dir/$package.wasm"
            done
        ;;
    lint)
        echo "==> linting $(dirname "$manifest")"
        cargo fmt --all --check --manifest-path "$manifest"
        cargo clippy --quiet --release --target wasm32-wasip2 --manifest-path "$manifest" --all-targets -- -D warnings
        ;;
    test)
        # The hostile test components have no logic worth unit-testing; policies do.
        [[ "$manifest" == host/* ]] && continue
        echo "==> unit-testing $(dirname "$manifest") (native)"
        cargo test --quiet --manifest-path "$manifest"
        ;;
    *)
        echo "usage: $0 build|lint|test" >&2
        exit 2
        ;;
    esac
done
echo "components in $policy_dir:"
ls -1 "$policy_dir"
