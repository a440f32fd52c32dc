//! Where the binaries the driver runs are: beside the driver's own binary (one `cargo test --workspace --no-run`
//! builds them all into the same target directory), unless an env var names another file.

use std::path::PathBuf;

/// A binary the driver needs is not there.
#[derive(Debug, thiserror::Error)]
pub enum BinError {
    /// Not found where looked.
    #[error(
        "{name} not found at {path} (build it with `just agent-bin`, or set {env} to its path)"
    )]
    Missing {
        /// Binary name.
        name: &'static str,
        /// Where it was looked for.
        path: PathBuf,
        /// The env var that overrides the location.
        env: &'static str,
    },
    /// The driver cannot tell where its own binary is.
    #[error("cannot locate the driver's own binary: {0}")]
    CurrentExe(#[source] std::io::Error),
}

/// The real agent binary (`CLEARML_K8S_AGENT_BIN` overrides).
pub fn agent() -> Result<PathBuf, BinError> {
    locate("clearml-k8s-agent", "CLEARML_K8S_AGENT_BIN")
}

/// The kubelet simulator binary (`KUBELET_SIM_BIN` overrides).
pub fn kubelet_sim() -> Result<PathBuf, BinError> {
    locate("kubelet-sim", "KUBELET_SIM_BIN")
}

// The driver's edge: where the binaries are may be overridden from the environment.
#[allow(clippy::disallowed_methods)]
fn locate(name: &'static str, env: &'static str) -> Result<PathBuf, BinError> {
    let path = match std::env::var_os(env) {
        Some(p) => PathBuf::from(p),
        None => {
            let exe = std::env::current_exe().map_err(BinError::CurrentExe)?;
            exe.with_file_name(name)
        }
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(BinError::Missing { name, path, env })
    }
}
