//! ClearML REST API: typed wire structs and an async client for the calls the agent makes.
//!
//! # Start here
//! - [`Client`] (built from a [`ClientConfig`]) has one method per endpoint (`queues_get_next_task`,
//!   `tasks_enqueue`, `workers_status_report`, ...) plus [`Client::call`] for anything else. It logs in with the
//!   access/secret key (`auth.login`, Basic auth), keeps the token, refreshes it when fewer than 12 h remain, logs
//!   in again once when a call gets a 401, and retries transient failures (connect, timeout, 5xx) with jittered
//!   exponential backoff. Logical errors (4xx) are returned at once.
//! - [`Error`] names the endpoint of every failure; [`Error::is`] with a constant from [`codes`] tests for a
//!   particular server result (e.g. `codes::INVALID_QUEUE_ID`).
//! - `types/` has the request and response types, by service (tasks, queues, workers, events); `token.rs` the
//!   token claims and refresh rule.
//!
//! Calls go to versioned paths (`/v2.23/tasks.get_by_id`) like the SDK's; the few requests that need newer fields
//! (`update_execution_queue`, `new_status`) use the version that introduced them. Requests are POSTs with a JSON
//! body: the server accepts any method, and unlike the SDK's GET-with-body they survive proxies.
//!
//! The wire protocol is described in `shared/reference/clearml-api.md`; tests run against the in-memory server in
//! the `clearml-emulator` crate.

#![warn(missing_docs)]

mod client;
pub mod error;
pub mod token;
pub mod types;

pub use client::{Client, ClientConfig, RetryPolicy};
pub use error::{Error, Result, codes};
pub use token::TokenClaims;
pub use types::*;
