//! Where the kube-apiserver and etcd binaries are: `KUBE_TESTENV_BIN_DIR`, else the build cache that
//! `tests/testenv/build.sh` fills, keyed by the versions pinned in `tests/testenv/versions.env`.

use std::path::{Path, PathBuf};

/// The pinned versions, compiled in so the crate looks in the same cache directory the build script writes.
const VERSIONS_ENV: &str = include_str!("../../../tests/testenv/versions.env");

/// Environment variable that points at a directory holding `kube-apiserver` and `etcd`.
pub const BIN_DIR_ENV: &str = "KUBE_TESTENV_BIN_DIR";
/// Environment variable that overrides the cache root (the justfile uses the same one).
pub const CACHE_ENV: &str = "CLEARML_K8S_AGENT_CACHE";

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
    /// Neither `KUBE_TESTENV_BIN_DIR` nor `HOME` is set, so there is nowhere to look.
    #[error("neither {BIN_DIR_ENV} nor HOME is set")]
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

/// Find the binaries: `KUBE_TESTENV_BIN_DIR`, else `$CLEARML_K8S_AGENT_CACHE` or `~/.cache/clearml-k8s-agent`.
pub fn locate() -> Result<Binaries, BinError> {
    let (dir, source_of_dir) = if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        (PathBuf::from(dir), format!("${BIN_DIR_ENV}"))
    } else if let Some(root) = std::env::var_os(CACHE_ENV) {
        (cache_bin_dir(Path::new(&root)), format!("${CACHE_ENV}"))
    } else {
        let home = std::env::var_os("HOME").ok_or(BinError::NoHome)?;
        let root = Path::new(&home).join(".cache/clearml-k8s-agent");
        (cache_bin_dir(&root), "the default cache".to_owned())
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
    fn cache_dir_is_keyed_by_version() {
        let dir = cache_bin_dir(Path::new("/c"));
        let kube = pinned("KUBE_VERSION").unwrap();
        assert!(dir.starts_with("/c/testenv"));
        assert!(dir.to_string_lossy().contains(kube));
        assert!(dir.ends_with("bin"));
    }
}
