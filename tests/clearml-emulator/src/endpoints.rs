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
    /// `2.23` → `Version(2, 23)`; a bare major (`2`) is `2.0`. `None` when a part is not a number.
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

/// Every endpoint the emulator answers, with the `min_version` of each implementation, as clearml-server's
/// `@endpoint(name, min_version=...)` decorators in `apiserver/services/*.py` declare them (default "1.0"). The
/// server picks the newest implementation at or below the requested version (`service_repo.py` `_get_endpoint`)
/// and reports its `min_version` as `actual_version`; a call below every `min_version` is 404/0.
const ENDPOINTS: &[(&str, &[&str])] = &[
    ("auth.login", &["1.0"]),
    ("debug.ping", &["1.0"]),
    ("server.info", &["1.0", "2.8", "2.12"]),
    ("users.get_current_user", &["1.0"]),
    ("projects.create", &["1.0"]),
    ("projects.get_all", &["1.0"]),
    ("projects.get_by_id", &["1.0"]),
    ("tasks.create", &["1.0"]),
    ("tasks.get_by_id", &["1.0"]),
    ("tasks.get_all", &["1.0"]),
    ("tasks.get_all_ex", &["1.0"]),
    ("tasks.edit", &["1.0"]),
    ("tasks.update", &["1.0"]),
    ("tasks.enqueue", &["1.0"]),
    ("tasks.dequeue", &["1.0"]),
    ("tasks.reset", &["1.0"]),
    ("tasks.started", &["1.0"]),
    ("tasks.stopped", &["1.0"]),
    ("tasks.failed", &["1.0"]),
    ("tasks.completed", &["2.2"]),
    ("tasks.stop", &["1.0"]),
    ("tasks.stop_many", &["1.0"]),
    ("tasks.publish", &["1.0"]),
    ("tasks.close", &["1.0"]),
    ("tasks.ping", &["1.0"]),
    ("tasks.delete", &["1.0"]),
    ("tasks.edit_hyper_params", &["1.0"]),
    ("tasks.add_or_update_artifacts", &["2.10"]),
    ("tasks.delete_artifacts", &["2.10"]),
    ("tasks.add_or_update_model", &["2.13"]),
    ("tasks.edit_configuration", &["1.0"]),
    ("tasks.set_requirements", &["1.0"]),
    ("queues.get_all", &["2.4"]),
    ("queues.get_by_id", &["2.4"]),
    ("queues.create", &["2.4"]),
    ("queues.update", &["2.4"]),
    ("queues.delete", &["2.4"]),
    ("queues.get_default", &["2.4"]),
    ("queues.get_next_task", &["1.0"]),
    ("queues.add_task", &["2.4"]),
    ("queues.remove_task", &["2.4"]),
    ("queues.move_task_to_front", &["2.4"]),
    ("queues.move_task_to_back", &["2.4"]),
    ("queues.move_task_forward", &["2.4"]),
    ("queues.move_task_backward", &["2.4"]),
    ("queues.peek_task", &["2.15"]),
    ("queues.get_num_entries", &["2.15"]),
    ("queues.clear_queue", &["1.0"]),
    ("queues.add_or_update_metadata", &["2.13"]),
    ("queues.get_queue_metrics", &["2.4"]),
    ("workers.register", &["2.4"]),
    ("workers.unregister", &["2.4"]),
    ("workers.status_report", &["2.4"]),
    ("workers.get_all", &["2.4"]),
    ("workers.get_activity_report", &["2.4"]),
    ("events.add", &["1.0"]),
    ("events.add_batch", &["1.0"]),
    ("events.debug_images", &["1.0", "1.8", "2.7"]),
    ("events.get_task_log", &["1.0", "1.7", "2.9"]),
];

/// Enterprise-only endpoints, answered only when the emulator is configured with a non-`basic` feature set.
// The enterprise server is not public; its min_version is assumed to be that of the other workers calls.
const ENTERPRISE_ENDPOINTS: &[(&str, &[&str])] = &[
    ("workers.cluster_report", &["2.4"]),
    ("workers.cluster_unregister", &["2.4"]),
    // clearml-agent's Session reads configuration vaults at start (backend_api/session/session.py); on the
    // open-source server the 404 is expected and ignored.
    ("users.get_vaults", &["1.0"]),
];

/// The `min_version` of the newest implementation of `name` at or below `requested`, if any.
pub fn resolve(name: &str, requested: Version, enterprise: bool) -> Option<Version> {
    let extra: &[(&str, &[&str])] = if enterprise {
        ENTERPRISE_ENDPOINTS
    } else {
        &[]
    };
    ENDPOINTS
        .iter()
        .chain(extra)
        .find(|(n, _)| *n == name)?
        .1
        .iter()
        .filter_map(|v| Version::parse(v))
        .filter(|min| *min <= requested)
        .max()
}

fn decode<T: DeserializeOwned>(data: Value) -> Result<T, ApiError> {
    serde_json::from_value(data).map_err(ApiError::validation)
}

