//! Errors of the client. Every variant names the endpoint, so a log line says which call failed.

/// A `(result_code, result_subcode)` pair, as in clearml-server's `errors.conf`.
pub type Code = (u16, u32);

/// The result codes the agent reacts to (reference/clearml-api.md).
pub mod codes {
    use super::Code;
    pub const VALIDATION: Code = (400, 12);
    pub const MISSING_REQUIRED_FIELDS: Code = (400, 11);
    pub const INVALID_TASK_ID: Code = (400, 101);
    pub const INVALID_TASK_STATUS: Code = (400, 110);
    pub const INVALID_QUEUE_ID: Code = (400, 701);
    pub const QUEUE_NOT_EMPTY: Code = (400, 702);
    pub const TASK_NOT_QUEUED: Code = (400, 703);
    pub const TASK_ALREADY_QUEUED: Code = (400, 706);
    pub const NO_DEFAULT_QUEUE: Code = (400, 707);
    pub const NOT_UNIQUE: Code = (400, 801);
    pub const NO_CREDENTIALS: Code = (401, 20);
    pub const INVALID_CREDENTIALS: Code = (401, 22);
    pub const INVALID_TOKEN: Code = (401, 30);
    pub const ENDPOINT_NOT_FOUND: Code = (404, 0);
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with a ClearML error result.
    #[error("{endpoint}: ClearML error {code}/{subcode}: {msg}")]
    Api {
        endpoint: String,
        code: u16,
        subcode: u32,
        msg: String,
    },
    /// No answer: connection refused or reset, timeout, TLS failure.
    #[error("{endpoint}: cannot reach the ClearML API server: {source}")]
    Transport {
        endpoint: String,
        #[source]
        source: reqwest::Error,
    },
    /// An HTTP answer that is not a ClearML envelope (a proxy error page, a wrong URL).
    #[error("{endpoint}: HTTP {status} without a ClearML response envelope: {body}")]
    Http {
        endpoint: String,
        status: u16,
        body: String,
    },
    /// A well-formed result whose `data` does not have the expected shape.
    #[error("{endpoint}: unexpected response data: {source}")]
    Decode {
        endpoint: String,
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

pub type Result<T, E = Error> = std::result::Result<T, E>;
