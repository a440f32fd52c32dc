//! Errors: [`ApiError`] is what a call answers (code, subcode, message, as clearml-server's `errors.conf`);
//! [`Error`] is what starting or stopping the emulator itself can fail with.

use std::path::PathBuf;

/// A ClearML API error result. HTTP status = `code`; the texts follow clearml-server's
/// "Default text (extra): k=v" shape so clients and humans see the same strings as with a real server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}/{subcode}: {msg}")]
pub struct ApiError {
    /// HTTP status and `meta.result_code`. Kept ≤ 500 for logical errors: the SDK retries forever above 500.
    pub code: u16,
    /// `meta.result_subcode` (errors.conf numbering).
    pub subcode: u32,
    /// `meta.result_msg`.
    pub msg: String,
}

impl ApiError {
    /// An error with this code, subcode and message.
    pub fn new(code: u16, subcode: u32, msg: impl Into<String>) -> Self {
        ApiError {
            code,
            subcode,
            msg: msg.into(),
        }
    }

    /// 400/0: what the server says before it knows the endpoint (bad path, undecodable JSON).
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(400, 0, msg)
    }

    /// 404/0: no such endpoint, or none at the requested version.
    pub fn endpoint_not_found(name: &str, version: &str) -> Self {
        Self::new(
            404,
            0,
            format!("Unable to find endpoint for name {name} and version {version}"),
        )
    }

    /// 400/11.
    pub fn missing_required_fields(fields: &[&str]) -> Self {
        let list: Vec<String> = fields.iter().map(|f| format!("'{f}'")).collect();
        Self::new(
            400,
            11,
            format!("Missing required fields: missing=[{}]", list.join(", ")),
        )
    }

    /// 400/12: a missing or badly typed field, or an inconsistent request.
    pub fn validation(detail: impl std::fmt::Display) -> Self {
        Self::new(400, 12, format!("Validation error ({detail})"))
    }

    /// 400/101.
    pub fn invalid_task_id(id: &str, company: &str) -> Self {
        Self::new(
            400,
            101,
            format!("Invalid task id: id={id}, company={company}"),
        )
    }

    /// 400/110.
    pub fn invalid_task_status(current: &str, new: &str) -> Self {
        Self::new(
            400,
            110,
            format!(
                "Invalid task status (Invalid status change): current_status={current}, new_status={new}"
            ),
        )
    }

    /// 400/110 from a server before 1.17.0 asked to enqueue a task that is already queued (`utils.py`
    /// `ChangeStatusRequest.validate_transition` with `allow_same_state_transition=False`).
    pub fn already_in_status(status: &str) -> Self {
        Self::new(
            400,
            110,
            format!(
                "Invalid task status (Task already in requested status): current_status={status}, new_status={status}"
            ),
        )
    }

    /// 400/401.
    pub fn invalid_project_id(id: &str) -> Self {
        Self::new(400, 401, format!("Invalid project id: id={id}"))
    }

    /// 400/701.
    pub fn invalid_queue_id(id: &str, company: &str) -> Self {
        Self::new(
            400,
            701,
            format!("Invalid queue id: id={id}, company={company}"),
        )
    }

    /// 400/702.
    pub fn queue_not_empty(id: &str, num_entries: usize) -> Self {
        Self::new(
            400,
            702,
            format!("Queue is not empty: queue={id}, num_entries={num_entries}"),
        )
    }

    /// 400/703.
    pub fn task_not_queued(queue: &str, task: &str) -> Self {
        Self::new(
            400,
            703,
            format!("Invalid queue id or task not in queue: queue={queue}, task={task}"),
        )
    }

    /// 400/706.
    pub fn task_already_queued(queue: &str, task: &str) -> Self {
        Self::new(
            400,
            706,
            format!(
                "Failed adding task to queue since task is already queued: task={task}, queue={queue}"
            ),
        )
    }

    /// 400/707.
    pub fn no_default_queue() -> Self {
        Self::new(
            400,
            707,
            "No queue is tagged as the default queue for this company",
        )
    }

    /// 400/708.
    pub fn multiple_default_queues() -> Self {
        Self::new(
            400,
            708,
            "More than one queue is tagged as the default queue for this company",
        )
    }

    /// 400/800.
    pub fn data_validation(detail: impl std::fmt::Display) -> Self {
        Self::new(400, 800, format!("Data validation error ({detail})"))
    }

    /// 400/801.
    pub fn not_unique(detail: impl std::fmt::Display) -> Self {
        Self::new(
            400,
            801,
            format!("Value combination already exists ({detail})"),
        )
    }

    /// 401/20.
    pub fn no_credentials() -> Self {
        Self::new(401, 20, "Unauthorized (missing credentials)")
    }

    /// 401/10.
    pub fn bad_auth_type() -> Self {
        Self::new(401, 10, "Unauthorized (bad authentication header type)")
    }

    /// 401/21.
    pub fn bad_credentials(detail: impl std::fmt::Display) -> Self {
        Self::new(
            401,
            21,
            format!("Unauthorized (malformed credentials) ({detail})"),
        )
    }

    /// 401/22.
    pub fn invalid_credentials() -> Self {
        Self::new(
            401,
            22,
            "Unauthorized (invalid credentials) (failed to locate provided credentials)",
        )
    }

    /// 401/30.
    pub fn invalid_token(detail: impl std::fmt::Display) -> Self {
        Self::new(401, 30, format!("Invalid token ({detail})"))
    }
}

/// Failures of the emulator process itself (not of a call).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be opened (port taken, no permission).
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why the bind failed.
        #[source]
        source: std::io::Error,
    },
    /// The state file to start from exists but could not be read.
    #[error("cannot read state file {path}: {source}")]
    ReadState {
        /// The state file.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// The state file is not JSON of a saved [`crate::Store`].
    #[error("state file {path} is not a saved emulator state: {source}")]
    ParseState {
        /// The state file.
        path: PathBuf,
        /// Where decoding failed.
        #[source]
        source: serde_json::Error,
    },
    /// The state could not be saved at shutdown.
    #[error("cannot write state file {path}: {source}")]
    WriteState {
        /// The state file.
        path: PathBuf,
        /// Why writing failed.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server stopped with an I/O error.
    #[error("server failed: {0}")]
    Serve(#[source] std::io::Error),
}
