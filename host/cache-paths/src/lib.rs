//! # cache-paths: the one rule for where caches live
//!
//! Ships (the `clearml-k8s-agent` binary uses it) and serves the test doubles and tests alike; it has no place in
//! the pipeline itself (clearml-api → pod-template → policy-runtime → agent → cli) beyond telling binaries where
//! their caches are. Caches live outside the clone, so a fresh clone (CI) reuses them:
//! `$CLEARML_K8S_AGENT_CACHE`, else `$HOME/.cache/clearml-k8s-agent`. The shell side (justfile, `scripts/`,
//! `tests/testenv/build.sh`) gets the same answer from `scripts/cache-root.sh`; a test here proves the two agree.
//!
//! Libraries take their directories from their caller; only binaries (and test mains) read the environment, by
//! passing [`process_env`] as the lookup. Every function here takes the lookup, so tests pass a map instead of
//! changing the process environment.

#![warn(missing_docs, clippy::disallowed_methods)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Overrides the cache root.
pub const CACHE_ENV: &str = "CLEARML_K8S_AGENT_CACHE";
/// Overrides where built policy components (`<name>.wasm`) are collected.
pub const POLICY_DIR_ENV: &str = "POLICY_DIR";
/// The cache root below `$HOME` when [`CACHE_ENV`] is unset.
pub const HOME_RELATIVE_ROOT: &str = ".cache/clearml-k8s-agent";

/// The process environment, for binaries and test mains to pass as the lookup: the config edge.
#[allow(clippy::disallowed_methods)]
pub fn process_env(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// The directory of the package whose compile-time `CARGO_MANIFEST_DIR` is `compiled`, as it is now: cargo gives a
/// test it runs its package's directory in `CARGO_MANIFEST_DIR`, and that is the checkout under test even when the
/// binary was built from another one. Clones share one target directory (CI's fresh clone reuses it) and cargo does
/// not rebuild a crate because its checkout moved, so `env!("CARGO_MANIFEST_DIR")` alone can name a clone that
/// is gone, or worse another commit's files. `compiled` is the fallback, for binaries run without cargo.
pub fn package_dir(env: impl Fn(&str) -> Option<OsString>, compiled: &str) -> PathBuf {
    env("CARGO_MANIFEST_DIR")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(compiled), PathBuf::from)
}

/// The cache root: `$CLEARML_K8S_AGENT_CACHE`, else `$HOME/.cache/clearml-k8s-agent`; `None` when neither is set.
/// Empty values count as unset, as the shell's `${VAR:-default}` does.
pub fn cache_root(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    set(CACHE_ENV)
        .map(PathBuf::from)
        .or_else(|| set("HOME").map(|home| Path::new(&home).join(HOME_RELATIVE_ROOT)))
}

/// Where built policy components are: `$POLICY_DIR`, else `<cache root>/policies` (what `just wasm` fills).
pub fn policy_dir(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    match env(POLICY_DIR_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir)),
        None => cache_root(env).map(|root| root.join("policies")),
    }
}

/// The precompiled-component cache below a cache root.
pub fn precompiled_dir(root: &Path) -> PathBuf {
    root.join("precompiled")
}

/// A built policy component for tests: `<policy dir>/<name>.wasm`, from the process environment. Panics with
/// what to run when neither `POLICY_DIR` nor `HOME` is set (tests only).
pub fn test_policy(name: &str) -> PathBuf {
    match policy_dir(process_env) {
        Some(dir) => dir.join(format!("{name}.wasm")),
        None => panic!(
            "neither {POLICY_DIR_ENV} nor HOME is set: cannot find {name}.wasm (build it with `just wasm`)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn root_from_the_override_else_home() {
        assert_eq!(
            cache_root(env(&[("HOME", "/h")])),
            Some(PathBuf::from("/h/.cache/clearml-k8s-agent"))
        );
        assert_eq!(
            cache_root(env(&[("HOME", "/h"), (CACHE_ENV, "/c")])),
            Some(PathBuf::from("/c"))
        );
        assert_eq!(
            cache_root(env(&[("HOME", "/h"), (CACHE_ENV, "")])),
            Some(PathBuf::from("/h/.cache/clearml-k8s-agent"))
        );
        assert_eq!(cache_root(env(&[])), None);
        assert_eq!(
            policy_dir(env(&[(CACHE_ENV, "/c")])),
            Some(PathBuf::from("/c/policies"))
        );
        assert_eq!(
            policy_dir(env(&[(CACHE_ENV, "/c"), (POLICY_DIR_ENV, "/p")])),
            Some(PathBuf::from("/p"))
        );
        assert_eq!(
            precompiled_dir(Path::new("/c")),
            PathBuf::from("/c/precompiled")
        );
    }

    #[test]
    fn the_package_dir_is_the_one_cargo_runs_the_test_in() {
        let lookup = |value: &'static str| {
            move |name: &str| (name == "CARGO_MANIFEST_DIR").then(|| value.into())
        };
        assert_eq!(package_dir(lookup("/now"), "/then"), PathBuf::from("/now"));
        assert_eq!(package_dir(lookup(""), "/then"), PathBuf::from("/then"));
        assert_eq!(package_dir(|_| None, "/then"), PathBuf::from("/then"));
    }

    /// The shell scripts and the justfile ask `scripts/cache-root.sh`; it must say what this crate says.
    #[test]
    fn the_shell_rule_agrees() {
        let script = package_dir(process_env, env!("CARGO_MANIFEST_DIR"))
            .join("../../scripts/cache-root.sh");
        for vars in [
            &[("HOME", "/h")][..],
            &[("HOME", "/h"), (CACHE_ENV, "/c")],
            &[("HOME", "/h"), (CACHE_ENV, "")],
        ] {
            let mut cmd = Command::new("bash");
            cmd.arg(&script).env_clear().env("PATH", "/usr/bin:/bin");
            for (k, v) in vars {
                cmd.env(k, v);
            }
            let out = cmd.output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let printed = String::from_utf8(out.stdout).unwrap();
            assert_eq!(
                Some(PathBuf::from(printed.trim_end())),
                cache_root(env(vars)),
                "{vars:?}"
            );
        }
    }
}
