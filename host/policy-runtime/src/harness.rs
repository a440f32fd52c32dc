//! Golden cases for policies: the engine behind `clearml-k8s-agent policy test` and the `policy-testing` crate.
//!
//! A case is a folder:
//! ```text
//! cases/<name>/task.yaml            the task context (TaskContext: id, name, project, user, queue-name, tags, ...)
//!             /pod.yaml             the input v1/Pod
//!             /config.yaml          the policy's config for the queue (optional: absent means `null`)
//!             /expected.yaml        the output Pod ...
//!             /expected-error.txt   ... or a substring the error must contain
//! ```
//! Every case is checked for: the expected result, a valid Pod (strict), and determinism (evaluated twice, same
//! output). Blessing (`--bless`, `BLESS=1`) rewrites the expectation from what the policy produced.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::chain::run_step;
use crate::engine::{EvalContext, Policy};
use crate::error::EvalError;
use crate::task::TaskContext;

/// Problems reading case folders (as opposed to a case failing).
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid YAML of the right shape.
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    /// A case folder has both or neither kind of expectation is fine (bless creates one), but a missing input is not.
    #[error("{}: missing {file}", dir.display())]
    Missing { dir: PathBuf, file: &'static str },
    /// The cases directory holds no case: every policy must have cases.
    #[error("{}: no cases (each case is a folder with task.yaml and pod.yaml)", dir.display())]
    NoCases { dir: PathBuf },
}

/// What a case expects.
#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
    /// This exact output pod.
    Pod(Value),
    /// An error whose message contains this text.
    Error(String),
    /// Nothing yet: the case fails unless blessed.
    Nothing,
}

/// One golden case, loaded.
#[derive(Debug, Clone)]
pub struct Case {
    /// Folder name.
    pub name: String,
    /// Folder path.
    pub dir: PathBuf,
    /// Task context.
    pub task: TaskContext,
    /// Input pod.
    pub pod: Value,
    /// Policy config as JSON.
    pub config_json: String,
    /// Expectation.
    pub expected: Expected,
}

fn read(path: &Path) -> Result<String, CaseError> {
    std::fs::read_to_string(path).map_err(|source| CaseError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn parse_yaml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, CaseError> {
    serde_yaml::from_str(&read(path)?).map_err(|e| CaseError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

impl Case {
    /// Load one case folder.
    pub fn load(dir: &Path) -> Result<Self, CaseError> {
        let need = |file: &'static str| {
            let path = dir.join(file);
            if path.is_file() {
                Ok(path)
            } else {
                Err(CaseError::Missing {
                    dir: dir.to_path_buf(),
                    file,
                })
            }
        };
        let task: TaskContext = parse_yaml(&need("task.yaml")?)?;
        let pod: Value = parse_yaml(&need("pod.yaml")?)?;
        let config_path = dir.join("config.yaml");
        let config: Value = if config_path.is_file() {
            parse_yaml(&config_path)?
        } else {
            Value::Null
        };
        let expected_pod = dir.join("expected.yaml");
        let expected_error = dir.join("expected-error.txt");
        let expected = if expected_error.is_file() {
            Expected::Error(read(&expected_error)?.trim().to_string())
        } else if expected_pod.is_file() {
            Expected::Pod(parse_yaml(&expected_pod)?)
        } else {
            Expected::Nothing
        };
        Ok(Self {
            name: dir.file_name().map_or_else(
                || dir.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            dir: dir.to_path_buf(),
            task,
            pod,
            config_json: config.to_string(),
            expected,
        })
    }
}

/// Load every case folder under `dir`, sorted by name. No cases is an error.
pub fn load_cases(dir: &Path) -> Result<Vec<Case>, CaseError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CaseError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(CaseError::NoCases {
            dir: dir.to_path_buf(),
        });
    }
    dirs.iter().map(|d| Case::load(d)).collect()
}

/// How a case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Matched its expectation.
    Pass,
    /// Expectation rewritten (bless mode).
    Blessed,
    /// Did not match; the text explains how (with a diff where there is one).
    Fail(String),
}

/// One case's result.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Case name.
    pub name: String,
    /// Verdict.
    pub verdict: Verdict,
    /// Time of the first evaluation.
    pub duration: Duration,
}

/// All results of a run.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// In case order.
    pub results: Vec<CaseResult>,
}

impl Summary {
    /// Cases that passed (or were blessed).
    pub fn passed(&self) -> usize {
        self.results
            .iter()
            .filter(|r| !matches!(r.verdict, Verdict::Fail(_)))
            .count()
    }
    /// Cases that failed.
    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} passed, {} failed", self.passed(), self.failed())
    }
}

