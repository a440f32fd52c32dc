# clearml-k8s-agent: every build, test and demo entry point. `just` lists the recipes.
# Caches live outside the clone (CI runs in a fresh clone): cargo target dirs, the Go-built control plane, the
# Python venv and the npm tools all go under ~/.cache/clearml-k8s-agent.

set shell := ["bash", "-euo", "pipefail", "-c"]

# The cache root rule lives in scripts/cache-root.sh (the Rust side: host/cache-paths; a test checks they agree).
cache := `scripts/cache-root.sh`
export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", cache / "target")
# Guest (wasm32-wasip2) workspaces share their own target dir so plugin builds never invalidate host artifacts.
export WASM_TARGET_DIR := env_var_or_default("WASM_TARGET_DIR", cache / "wasm-target")
# Where built .wasm components are collected for the host tests, the harness and the demo.
export POLICY_DIR := env_var_or_default("POLICY_DIR", cache / "policies")

# List the recipes
[private]
default:
    @just --list --unsorted

# Install the toolchain pieces the recipes need (wasm32-wasip2 target)
setup:
    rustup target add wasm32-wasip2

# Format check + clippy with warnings as errors (host workspace and guest workspaces)
lint: setup
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
    scripts/guest-cargo.sh lint

# Build every WebAssembly component: hostile test components, the sample policy, default plugins, examples
wasm: setup
    scripts/guest-cargo.sh build
    just examples

# Build the default plugins (plugins/, Rust, wasm32-wasip2) into $POLICY_DIR/<plugin>.wasm; a plugin without cases fails
plugins: setup
    #!/usr/bin/env bash
    set -euo pipefail
    for dir in plugins/*/; do
        [[ -f "$dir/Cargo.toml" && ! -f "$dir/.not-a-policy" ]] || continue
        if ! compgen -G "$dir/cases/*/task.yaml" >/dev/null; then
            echo "error: $dir has no golden cases (cases/<case>/task.yaml ...): every plugin needs them" >&2
            exit 1
        fi
    done
    CARGO_TARGET_DIR="$WASM_TARGET_DIR" cargo build --quiet --release --target wasm32-wasip2 --manifest-path plugins/Cargo.toml
    mkdir -p "$POLICY_DIR"
    for dir in plugins/*/; do
        [[ -f "$dir/Cargo.toml" && ! -f "$dir/.not-a-policy" ]] || continue
        name="$(basename "$dir")"
        cp "$WASM_TARGET_DIR/wasm32-wasip2/release/${name//-/_}.wasm" "$POLICY_DIR/$name.wasm"
        echo "built $POLICY_DIR/$name.wasm"
    done

# Build the example policies (Rust, Python, JavaScript) into $POLICY_DIR/<example>.wasm; an example without cases fails
examples: setup
    #!/usr/bin/env bash
    set -euo pipefail
    # componentize-py (PyPI) and componentize-js (npm) are pinned by each example's requirements.txt or
    # package-lock.json and installed into the cache, keyed by a hash of those pins.
    mkdir -p "$POLICY_DIR"
    wit=wit/0.1.0
    # Rebuild only when a source, the pins or the WIT changed since the component was built.
    fresh() { [[ -f "$1" ]] && [[ -z "$(find "$2" "$wit" -newer "$1" -type f -not -path '*/cases/*' -not -name '*.pyc' -not -name '*.md' | head -1)" ]]; }
    has_cases() {
        if ! compgen -G "$1/cases/*/task.yaml" >/dev/null; then
            echo "error: $1 has no golden cases (cases/<case>/task.yaml ...): every example needs them" >&2
            exit 1
        fi
    }
    # Rust examples (own workspaces, package name = folder name): cargo is incremental, so no freshness check.
    for manifest in examples/*/Cargo.toml; do
        [[ -f "$manifest" ]] || continue
        dir="$(dirname "$manifest")" name="$(basename "$(dirname "$manifest")")"
        has_cases "$dir"
        CARGO_TARGET_DIR="$WASM_TARGET_DIR" cargo build --quiet --release --target wasm32-wasip2 --manifest-path "$manifest"
        cp "$WASM_TARGET_DIR/wasm32-wasip2/release/${name//-/_}.wasm" "$POLICY_DIR/$name.wasm"
        echo "built $POLICY_DIR/$name.wasm"
    done
    for dir in examples/python-*/; do
        dir="${dir%/}" name="$(basename "$dir")" out="$POLICY_DIR/$(basename "$dir").wasm"
        has_cases "$dir"
        venv="{{cache}}/venv-componentize-$(sha256sum "$dir/requirements.txt" | cut -c1-12)"
        if [[ ! -x "$venv/bin/componentize-py" ]]; then
            python3 -m venv "$venv"
            "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$dir/requirements.txt"
        fi
        if fresh "$out" "$dir"; then echo "up to date $out"; continue; fi
        (cd "$dir" && PYTHONDONTWRITEBYTECODE=1 "$venv/bin/componentize-py" -d "../../$wit" -w queue-policy componentize app -o "$out" >/dev/null)
        echo "built $out"
    done
    for dir in examples/js-*/; do
        dir="${dir%/}" name="$(basename "$dir")" out="$POLICY_DIR/$(basename "$dir").wasm"
        has_cases "$dir"
        # node_modules live in the cache, not the clone: install from the committed lockfile with `npm ci`.
        tools="{{cache}}/npm-$name-$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -c1-12)"
        if [[ ! -x "$tools/node_modules/.bin/componentize-js" ]]; then
            mkdir -p "$tools"
            cp "$dir/package.json" "$dir/package-lock.json" "$tools/"
            (cd "$tools" && npm ci --quiet --no-audit --no-fund --cache "{{cache}}/npm-cache")
        fi
        if fresh "$out" "$dir"; then echo "up to date $out"; continue; fi
        (cd "$dir" && "$tools/node_modules/.bin/componentize-js" policy.js -w "../../$wit/queue-policy.wit" -n queue-policy -o "$out" -d http fetch-event >/dev/null)
        echo "built $out"
    done

