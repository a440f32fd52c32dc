//! Where the binary keeps its caches: the one place that reads `CLEARML_K8S_AGENT_CACHE`.

use std::path::PathBuf;

/// The cache root: `$CLEARML_K8S_AGENT_CACHE`, else `~/.cache/clearml-k8s-agent`.
pub fn root() -> Option<PathBuf> {
    std::env::var_os("CLEARML_K8S_AGENT_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/clearml-k8s-agent"))
        })
}

/// Precompiled policies.
pub fn precompiled_dir() -> Option<PathBuf> {
    root().map(|r| r.join("precompiled"))
}
