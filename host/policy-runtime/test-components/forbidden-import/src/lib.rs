//! A policy importing wasi:http: refused at load, whatever it exports.

wit_bindgen::generate!({ path: "wit", world: "forbidden", generate_all });

use clearml::queue_policy::types::{PolicyError, Task};

struct Forbidden;

impl exports::clearml::queue_policy::policy::Guest for Forbidden {
    fn validate_config(_config: String) -> Result<(), PolicyError> {
        Ok(())
    }

    fn transform(pod: String, _task: Task, _config: String) -> Result<String, PolicyError> {
        let _ = wasi::http::outgoing_handler::handle("https://example.invalid/");
        Ok(pod)
    }
}

export!(Forbidden);