# Run all tests: lint, build components and the control plane, Rust tests, policy golden cases, conformance
test: lint wasm
    just testenv-build
    cargo test --workspace
    scripts/guest-cargo.sh test
    just policy-cases
    just conformance

# Build the clearml-k8s-agent binary exactly as `cargo test --workspace` does. Every recipe gets the binary this way:
# `cargo build -p ...` or `cargo run -p ...` would unify dependency features differently and rebuild wasmtime's
# async half (minutes on a cold machine) for a second, equivalent binary.
[private]
agent-bin:
    cargo test --workspace --no-run --quiet

# Run every policy's golden cases through the harness
policy-cases:
    scripts/policy-cases.sh

# Python venv with the official clearml SDK (pinned in tests/conformance/requirements.txt), cached outside the clone; rebuilt when that file changes
venv:
    tests/conformance/venv.sh "{{cache}}/venv"

# Conformance: the real clearml SDK, clearml-agent's k8s glue (with kubectl, the real control plane and kubelet-sim) and
# the in-pod `clearml-agent execute` drive a freshly started `clearml-k8s-agent emulator` (prints "N passed, N failed")
conformance: venv agent-bin testenv-build
    tests/conformance/run.sh "{{cache}}/venv"

# Benchmarks: policy evaluation figures (recorded in BENCHMARKS.md)
bench: wasm
    cargo bench -q --workspace --profile dev --bench evaluation
    just agent-bin
    "$CARGO_TARGET_DIR/debug/clearml-k8s-agent" policy bench "$POLICY_DIR/rust-policy-template.wasm" --cases examples/rust-policy-template/cases
    just bench-policies
    just bench-agent

# Benchmark every default plugin and the Python/JS examples through the harness: p50/p99 of fresh-instance evaluations
bench-policies: plugins examples agent-bin
    #!/usr/bin/env bash
    set -euo pipefail
    for dir in plugins/*/ examples/python-*/ examples/js-*/; do
        dir="${dir%/}" name="$(basename "${dir%/}")"
        [[ -d "$dir/cases" ]] || continue
        # An interpreter-based component costs milliseconds per evaluation: fewer iterations keep the run short.
        iterations=2000
        [[ "$dir" == examples/* ]] && iterations=200
        "$CARGO_TARGET_DIR/debug/clearml-k8s-agent" policy bench "$POLICY_DIR/$name.wasm" --cases "$dir/cases" \
            --iterations "$iterations" 2>/dev/null
    done

# Demo: the real agent on the ClearML page's red/blue/green and GPU queues plus a policy queue, next to the ClearML
# emulator, a real kube-apiserver and kubelet-sim --in-pod-agent; enqueues example tasks and prints what became of
# each (examples/demo/README.md). A fresh machine builds the Go control plane and wasmtime first (progress shown).
demo: setup
    #!/usr/bin/env bash
    set -euo pipefail
    start=$SECONDS
    # A long build prints nothing for minutes: say every 30 s that it is still going.
    with_progress() {
        local what="$1"; shift
        "$@" & local pid=$! waited=0
        while kill -0 "$pid" 2>/dev/null; do
            sleep 1; waited=$((waited + 1))
            if (( waited % 30 == 0 )) && kill -0 "$pid" 2>/dev/null; then echo "demo: still $what (${waited} s)"; fi
        done
        wait "$pid"
    }
    echo "demo: [1/3] the control plane: kube-apiserver + etcd from Go modules (cached; a cold build takes 5-10 min)"
    with_progress "building kube-apiserver + etcd" tests/testenv/build.sh >/dev/null
    echo "demo: [2/3] the agent (with the default plugins), kubelet-sim and the demo driver (cached; a cold build compiles wasmtime: 10-15 min)"
    # What `just agent-bin` runs: the binaries exactly as `cargo test --workspace` builds them.
    with_progress "compiling the agent" cargo test --workspace --no-run --quiet
    echo "demo: [3/3] running the demo (built in $((SECONDS - start)) s)"
    "$CARGO_TARGET_DIR/debug/demo-driver" --values examples/demo/values.yaml --tasks examples/demo/tasks.yaml \
        --log-dir "{{cache}}/demo"

# The agent's benchmark (BENCHMARKS.md "The agent"): 1,000 tasks over 10 queues through the real agent, the same
# without policies, a plain kube-rs loop, an idle agent; prints the Markdown report (also in $CLEARML_K8S_AGENT_CACHE)
bench-agent: setup testenv-build agent-bin
    "$CARGO_TARGET_DIR/debug/bench-agent" --out "{{cache}}/bench-agent"

# Build kube-apiserver + etcd from the pinned Go modules into the cache (skipped when present; cold: see tests/testenv/README.md)
testenv-build:
    tests/testenv/build.sh

# Start etcd + kube-apiserver in the background for manual use; prints the KUBECONFIG path (stop with testenv-down)
testenv-up: testenv-build agent-bin
    "$CARGO_TARGET_DIR/debug/kube-testenv" up

# Stop the control plane started by testenv-up (kills exactly the recorded pids)
testenv-down: agent-bin
    "$CARGO_TARGET_DIR/debug/kube-testenv" down
