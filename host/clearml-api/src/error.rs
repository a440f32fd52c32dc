//! Errors of the client. Every variant names the endpoint, so a log line says which call failed.

/// A `(result_code, result_subcode)` pair, as in clearml-server's `errors.conf`.
pub type Code = (u16, u32);

/// The result codes the agent reacts to (reference/clearml-api.md).
pub mod codes {
    use super::Code;
    /// A field is missing or has the wrong type, or values conflict (e.g. both `queue` and `queue_name`).
    pub const VALIDATION: Code = (400, 12);
    /// A required field is missing.
    pub const MISSING_REQUIRED_FIELDS: Code = (400, 11);
    /// No task with this id (in this company).
    pub const INVALID_TASK_ID: Code = (400, 101);
    /// The state machine does not allow this status change (send `force` to bypass it).
    pub const INVALID_TASK_STATUS: Code = (400, 110);
    /// No queue with this id; also what `queues.get_by_id` answers when given a queue *name*.
    pub const INVALID_QUEUE_ID: Code = (400, 701);
    /// `queues.delete` of a queue that still has entries, without `force`.
    pub const QUEUE_NOT_EMPTY: Code = (400, 702);
    /// The task is not in that queue (`queues.remove_task`, `move_task_*`).
    pub const TASK_NOT_QUEUED: Code = (400, 703);
    /// The task is already in that queue (`queues.add_task`, `tasks.enqueue`).
    pub const TASK_ALREADY_QUEUED: Code = (400, 706);
    /// No queue carries the system tag `default`, so an enqueue without a queue has nowhere to go.
    pub const NO_DEFAULT_QUEUE: Code = (400, 707);
    /// A name that must be unique is taken (`queues.create`, `projects.create`).
    pub const NOT_UNIQUE: Code = (400, 801);
    /// The request has no `Authorization` header.
    pub const NO_CREDENTIALS: Code = (401, 20);
    /// Wrong access key or secret.
    pub const INVALID_CREDENTIALS: Code = (401, 22);
    /// The token is malformed, expired or revoked: log in again.
    pub const INVALID_TOKEN: Code = (401, 30);
    /// The server has no such endpoint at the requested version (e.g. an enterprise-only call on an open-source
    /// server).
    pub const ENDPOINT_NOT_FOUND: Code = (404, 0);
}

/// A failed call to the ClearML API; every variant but `Config` names the endpoint.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with a ClearML error result.
    #[error("{endpoint}: ClearML error {code}/{subcode}: {msg}")]
    Api {
        /// The endpoint called (`tasks.enqueue`).
        endpoint: String,
        /// `meta.result_code`, which is also the HTTP status (400, 401, 404, 500, ...).
        code: u16,
        /// `meta.result_subcode`: which error of that class (e.g. 101 for an unknown task id).
        subcode: u32,
        /// `meta.result_msg`, the server's text.
        msg: String,
    },
    /// No answer: connection refused or reset, timeout, TLS failure.
    #[error("{endpoint}: cannot reach the ClearML API server: {source}")]
    Transport {
        /// The endpoint called.
        endpoint: String,
        /// What the HTTP client reported.
        #[source]
        source: reqwest::Error,
    },
    /// An HTTP answer that is not a ClearML envelope (a proxy error page, a wrong URL).
    #[error("{endpoint}: HTTP {status} without a ClearML response envelope: {body}")]
    Http {
        /// The endpoint called.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// The first 200 bytes of the body (invalid UTF-8 replaced), enough to recognise the page.
        body: String,
    },
    /// A well-formed result whose `data` does not have the expected shape (or a request body that would not
    /// serialise).
    #[error("{endpoint}: unexpected response data: {source}")]
    Decode {
        /// The endpoint called.
        endpoint: String,
        /// Where the shape did not match.
        #[source]
        source: serde_json::Error,
    },
    /// The client configuration cannot work (bad URL, TLS setup).
    #[error("ClearML client configuration: {0}")]
    Config(String),
}

impl Error {
    /// The endpoint the failed call was for (`""` for configuration errors).
    pub fn endpoint(&self) -> &str {
        match self {
            Error::Api { endpoint, .. }
            | Error::Transport { endpoint, .. }
            | Error::Http { endpoint, .. }
            | Error::Decode { endpoint, .. } => endpoint,
            Error::Config(_) => "",
        }
    }

    /// `(result_code, result_subcode)` for server error results.
    pub fn code(&self) -> Option<Code> {
        match self {
            Error::Api { code, subcode, .. } => Some((*code, *subcode)),
            _ => None,
        }
    }

    /// Whether this is the given server result (e.g. [`codes::INVALID_QUEUE_ID`]).
    pub fn is(&self, code: Code) -> bool {
        self.code() == Some(code)
    }

    /// Worth retrying: the server was unreachable or failed on its side (5xx). Logical errors (4xx) are not: the
    /// same request would fail the same way.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport { .. } => true,
            Error::Api { code, .. } | Error::Http { status: code, .. } => *code >= 500,
            Error::Decode { .. } | Error::Config(_) => false,
        }
    }

    /// A 401 result: the token is bad, expired or revoked (or the credentials are wrong).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Error::Api { code: 401, .. })
    }

    /// The server does not have this endpoint (404/0), e.g. an enterprise-only call on an open-source server.
    pub fn is_endpoint_missing(&self) -> bool {
        matches!(
            self,
            Error::Api { code: 404, .. } | Error::Http { status: 404, .. }
        )
    }
}

/// The result of a client call.
pub type Result<T, E = Error> = std::result::Result<T, E>;
