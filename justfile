# clearml-k8s-agent: every build, test and demo entry point. `just` lists the recipes.
# Caches live outside the clone (CI runs in a fresh clone): cargo target dirs, the Go-built control plane, the
# Python venv and the npm tools all go under ~/.cache/clearml-k8s-agent.

set shell := ["bash", "-euo", "pipefail", "-c"]

cache := env_var_or_default("CLEARML_K8S_AGENT_CACHE", env_var("HOME") / ".cache/clearml-k8s-agent")
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

# Run all tests: lint, build components and the control plane, Rust tests, policy golden cases, conformance
test: lint wasm
    cargo test --workspace
    just policy-cases

# Run every policy's golden cases through the harness
policy-cases:
    scripts/policy-cases.sh

# Benchmarks: policy evaluation figures (recorded in BENCHMARKS.md)
bench: wasm
    cargo bench -p policy-runtime --profile dev --bench evaluation

# Demo: until the agent lands, run the sample policy through the harness on a realistic pod
demo: wasm
    cargo run -q -p clearml-k8s-agent -- policy run "$POLICY_DIR/sample-labels-resources.wasm" --task examples/rust-policy-template/cases/gpu-task/task.yaml --pod examples/rust-policy-template/cases/gpu-task/pod.yaml --config examples/rust-policy-template/cases/gpu-task/config.yaml