/// YAML rendering used for expectations and diffs (stable key order: serde_json maps are sorted).
pub fn to_yaml(value: &Value) -> String {
    serde_yaml::to_string(value).unwrap_or_else(|e| format!("<cannot render YAML: {e}>"))
}

/// A unified diff between two YAML texts.
pub fn yaml_diff(expected_label: &str, expected: &str, actual_label: &str, actual: &str) -> String {
    similar::TextDiff::from_lines(expected, actual)
        .unified_diff()
        .context_radius(3)
        .header(expected_label, actual_label)
        .to_string()
}

fn evaluate(policy: &Policy, case: &Case) -> Result<Value, EvalError> {
    policy.validate_config(
        &case.config_json,
        EvalContext {
            queue: Some(case.task.queue_name.as_str()).filter(|q| !q.is_empty()),
            task_id: None,
        },
    )?;
    run_step(policy, &case.pod, &case.task, &case.config_json, None).map(|(pod, _)| pod)
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn remove_if_present(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("cannot remove {}: {e}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Run one case: evaluate, check determinism, compare (or bless).
pub fn run_case(policy: &Policy, case: &Case, bless: bool) -> CaseResult {
    let started = std::time::Instant::now();
    let first = evaluate(policy, case);
    let duration = started.elapsed();
    let verdict = judge(policy, case, first, bless);
    CaseResult {
        name: case.name.clone(),
        verdict,
        duration,
    }
}

fn judge(policy: &Policy, case: &Case, first: Result<Value, EvalError>, bless: bool) -> Verdict {
    // Determinism: the same inputs must give the same pod (the host may re-evaluate, e.g. after a restart).
    if let Ok(pod) = &first {
        match evaluate(policy, case) {
            Ok(again) if &again == pod => {}
            Ok(again) => {
                return Verdict::Fail(format!(
                    "not deterministic: a second evaluation returned a different pod\n{}",
                    yaml_diff("first", &to_yaml(pod), "second", &to_yaml(&again))
                ));
            }
            Err(e) => {
                return Verdict::Fail(format!(
                    "not deterministic: first evaluation succeeded, second failed: {e}"
                ));
            }
        }
    }
    let expected_pod = case.dir.join("expected.yaml");
    let expected_error = case.dir.join("expected-error.txt");
    let matches = match (&case.expected, &first) {
        (Expected::Pod(want), Ok(got)) => want == got,
        (Expected::Error(want), Err(got)) => got.to_string().contains(want.as_str()),
        _ => false,
    };
    if matches {
        return Verdict::Pass;
    }
    if bless {
        let written = match &first {
            Ok(pod) => remove_if_present(&expected_error)
                .and_then(|()| write_file(&expected_pod, &to_yaml(pod))),
            Err(e) => remove_if_present(&expected_pod)
                .and_then(|()| write_file(&expected_error, &format!("{}\n", e.kind))),
        };
        return match written {
            Ok(()) => Verdict::Blessed,
            Err(e) => Verdict::Fail(e),
        };
    }
    Verdict::Fail(match (&case.expected, first) {
        (Expected::Pod(want), Ok(got)) => format!(
            "output differs from expected.yaml\n{}",
            yaml_diff("expected.yaml", &to_yaml(want), "actual", &to_yaml(&got))
        ),
        (Expected::Pod(_), Err(e)) => {
            format!("expected a pod (expected.yaml), but the evaluation failed: {e}")
        }
        (Expected::Error(want), Err(e)) => {
            format!(
                "error does not contain the text of expected-error.txt\n  expected to contain: {want}\n  actual error: {e}"
            )
        }
        (Expected::Error(want), Ok(got)) => format!(
            "expected an error containing `{want}` (expected-error.txt), but the policy returned a pod:\n{}",
            to_yaml(&got)
        ),
        (Expected::Nothing, result) => format!(
            "no expected.yaml or expected-error.txt; run with --bless (or BLESS=1) to record the current result:\n{}",
            match result {
                Ok(pod) => to_yaml(&pod),
                Err(e) => format!("error: {e}"),
            }
        ),
    })
}

/// Run every case.
pub fn run_cases(policy: &Policy, cases: &[Case], bless: bool) -> Summary {
    Summary {
        results: cases.iter().map(|c| run_case(policy, c, bless)).collect(),
    }
}

/// Whether blessing was asked for through the environment (`BLESS=1`).
pub fn bless_from_env() -> bool {
    std::env::var("BLESS").is_ok_and(|v| !v.is_empty() && v != "0")
}
