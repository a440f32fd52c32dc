//! End-to-end tests of `run`: the real kube-apiserver + etcd (tests/kube-testenv), the kubelet simulator, the
//! ClearML emulator, and the agent in-process on values files from the ClearML Enterprise page.
//!
//! Outside CI a missing control plane skips these tests with a printed reason; under `CI=true` they fail.

// Test helpers may unwrap: a panic is the test failure we want (clippy only exempts #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dispatching;
mod failures;
mod ha;
mod harness;
mod lifecycle;
mod outages;
mod page_examples;
mod recovery;
mod watchdog;
