//! A policy built against clearml:queue-policy@0.0.1: the host must refuse it with a version message.

wit_bindgen::generate!({ path: "wit", world: "queue-policy" });

struct Old;

impl exports::clearml::queue_policy::policy::Guest for Old {
    fn transform(pod: String) -> String {
        pod
    }
}

export!(Old);
