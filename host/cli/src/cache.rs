//! Where the binary keeps its caches: the rule is `cache-paths`' (shared with the scripts and the test doubles);
//! this module is where the binary hands it the process environment.

use std::path::PathBuf;

/// The cache root: `$CLEARML_K8S_AGENT_CACHE`, else `~/.cache/clearml-k8s-agent`.
pub fn root() -> Option<PathBuf> {
    cache_paths::cache_root(cache_paths::process_env)
}

/// Precompiled policies.
pub fn precompiled_dir() -> Option<PathBuf> {
    root().map(|r| cache_paths::precompiled_dir(&r))
}
