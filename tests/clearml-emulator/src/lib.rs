//! In-memory emulator of the ClearML REST API, for tests, the demo and local policy development.
//!
//! A test double, not part of the pipeline (clearml-api → pod-template → policy-runtime → agent → cli): it stands in
//! for the ClearML server that `clearml-api` talks to. The binary serves it as `clearml-k8s-agent emulator` for the
//! demo and for trying policies locally; the agent never uses it.
//!
//! No real ClearML server runs on our machines (it needs MongoDB and Elasticsearch), so this crate serves the subset
//! of the API that the agent, the official `clearml` SDK and the `clearml-agent` k8s glue call, with the same
//! envelope, auth flow (Basic → HS256 JWT), result codes, task state machine and queue semantics
//! (`shared/reference/clearml-api.md`). Its fidelity is checked by the SDK itself in `tests/conformance/`.
//!
//! # Start here
//! - [`Emulator::start`] binds a socket and serves in the background; the returned [`EmulatorHandle`] gives the
//!   `base_url` and test hooks (call counts, token revocation, injected failures, store access).
//! - `store/` holds all the rules, free of HTTP (unit-tested directly), one module per service over one shared
//!   [`Store`]; `status.rs` is the state machine;
//!   `endpoints.rs` maps endpoint names to store methods; `server.rs` is the axum layer; `wire.rs` the path,
//!   body and envelope format;
//!   `auth.rs` the credentials and tokens.
//!
//! ```no_run
//! # async fn demo() -> Result<(), clearml_emulator::Error> {
//! let emulator = clearml_emulator::Emulator::start(Default::default()).await?;
//! println!("ClearML API at {}", emulator.base_url());
//! emulator.shutdown().await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod auth;
pub mod endpoints;
pub mod error;
pub mod model;
pub mod requests;
mod server;
pub mod status;
pub mod store;
pub mod time;
mod wire;

pub use error::{ApiError, Error};
pub use server::{
    DEFAULT_ACCESS_KEY, DEFAULT_NON_RESPONSIVE_TASK_TIMEOUT_SECS, DEFAULT_SECRET_KEY,
    ENTERPRISE_SERVER_VERSION, Emulator, EmulatorConfig, EmulatorHandle,
    OPEN_SOURCE_SERVER_VERSION,
};
pub use status::TaskStatus;
pub use store::{HIDDEN_QUEUE_TAG, Identity, Store};
pub use time::Ts;
