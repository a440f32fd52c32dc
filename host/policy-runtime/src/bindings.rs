//! The one place the WIT world is turned into Rust types (`bindgen!`). Everything else uses these re-exports.

wasmtime::component::bindgen!({
    path: "../../wit/0.1.0",
    world: "queue-policy",
});

pub use clearml::queue_policy::types::{LogLevel, PolicyError, Task};
