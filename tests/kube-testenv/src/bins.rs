//! Where the kube-apiserver and etcd binaries are: `KUBE_TESTENV_BIN_DIR`, else the build cache that
//! `tests/testenv/build.sh` fills (below the cache root of `cache-paths`), keyed by the versions pinned in
//! `tests/testenv/versions.env`. The caller passes the environment lookup ([`cache_paths::process_env`] from a
//! binary or a test), so the rule is tested without touching the process environment.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The pinned versions, compiled in so the crate looks in the same cache directory the build script writes.
const VERSIONS_ENV: &str = include_str!("../../../tests/testenv/versions.env");

/// Environment variable that points at a directory holding `kube-apiserver` and `etcd`.
pub const BIN_DIR_ENV: &str = "KUBE_TESTENV_BIN_DIR";

/// Errors locating the control-plane binaries.
#[derive(Debug, thiserror::Error)]
pub enum BinError {
    /// A binary is missing; the message says which directory was searched and how to fill it.
    #[error(
        "{binary} not found in {dir} (from {source_of_dir}); build it with `just testenv-build` \
         (tests/testenv/build.sh; a cold build takes about 10 minutes on 2 cores)"
    )]
    Missing {
        /// `kube-apiserver` or `etcd`.
        binary: &'static str,
        /// The directory that was searched.
        dir: PathBuf,
        /// Where that directory came from (env var or cache default).
        source_of_dir: String,
    },
    /// Neither `KUBE_TESTENV_BIN_DIR` nor a cache root (`CLEARML_K8S_AGENT_CACHE`, `HOME`) is set.
    #[error("neither {BIN_DIR_ENV}, {} nor HOME is set", cache_paths::CACHE_ENV)]
    NoHome,
}

/// Paths of the two binaries.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// kube-apiserver.
    pub apiserver: PathBuf,
    /// etcd.
    pub etcd: PathBuf,
}

/// A pinned version from `versions.env` (`KEY=value` lines).
pub fn pinned(key: &str) -> Option<&'static str> {
    VERSIONS_ENV.lines().find_map(|line| {
        let (k, v) = line.trim().split_once('=')?;
        (k == key).then_some(v.trim())
    })
}

/// The cache directory the build script writes for the pinned versions.
pub fn cache_bin_dir(cache_root: &Path) -> PathBuf {
    let kube = pinned("KUBE_VERSION").unwrap_or("unknown");
    let etcd = pinned("ETCD_VERSION").unwrap_or("unknown");
    cache_root
        .join("testenv")
        .join(format!("{kube}-etcd{etcd}"))
        .join("bin")
}

/// Find the binaries: `KUBE_TESTENV_BIN_DIR`, else the versioned directory below the cache root.
pub fn locate(env: impl Fn(&str) -> Option<OsString>) -> Result<Binaries, BinError> {
    let (dir, source_of_dir) = if let Some(dir) = env(BIN_DIR_ENV).filter(|d| !d.is_empty()) {
        (PathBuf::from(dir), format!("${BIN_DIR_ENV}"))
    } else {
        let root = cache_paths::cache_root(&env).ok_or(BinError::NoHome)?;
        (
            cache_bin_dir(&root),
            format!("the cache root {}", root.display()),
        )
    };
    let find = |binary: &'static str| {
        let path = dir.join(binary);
        if path.is_file() {
            Ok(path)
        } else {
            Err(BinError::Missing {
                binary,
                dir: dir.clone(),
                source_of_dir: source_of_dir.clone(),
            })
        }
    };
    Ok(Binaries {
        apiserver: find("kube-apiserver")?,
        etcd: find("etcd")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_pinned() {
        assert!(pinned("KUBE_VERSION").is_some_and(|v| v.starts_with("1.")));
        assert!(pinned("ETCD_VERSION").is_some_and(|v| v.starts_with("3.")));
    }

    #[test]
    fn the_bin_dir_override_wins_over_the_cache() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        let err = locate(env(&[(BIN_DIR_ENV, "/nonexistent/bin"), ("HOME", "/h")])).unwrap_err();
        assert!(
            err.to_string()
                .contains("/nonexistent/bin (from $KUBE_TESTENV_BIN_DIR)"),
            "{err}"
        );
        let err = locate(env(&[("HOME", "/h")])).unwrap_err();
        assert!(
            err.to_string()
                .contains("/h/.cache/clearml-k8s-agent/testenv/"),
            "{err}"
        );
        assert!(matches!(locate(env(&[])), Err(BinError::NoHome)));
    }

    #[test]
    fn cache_dir_is_keyed_by_version() {
        let dir = cache_bin_dir(Path::new("/c"));
        let kube = pinned("KUBE_VERSION").unwrap();
        assert!(dir.starts_with("/c/testenv"));
        assert!(dir.to_string_lossy().contains(kube));
        assert!(dir.ends_with("bin"));
    }
}
