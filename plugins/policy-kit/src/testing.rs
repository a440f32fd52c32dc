//! Native golden-case runner: the same `cases/<name>/` folders the host's `policy test` harness runs against the
//! built component, run here against the plugin's Rust logic so `cargo test` catches a regression without a wasm
//! build. `BLESS=1 cargo test` writes `expected.yaml` for cases that have no `expected-error.txt` (check the diff by
//! eye before committing it).

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{Policy, PolicyError, Task, VecLogger};

/// Read a YAML file as JSON.
fn read_yaml(path: &Path) -> Result<Value, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Build a [`Task`] from `task.yaml` (kebab-case or snake_case keys; `properties` is a map).
pub fn task_from_yaml(value: &Value) -> Result<Task, String> {
    let object = value.as_object().ok_or("task.yaml must be a map")?;
    let mut task = Task::default();
    for (key, v) in object {
        let text = || scalar(v).ok_or(format!("task.{key} must be a scalar"));
        match key.replace('_', "-").as_str() {
            "id" => task.id = text()?,
            "name" => task.name = text()?,
            "project" => task.project = scalar(v),
            "user" => task.user = scalar(v),
            "queue-id" => task.queue_id = text()?,
            "queue-name" => task.queue_name = text()?,
            "image" => task.image = scalar(v),
            "tags" => {
                let items = v.as_array().ok_or("task.tags must be a list")?;
                task.tags = items
                    .iter()
                    .map(|t| scalar(t).ok_or("task.tags items must be strings"))
                    .collect::<Result<_, _>>()?;
            }
            "properties" => {
                let map = v.as_object().ok_or("task.properties must be a map")?;
                for (k, v) in map {
                    task.properties.push((
                        k.clone(),
                        scalar(v).ok_or(format!("task.properties.{k} must be a scalar"))?,
                    ));
                }
            }
            other => return Err(format!("task.yaml: unknown key `{other}`")),
        }
    }
    Ok(task)
}

/// Run one case; `Ok` when it matched (or was blessed).
fn run_case<P: Policy>(dir: &Path, bless: bool) -> Result<(), String> {
    let task = task_from_yaml(&read_yaml(&dir.join("task.yaml"))?)?;
    let pod = read_yaml(&dir.join("pod.yaml"))?;
    let config = read_yaml(&dir.join("config.yaml"))?;
    let config_json = config.to_string();
    let pod_json = pod.to_string();
    let run = || -> Result<Value, PolicyError> {
        // validate-config first, as the host does at load time.
        crate::parse_config_str::<P>(&config_json)?;
        let out =
            crate::transform_str::<P>(&pod_json, &task, &config_json, &mut VecLogger::default())?;
        serde_json::from_str(&out).map_err(|e| PolicyError::Internal(e.to_string()))
    };
    let first = run();
    if first != run() {
        return Err("not deterministic: two runs gave different results".to_owned());
    }
    let error_file = dir.join("expected-error.txt");
    if error_file.exists() {
        let want = fs::read_to_string(&error_file).map_err(|e| e.to_string())?;
        let want = want.trim();
        return match first {
            Err(err) if err.to_string().contains(want) => Ok(()),
            Err(err) => Err(format!("error `{err}` does not contain `{want}`")),
            Ok(_) => Err(format!("expected an error containing `{want}`, got a pod")),
        };
    }
    let got = first.map_err(|e| format!("unexpected error: {e}"))?;
    let expected_file = dir.join("expected.yaml");
    if bless {
        let text = serde_yaml::to_string(&got).map_err(|e| e.to_string())?;
        return fs::write(&expected_file, text).map_err(|e| e.to_string());
    }
    let want = read_yaml(&expected_file)?;
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "output differs from expected.yaml\n--- got ---\n{}",
            serde_yaml::to_string(&got).unwrap_or_default()
        ))
    }
}

/// Run every case under `cases_dir` against `P`; panics listing the failures. A plugin without cases fails.
pub fn run_cases<P: Policy>(cases_dir: &Path) {
    let bless = std::env::var_os("BLESS").is_some_and(|v| v == "1");
    let mut dirs: Vec<PathBuf> = fs::read_dir(cases_dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (every plugin needs golden cases)",
                cases_dir.display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        !dirs.is_empty(),
        "{}: no cases (every plugin needs golden cases)",
        cases_dir.display()
    );
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|dir| {
            run_case::<P>(dir, bless)
                .err()
                .map(|e| format!("{}: {e}", dir.display()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n\n")
    );
}
