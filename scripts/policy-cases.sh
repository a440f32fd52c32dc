#!/usr/bin/env bash
# Run the golden cases of every policy through the harness (`clearml-k8s-agent policy test`).
# Every plugin (plugins/<name>/) and example (examples/<name>/) must have a cases/ folder and a built component at
# $POLICY_DIR/<name>.wasm; a missing one fails the run. A policy may add harness flags (e.g. larger limits for a
# Python or JS runtime) in <dir>/harness.args.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cache-root.sh --export
policy_dir="${POLICY_DIR:-$cache/policies}"
target="${CARGO_TARGET_DIR:-$cache/target}"
# Same feature set as `cargo test --workspace` (see the justfile's agent-bin): a no-op after the tests ran.
cargo test --workspace --no-run --quiet
agent="$target/debug/clearml-k8s-agent"

failed=0 passed=0 problems=()
for dir in plugins/*/ examples/*/; do
    dir="${dir%/}"
    name="$(basename "$dir")"
    # Only policy folders: a crate, a Python app or a JS module. Shared crates opt out with a .not-a-policy file.
    [[ -f "$dir/Cargo.toml" || -f "$dir/app.py" || -f "$dir/package.json" ]] || continue
    if [[ -f "$dir/.not-a-policy" ]]; then continue; fi
    if [[ ! -d "$dir/cases" ]]; then
        problems+=("$dir has no cases/ folder: every plugin and example needs golden cases")
        failed=$((failed + 1))
        continue
    fi
    wasm="$policy_dir/$name.wasm"
    if [[ ! -f "$wasm" ]]; then
        problems+=("$wasm is missing: build it (just wasm / just plugins / just examples)")
        failed=$((failed + 1))
        continue
    fi
    extra=()
    [[ -f "$dir/harness.args" ]] && read -r -a extra < "$dir/harness.args"
    if "$agent" policy test "$wasm" --cases "$dir/cases" "${extra[@]}"; then
        passed=$((passed + 1))
    else
        problems+=("$dir: cases failed (see above)")
        failed=$((failed + 1))
    fi
done
for p in "${problems[@]}"; do echo "error: $p" >&2; done
echo "policies: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