/// Runs one call against the store. `data` is the request body (an object).
pub fn dispatch(
    store: &mut Store,
    name: &str,
    data: Value,
    ctx: &CallContext<'_>,
) -> Result<Value, ApiError> {
    let now = ctx.now;
    match name {
        "debug.ping" => Ok(json!({ "msg": "ClearML server emulator" })),
        "server.info" => Ok(json!({
            "version": ctx.server_version, "build": "emulator", "commit": "", "uid": "emulator",
            "api_version": ctx.api_version,
        })),
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
        "tasks.stop_many" => store.tasks_stop_many(decode(data)?, now),
        "tasks.publish" => store.tasks_publish(decode(data)?, now),
        "tasks.close" => store.tasks_close(decode(data)?, now),
        "tasks.ping" => store.tasks_ping(decode(data)?, now),
        "tasks.delete" => store.tasks_delete(decode(data)?),
        "tasks.edit_hyper_params" => store.tasks_edit_hyper_params(decode(data)?, now),
        "tasks.set_requirements" => store.tasks_set_requirements(decode(data)?, now),
        // Stored nowhere: artifacts, models and configuration edits only need to succeed for the SDK.
        "tasks.add_or_update_artifacts"
        | "tasks.delete_artifacts"
        | "tasks.add_or_update_model"
        | "tasks.edit_configuration" => {
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
        "workers.cluster_report" => store.workers_cluster_report(decode(data)?, now),
        "workers.cluster_unregister" => store.workers_cluster_unregister(decode(data)?),
        // No configuration vaults: the agent keeps its own configuration.
        "users.get_vaults" => Ok(json!({ "vaults": [], "total": 0 })),
        "events.add" => {
            let added = store.events_add(vec![data], ctx.worker, now)?;
            Ok(
                json!({ "added": added["added"], "errors": added["errors"], "errors_info": added["errors_info"] }),
            )
        }
        "events.add_batch" => store.events_add(batch_items(data), ctx.worker, now),
        "events.debug_images" => Ok(json!({ "metrics": [] })),
        "events.get_task_log" => store.events_get_task_log(decode(data)?),
        other => Err(ApiError::new(
            500,
            0,
            format!("endpoint {other} is listed but not dispatched"),
        )),
    }
}

/// `call.batched_data`: the JSON-lines items, or a JSON array body.
fn batch_items(data: Value) -> Vec<Value> {
    match data {
        Value::Array(items) => items,
        Value::Object(mut m) => match m.remove("items") {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// What a call knows besides its body: the clock, the caller's worker id (`X-ClearML-Worker`, stamped on events
/// that carry none), and the versions the server reports.
#[derive(Debug, Clone, Copy)]
pub struct CallContext<'a> {
    /// The store's clock for this call.
    pub now: Ts,
    /// The `X-ClearML-Worker` header (or `X-Trains-Worker`), empty when absent.
    pub worker: &'a str,
    /// What `server.info` reports as the server version.
    pub server_version: &'a str,
    /// The newest API version served, what `server.info` and the tokens report.
    pub api_version: &'a str,
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

    // services/tasks.py and services/queues.py declare these without a min_version (1.0), unlike their
    // neighbours: a client at an old version still reaches them.
    #[test]
    fn services_py_default_min_version_is_1_0() {
        for name in [
            "tasks.enqueue",
            "tasks.started",
            "tasks.create",
            "tasks.edit_hyper_params",
            "tasks.stop_many",
            "queues.get_next_task",
            "queues.clear_queue",
        ] {
            assert_eq!(
                resolve(name, Version(2, 0), false),
                Some(Version(1, 0)),
                "{name}"
            );
        }
        assert_eq!(
            resolve("queues.get_num_entries", Version(2, 15), false),
            Some(Version(2, 15))
        );
    }

    // services/events.py has three implementations of get_task_log; the newest at or below the request answers.
    #[test]
    fn events_py_get_task_log_versions() {
        let at = |v| resolve("events.get_task_log", v, false);
        assert_eq!(at(Version(1, 5)), Some(Version(1, 0)));
        assert_eq!(at(Version(2, 8)), Some(Version(1, 7)));
        assert_eq!(at(Version(2, 31)), Some(Version(2, 9)));
    }

    #[test]
    fn resolution_honours_min_version_and_feature_set() {
        let v223 = Version(2, 23);
        assert_eq!(resolve("tasks.get_by_id", v223, false), Some(Version(1, 0)));
        assert_eq!(resolve("queues.get_all", Version(2, 3), false), None);
        assert_eq!(
            resolve("tasks.completed", Version(2, 1), false),
            None,
            "services/tasks.py: completed has min_version 2.2"
        );
        assert_eq!(resolve("tasks.nope", v223, false), None);
        assert_eq!(
            resolve("workers.cluster_report", Version(2, 31), false),
            None
        );
        assert!(resolve("workers.cluster_report", Version(2, 31), true).is_some());
        assert_eq!(resolve("users.get_vaults", Version(2, 31), false), None);
        assert!(resolve("users.get_vaults", Version(2, 31), true).is_some());
    }
}
