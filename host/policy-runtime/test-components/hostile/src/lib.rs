//! A policy that misbehaves on demand, for the host's failure-handling tests. The config picks the behaviour:
//! `{"mode": "loop" | "alloc" | "panic" | "bad-json" | "configmap" | "unknown-field" | "reject" | "internal" |
//! "log-spam" | "print" | "probe" | "remember" | "ok"}`; `validate-config` refuses `{"mode": "invalid"}`.

wit_bindgen::generate!({ path: "../../../../wit/0.1.0", world: "queue-policy" });

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use clearml::queue_policy::host::log;
use clearml::queue_policy::types::{LogLevel, PolicyError, Task};
use exports::clearml::queue_policy::policy::Guest;

struct Hostile;

fn mode(config: &str) -> String {
    serde_json::from_str::<serde_json::Value>(config)
        .ok()
        .and_then(|v| v.get("mode").and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_else(|| "ok".to_string())
}

impl Guest for Hostile {
    fn validate_config(config: String) -> Result<(), PolicyError> {
        match mode(&config).as_str() {
            "invalid" => Err(PolicyError::InvalidConfig(
                "`mode`: `invalid` is not a mode".to_string(),
            )),
            _ => Ok(()),
        }
    }

    fn transform(pod: String, task: Task, config: String) -> Result<String, PolicyError> {
        match mode(&config).as_str() {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                // Reserve without writing: each MiB grows linear memory, so the cap stops this within
                // microseconds, however loaded the machine (filling the pages took ~100 ms under load, and the
                // deadline could fire first).
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(Vec::with_capacity(1024 * 1024));
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("boom: the hostile policy panicked on task {}", task.id),
            "bad-json" => Ok("this is {not json".to_string()),
            "configmap" => {
                Ok(r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#.to_string())
            }
            "unknown-field" => {
                let mut v: serde_json::Value =
                    serde_json::from_str(&pod).map_err(|e| PolicyError::Internal(e.to_string()))?;
                v["spec"]["containers"][0]["resourcez"] = serde_json::json!({"limits": {}});
                Ok(v.to_string())
            }
            "reject" => Err(PolicyError::Reject(format!(
                "task {} asked for too much",
                task.id
            ))),
            "internal" => Err(PolicyError::Internal("something broke inside".to_string())),
            "log-spam" => {
                for i in 0..1000 {
                    log(LogLevel::Info, &format!("line {i}"));
                }
                Ok(pod)
            }
            "print" => {
                println!("hello from stdout");
                eprintln!("hello from stderr");
                log(LogLevel::Warn, "hello from log");
                Ok(pod)
            }
            "probe" => {
                // Report what the sandbox lets a policy see: the host promises nothing at all.
                let env = std::env::vars().count();
                let args = std::env::args().count();
                let file = match std::fs::read("/etc/hostname") {
                    Ok(_) => "readable",
                    Err(_) => "denied",
                };
                let dir = match std::fs::read_dir(".") {
                    Ok(_) => "listable",
                    Err(_) => "denied",
                };
                let net = match std::net::TcpStream::connect("127.0.0.1:80") {
                    Ok(_) => "connected",
                    Err(_) => "denied",
                };
                let mut v: serde_json::Value =
                    serde_json::from_str(&pod).map_err(|e| PolicyError::Internal(e.to_string()))?;
                v["metadata"]["annotations"] = serde_json::json!({
                    "probe": format!("env={env} args={args} file={file} dir={dir} net={net}")
                });
                Ok(v.to_string())
            }
            "remember" => {
                // State a reused instance would carry over: a counter in the data segment and strings on the heap.
                // A fresh instance per evaluation always reports `calls=1 held=1`.
                static CALLS: AtomicU32 = AtomicU32::new(0);
                static HELD: Mutex<Vec<String>> = Mutex::new(Vec::new());
                let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
                let held = HELD.lock().map_or(0, |mut held| {
                    held.push(task.id.repeat(64));
                    held.len()
                });
                let mut v: serde_json::Value =
                    serde_json::from_str(&pod).map_err(|e| PolicyError::Internal(e.to_string()))?;
                v["metadata"]["annotations"] =
                    serde_json::json!({ "remember": format!("calls={calls} held={held}") });
                Ok(v.to_string())
            }
            _ => Ok(pod),
        }
    }
}

export!(Hostile);
