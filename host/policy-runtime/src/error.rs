//! Typed errors. Every error names the policy; evaluation errors also carry the queue and task they happened for,
//! so a log line or a task's `status_message` says exactly what failed where.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Loading a component failed: nothing was admitted, the previous policy set (if any) stays in force.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The component's sha256 is not the one it was pinned to.
    #[error("policy `{policy}`: sha256 mismatch: pinned {expected}, component is {actual}")]
    DigestMismatch {
        /// The policy, by name.
        policy: String,
        /// The pinned digest.
        expected: String,
        /// The component's digest.
        actual: String,
    },
    /// The pinned digest is not a sha256 in hex.
    #[error("policy `{policy}`: pinned sha256 `{value}` is not 64 hex characters")]
    BadDigest {
        /// The policy, by name.
        policy: String,
        /// What was given.
        value: String,
    },
    /// The bytes are not a WebAssembly component (a core module, garbage, a truncated file).
    #[error("policy `{policy}`: not a WebAssembly component: {reason}")]
    NotAComponent {
        /// The policy, by name.
        policy: String,
        /// Why, as wasmtime or the parser says it.
        reason: String,
    },
    /// The component imports something outside the allow-list.
    #[error(
        "policy `{policy}`: imports `{import}`, which this host does not provide \
         (a policy may import only WASI 0.2 interfaces and `clearml:queue-policy/host`)"
    )]
    ForbiddenImport {
        /// The policy, by name.
        policy: String,
        /// The refused import.
        import: String,
    },
    /// The component does not implement the queue-policy world at all.
    #[error(
        "policy `{policy}`: does not export `clearml:queue-policy/policy` (it exports: {exports}); \
         build it for the `queue-policy` world in wit/"
    )]
    MissingExport {
        /// The policy, by name.
        policy: String,
        /// What the component exports instead.
        exports: String,
    },
    /// The component implements another, incompatible version of the world.
    #[error(
        "policy `{policy}`: built against clearml:queue-policy@{found}, this host serves @{supported}; \
         rebuild it against wit/{supported}"
    )]
    IncompatibleVersion {
        /// The policy, by name.
        policy: String,
        /// The version the component was built against.
        found: String,
        /// The version this host serves.
        supported: String,
    },
    /// Cranelift could not compile the component.
    #[error("policy `{policy}`: compiling failed: {reason}")]
    Compile {
        /// The policy, by name.
        policy: String,
        /// Why, as wasmtime or the parser says it.
        reason: String,
    },
    /// The component's imports or exports do not type-check against this host's world.
    #[error("policy `{policy}`: cannot be linked against this host: {reason}")]
    Link {
        /// The policy, by name.
        policy: String,
        /// Why, as wasmtime or the parser says it.
        reason: String,
    },
    /// Reading the component file failed.
    #[error("policy `{policy}`: cannot read {}: {source}", path.display())]
    Read {
        /// The policy, by name.
        policy: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `validate-config` refused the configuration (or failed) when the policy was bound to a queue.
    #[error(transparent)]
    Config(#[from] EvalError),
}

impl LoadError {
    /// A short stable label for metrics (`reason="..."`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::DigestMismatch { .. } | Self::BadDigest { .. } => "digest",
            Self::NotAComponent { .. } => "not_a_component",
            Self::ForbiddenImport { .. } => "forbidden_import",
            Self::MissingExport { .. } | Self::IncompatibleVersion { .. } => "world",
            Self::Compile { .. } => "compile",
            Self::Link { .. } => "link",
            Self::Read { .. } => "read",
            Self::Config(_) => "config",
        }
    }
}

/// One evaluation of a policy failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    /// Name the policy is known by (plugin name or file name).
    pub policy: String,
    /// Queue the evaluation ran for, when there was one (not for `validate-config` at load time).
    pub queue: Option<String>,
    /// Task the evaluation ran for.
    pub task_id: Option<String>,
    /// What went wrong.
    pub kind: EvalErrorKind,
}

impl std::error::Error for EvalError {}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "policy `{}`", self.policy)?;
        match (&self.queue, &self.task_id) {
            (Some(q), Some(t)) => write!(f, " (queue `{q}`, task {t})")?,
            (Some(q), None) => write!(f, " (queue `{q}`)")?,
            (None, Some(t)) => write!(f, " (task {t})")?,
            (None, None) => {}
        }
        write!(f, ": {}", self.kind)
    }
}

/// The ways an evaluation fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalErrorKind {
    /// The policy refused the task (`policy-error::reject`); the message is meant for the ML user.
    #[error("rejected the task: {0}")]
    Rejected(String),
    /// The policy refused its configuration (`policy-error::invalid-config`).
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// The policy reported an internal failure (`policy-error::internal`).
    #[error("internal error: {0}")]
    Internal(String),
    /// The evaluation ran past its deadline and was interrupted.
    #[error("timed out: still running after {} ms (limit {} ms)", elapsed.as_millis(), limit.as_millis())]
    Timeout {
        /// The configured timeout.
        limit: Duration,
        /// How long it ran.
        elapsed: Duration,
    },
    /// The policy tried to grow its memory past the cap.
    #[error("exceeded its memory limit of {} MiB", limit_bytes / (1024 * 1024))]
    MemoryLimit {
        /// The configured cap.
        limit_bytes: usize,
    },
    /// The policy trapped (a panic, `unreachable`, an out-of-bounds access, ...).
    #[error("trapped: {0}")]
    Trap(String),
    /// The policy returned something that is not JSON.
    #[error("returned invalid JSON: {0}")]
    BadOutput(String),
    /// The policy returned JSON that is not a valid `v1/Pod`.
    #[error("returned an invalid Pod: {0}")]
    InvalidPod(String),
    /// The host's own input could not be encoded (e.g. a config that is not JSON).
    #[error("bad input: {0}")]
    BadInput(String),
}

impl EvalErrorKind {
    /// A short stable label for metrics (`reason="..."`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Rejected(_) => "rejected",
            Self::InvalidConfig(_) => "invalid_config",
            Self::Internal(_) => "internal",
            Self::Timeout { .. } => "timeout",
            Self::MemoryLimit { .. } => "memory_limit",
            Self::Trap(_) => "trap",
            Self::BadOutput(_) => "bad_output",
            Self::InvalidPod(_) => "invalid_pod",
            Self::BadInput(_) => "bad_input",
        }
    }

    /// Whether the task itself is at fault (show the message to the user) rather than the policy or its operator.
    pub fn is_rejection(&self) -> bool {
        matches!(self, Self::Rejected(_))
    }
}
