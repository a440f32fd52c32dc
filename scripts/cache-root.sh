#!/usr/bin/env bash
# Print the cache root: $CLEARML_K8S_AGENT_CACHE, else $HOME/.cache/clearml-k8s-agent. The one shell source of the
# rule (the justfile and every script ask it; host/cache-paths is the Rust side, and its tests check they agree).
# Source it to get $cache without printing: `source scripts/cache-root.sh --export`.
cache="${CLEARML_K8S_AGENT_CACHE:-$HOME/.cache/clearml-k8s-agent}"
if [[ "${1:-}" != "--export" ]]; then
    printf '%s\n' "$cache"
fi
