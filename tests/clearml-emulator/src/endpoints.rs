//! The endpoint table (name → `min_version`) and the dispatcher that decodes a body into the typed request and
//! runs the store method. `auth.login` is answered by the server module, which owns the token secret.

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::requests as rq;
use crate::store::{Move, Store};
use crate::time::Ts;

/// An API version as the server compares them: `2.4` < `2.23`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32);

impl Version {
    pub fn parse(s: &str) -> Option<Self> {
        let (major, minor) = s.split_once('.').unwrap_or((s, "0"));
        Some(Version(major.parse().ok()?, minor.parse().ok()?))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// Every endpoint the emulator answers, with the `min_version` it reports as `actual_version`. Calls below that
/// version get 404/0, like a real server.
const ENDPOINTS: &[(&str, &str)] = &[
    ("auth.login", "2.1"),
    ("debug.ping", "1.0"),
    ("server.info", "1.0"),
    ("users.get_current_user", "1.0"),
    ("projects.create", "1.0"),
    ("projects.get_all", "1.0"),
    ("projects.get_by_id", "1.0"),
    ("tasks.create", "2.1"),
    ("tasks.get_by_id", "1.0"),
    ("tasks.get_all", "1.0"),
    ("tasks.get_all_ex", "2.4"),
    ("tasks.edit", "1.0"),
    ("tasks.update", "1.0"),
    ("tasks.enqueue", "1.5"),
    ("tasks.dequeue", "1.5"),
    ("tasks.reset", "1.0"),
    ("tasks.started", "2.1"),
    ("tasks.stopped", "2.1"),
    ("tasks.failed", "2.1"),
    ("tasks.completed", "2.2"),
    ("tasks.stop", "1.0"),
    ("tasks.publish", "1.5"),
    ("tasks.close", "1.0"),
    ("tasks.ping", "1.0"),
    ("tasks.delete", "1.0"),
    ("tasks.edit_hyper_params", "2.9"),
    ("tasks.add_or_update_artifacts", "2.10"),
    ("tasks.delete_artifacts", "2.10"),
    ("tasks.add_or_update_model", "2.13"),
    ("tasks.edit_configuration", "2.9"),
    ("tasks.set_requirements", "2.1"),
    ("queues.get_all", "2.4"),
    ("queues.get_by_id", "2.4"),
    ("queues.create", "2.4"),
    ("queues.update", "2.4"),
    ("queues.delete", "2.4"),
    ("queues.get_default", "2.4"),
    ("queues.get_next_task", "1.0"),
    ("queues.add_task", "2.4"),
    ("queues.remove_task", "2.4"),
    ("queues.move_task_to_front", "2.4"),
    ("queues.move_task_to_back", "2.4"),
    ("queues.move_task_forward", "2.4"),
    ("queues.move_task_backward", "2.4"),
    ("queues.peek_task", "2.15"),
    ("queues.get_num_entries", "2.20"),
    ("queues.clear_queue", "2.20"),
    ("queues.add_or_update_metadata", "2.13"),
    ("queues.get_queue_metrics", "2.4"),
    ("workers.register", "2.4"),
    ("workers.unregister", "2.4"),
    ("workers.status_report", "2.4"),
    ("workers.get_all", "2.4"),
    ("workers.get_activity_report", "2.4"),
    ("events.add", "1.0"),
    ("events.add_batch", "1.0"),
    ("events.debug_images", "2.1"),
    ("events.get_task_log", "1.0"),
];

/// Enterprise-only endpoints, answered only when the emulator is configured with a non-`basic` feature set.
// The enterprise schema is not public; its min_version is assumed to be that of the other workers calls.
const ENTERPRISE_ENDPOINTS: &[(&str, &str)] = &[("workers.cluster_report", "2.4")];

/// The `min_version` of the newest implementation of `name` at or below `requested`, if any.
pub fn resolve(name: &str, requested: Version, enterprise: bool) -> Option<Version> {
    let extra: &[(&str, &str)] = if enterprise {
        ENTERPRISE_ENDPOINTS
    } else {
        &[]
    };
    ENDPOINTS
        .iter()
        .chain(extra)
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| Version::parse(v))
        .filter(|min| *min <= requested)
}

fn decode<T: DeserializeOwned>(data: Value) -> Result<T, ApiError> {
    serde_json::from_value(data).map_err(ApiError::validation)
}

/// Runs one call against the store. `data` is the request body (an object).
pub fn dispatch(store: &mut Store, name: &str, data: Value, now: Ts) -> Result<Value, ApiError> {
    match name {
        "debug.ping" => Ok(json!({ "msg": "ClearML server emulator" })),
        "server.info" => {
            Ok(json!({ "version": "2.0.0", "build": "emulator", "commit": "", "uid": "emulator" }))
        }
        "users.get_current_user" => {
            let id = &store.identity;
            Ok(json!({ "user": {
                "id": id.user, "name": id.user_name, "role": id.role,
                "company": { "id": id.company, "name": id.company_name },
            }, "getting_started": {}, "settings": {} }))
        }
        "projects.create" => {
            if data.get("name").is_none() {
                return Err(ApiError::missing_required_fields(&["name"]));
            }
            store.projects_create(decode(data)?, now)
        }
        "projects.get_all" => store.projects_get_all(decode(data)?),
        "projects.get_by_id" => store.projects_get_by_id(decode(data)?),
        "tasks.create" => store.tasks_create(decode(data)?, now),
        "tasks.get_by_id" => store.tasks_get_by_id(decode(data)?),
        "tasks.get_all" | "tasks.get_all_ex" => store.tasks_get_all(decode(data)?),
        "tasks.edit" => store.tasks_edit(decode(data)?, now),
        "tasks.update" => store.tasks_update(decode(data)?, now),
        "tasks.enqueue" => store.tasks_enqueue(decode(data)?, now),
        "tasks.dequeue" => store.tasks_dequeue(decode(data)?, now),
        "tasks.reset" => store.tasks_reset(decode(data)?, now),
        "tasks.started" => store.tasks_started(decode(data)?, now),
        "tasks.stopped" => store.tasks_stopped(decode(data)?, now),
        "tasks.failed" => store.tasks_failed(decode(data)?, now),
        "tasks.completed" => store.tasks_completed(decode(data)?, now),
        "tasks.stop" => store.tasks_stop(decode(data)?, now),
        "tasks.publish" => store.tasks_publish(decode(data)?, now),
        "tasks.close" => store.tasks_close(decode(data)?, now),
        "tasks.ping" => store.tasks_ping(decode(data)?, now),
        "tasks.delete" => store.tasks_delete(decode(data)?),
        "tasks.edit_hyper_params" => store.tasks_edit_hyper_params(decode(data)?, now),
        // Stored nowhere: artifacts, models, requirements and configuration edits only need to succeed for the SDK.
        "tasks.add_or_update_artifacts"
        | "tasks.delete_artifacts"
        | "tasks.add_or_update_model"
        | "tasks.edit_configuration"
        | "tasks.set_requirements" => {
            let _: rq::TaskId = decode(data)?;
            Ok(json!({ "updated": 1 }))
        }
        "queues.get_all" => store.queues_get_all(decode(data)?),
        "queues.get_by_id" => store.queues_get_by_id(decode(data)?),
        "queues.create" => store.queues_create(decode(data)?, now),
        "queues.update" => store.queues_update(decode(data)?, now),
        "queues.delete" => store.queues_delete(decode(data)?, now),
        "queues.get_default" => store.queues_get_default(),
        "queues.get_next_task" => store.queues_get_next_task(decode(data)?, now),
        "queues.add_task" => store.queues_add_task(decode(data)?, now),
        "queues.remove_task" => store.queues_remove_task(decode(data)?, now),
        "queues.move_task_to_front" => store.queues_move(decode(data)?, Move::Front),
        "queues.move_task_to_back" => store.queues_move(decode(data)?, Move::Back),
        "queues.move_task_forward" => store.queues_move(decode(data)?, Move::Forward),
        "queues.move_task_backward" => store.queues_move(decode(data)?, Move::Backward),
        "queues.peek_task" => store.queues_peek_task(decode(data)?),
        "queues.get_num_entries" => store.queues_get_num_entries(decode(data)?),
        "queues.clear_queue" => store.queues_clear(decode(data)?, now),
        "queues.add_or_update_metadata" => store.queues_add_or_update_metadata(decode(data)?, now),
        // Elasticsearch-backed on the server: the emulator keeps no history, so every series is empty.
        "queues.get_queue_metrics" => Ok(json!({ "queues": [] })),
        "workers.register" => store.workers_register(decode(data)?, now),
        "workers.unregister" => store.workers_unregister(decode(data)?),
        "workers.status_report" => store.workers_status_report(decode(data)?, now),
        "workers.get_all" => store.workers_get_all(decode(data)?, now),
        "workers.get_activity_report" => Ok(json!({ "total": [], "active": [] })),
        "workers.cluster_report" => {
            let _: rq::ClusterReport = decode(data)?;
            Ok(json!({}))
        }
        // Events (logs, scalars, plots) are accepted and dropped: nothing the agent decides on depends on them.
        "events.add" => Ok(json!({})),
        "events.add_batch" => {
            Ok(json!({ "added": batch_len(&data), "errors": 0, "errors_info": {} }))
        }
        "events.debug_images" => Ok(json!({ "metrics": [] })),
        "events.get_task_log" => Ok(json!({ "events": [], "returned": 0, "total": 0 })),
        other => Err(ApiError::new(
            500,
            0,
            format!("endpoint {other} is listed but not dispatched"),
        )),
    }
}

fn batch_len(data: &Value) -> usize {
    match data {
        Value::Array(items) => items.len(),
        Value::Object(m) => m.get("items").and_then(Value::as_array).map_or(0, Vec::len),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(Version::parse("2.4").unwrap() < Version::parse("2.23").unwrap());
        assert_eq!(Version::parse("2").unwrap(), Version(2, 0));
        assert!(Version::parse("x.1").is_none());
    }

    #[test]
    fn resolution_honours_min_version_and_feature_set() {
        let v223 = Version(2, 23);
        assert_eq!(resolve("tasks.get_by_id", v223, false), Some(Version(1, 0)));
        assert_eq!(
            resolve("tasks.edit_hyper_params", Version(2, 8), false),
            None
        );
        assert_eq!(resolve("tasks.nope", v223, false), None);
        assert_eq!(
            resolve("workers.cluster_report", Version(2, 31), false),
            None
        );
        assert!(resolve("workers.cluster_report", Version(2, 31), true).is_some());
    }
}
