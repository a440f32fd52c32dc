//! One case folder: loading it, judging what a policy did against it, and blessing.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::expected::{ErrorKind, ExpectedError, ExpectedErrorProblem};
use crate::task::{CaseTask, TaskError};

/// Problems reading case folders (as opposed to a case failing).
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// A file or folder could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid YAML.
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The YAML error.
        message: String,
    },
    /// `task.yaml` is not a task; the error names the field.
    #[error("{}: {source}", path.display())]
    Task {
        /// The file.
        path: PathBuf,
        /// Which field is wrong and how.
        #[source]
        source: TaskError,
    },
    /// A required input is missing.
    #[error("{}: missing {file}", dir.display())]
    Missing {
        /// The case folder.
        dir: PathBuf,
        /// The missing file.
        file: &'static str,
    },
    /// `expected-error.txt` does not state a kind and a text.
    #[error("{}: {problem}", path.display())]
    ExpectedError {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: ExpectedErrorProblem,
    },
    /// A case expects both a pod and an error.
    #[error("{}: has both expected.yaml and expected-error.txt; keep the one the case means", dir.display())]
    BothExpectations {
        /// The case folder.
        dir: PathBuf,
    },
    /// The cases folder holds no case: every policy must have cases.
    #[error("{}: no cases (each case is a folder with task.yaml and pod.yaml)", dir.display())]
    NoCases {
        /// The cases folder.
        dir: PathBuf,
    },
}

/// What a case expects.
#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
    /// This exact output pod (`expected.yaml`).
    Pod(Value),
    /// An error of this kind whose message contains this text (`expected-error.txt`).
    Error(ExpectedError),
    /// Nothing yet: the case fails unless blessed.
    Nothing,
}

/// One golden case, loaded.
#[derive(Debug, Clone)]
pub struct Case {
    /// Folder name: the case's test name.
    pub name: String,
    /// Folder path.
    pub dir: PathBuf,
    /// Task context.
    pub task: CaseTask,
    /// Input pod.
    pub pod: Value,
    /// Policy config (`null` when the case has no config.yaml).
    pub config: Value,
    /// Expectation.
    pub expected: Expected,
}

/// How an evaluation failed, as a runner reports it to [`judge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Its kind.
    pub kind: ErrorKind,
    /// The message an expectation's text is looked for in (the policy's own words, without the host's prefix).
    pub message: String,
    /// The whole error as the runner prints it, for reports.
    pub full: String,
}

/// What one evaluation of a case produced.
pub type Outcome = Result<Value, Failure>;

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

fn read(path: &Path) -> Result<String, CaseError> {
    std::fs::read_to_string(path).map_err(|source| CaseError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn parse_yaml(path: &Path) -> Result<Value, CaseError> {
    serde_yaml::from_str(&read(path)?).map_err(|e| CaseError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

const EXPECTED_POD: &str = "expected.yaml";
const EXPECTED_ERROR: &str = "expected-error.txt";

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
        let task_path = need("task.yaml")?;
        let task = CaseTask::from_yaml(&read(&task_path)?).map_err(|source| CaseError::Task {
            path: task_path,
            source,
        })?;
        let pod = parse_yaml(&need("pod.yaml")?)?;
        let config_path = dir.join("config.yaml");
        let config = if config_path.is_file() {
            parse_yaml(&config_path)?
        } else {
            Value::Null
        };
        let expected_pod = dir.join(EXPECTED_POD);
        let expected_error = dir.join(EXPECTED_ERROR);
        let expected = match (expected_pod.is_file(), expected_error.is_file()) {
            (true, true) => {
                return Err(CaseError::BothExpectations {
                    dir: dir.to_path_buf(),
                });
            }
            (true, false) => Expected::Pod(parse_yaml(&expected_pod)?),
            (false, true) => {
                Expected::Error(ExpectedError::parse(&read(&expected_error)?).map_err(
                    |problem| CaseError::ExpectedError {
                        path: expected_error,
                        problem,
                    },
                )?)
            }
            (false, false) => Expected::Nothing,
        };
        Ok(Self {
            name: dir.file_name().map_or_else(
                || dir.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            dir: dir.to_path_buf(),
            task,
            pod,
            config,
            expected,
        })
    }

    /// Write the expectation that `outcome` meets: `expected.yaml` for a pod, `expected-error.txt` for an error
    /// (removing the other file).
    fn bless(&self, outcome: &Outcome) -> Result<(), String> {
        let (write, text, remove) = match outcome {
            Ok(pod) => (EXPECTED_POD, to_yaml(pod), EXPECTED_ERROR),
            Err(failure) => (
                EXPECTED_ERROR,
                ExpectedError::file_contents(failure.kind, &failure.message),
                EXPECTED_POD,
            ),
        };
        let remove = self.dir.join(remove);
        match std::fs::remove_file(&remove) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("cannot remove {}: {e}", remove.display()));
            }
            _ => {}
        }
        let write = self.dir.join(write);
        std::fs::write(&write, text).map_err(|e| format!("cannot write {}: {e}", write.display()))
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

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Ok(pod) => format!("a pod:\n{}", to_yaml(pod)),
        Err(failure) => format!("{} error: {}", failure.kind, failure.full),
    }
}

/// Judge a case from two evaluations of it (the second proves determinism: the host may re-evaluate a task, e.g.
/// after a restart, and must get the same pod). With `bless`, a mismatch rewrites the expectation instead.
pub fn judge(case: &Case, first: &Outcome, second: &Outcome, bless: bool) -> Verdict {
    if first != second {
        return Verdict::Fail(match (first, second) {
            (Ok(a), Ok(b)) => format!(
                "not deterministic: a second evaluation returned a different pod\n{}",
                yaml_diff("first", &to_yaml(a), "second", &to_yaml(b))
            ),
            _ => format!(
                "not deterministic: the first evaluation returned {}\nthe second returned {}",
                describe(first),
                describe(second)
            ),
        });
    }
    let matches = match (&case.expected, first) {
        (Expected::Pod(want), Ok(got)) => want == got,
        (Expected::Error(want), Err(got)) => want.matches(got.kind, &got.message),
        _ => false,
    };
    if matches {
        return Verdict::Pass;
    }
    if bless {
        return match case.bless(first) {
            Ok(()) => Verdict::Blessed,
            Err(e) => Verdict::Fail(e),
        };
    }
    Verdict::Fail(match (&case.expected, first) {
        (Expected::Pod(want), Ok(got)) => format!(
            "output differs from expected.yaml\n{}",
            yaml_diff("expected.yaml", &to_yaml(want), "actual", &to_yaml(got))
        ),
        (Expected::Error(want), Err(got)) if want.kind != got.kind => format!(
            "expected an error of kind `{}` (expected-error.txt), but the error is of kind `{}`: {}",
            want.kind, got.kind, got.full
        ),
        (Expected::Error(want), Err(got)) => format!(
            "the {} error does not contain the text of expected-error.txt\n  expected to contain: {}\n  actual error: {}",
            got.kind, want.text, got.full
        ),
        (Expected::Pod(_), Err(_)) => format!(
            "expected a pod (expected.yaml), but got {}",
            describe(first)
        ),
        (Expected::Error(want), Ok(_)) => {
            format!(
                "expected `{want}` (expected-error.txt), but the policy returned {}",
                describe(first)
            )
        }
        (Expected::Nothing, _) => format!(
            "no expected.yaml or expected-error.txt; bless it (`BLESS=1`, or `policy test --bless`) to record {}",
            describe(first)
        ),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn case_dir(files: &[(&str, &str)]) -> tempdir::Dir {
        let dir = tempdir::Dir::new();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    /// A throwaway folder under the target's temp dir (no tempfile dependency in a crate guests build too).
    mod tempdir {
        use std::path::{Path, PathBuf};
        use std::sync::atomic::{AtomicU32, Ordering};

        pub struct Dir(PathBuf);
        static NEXT: AtomicU32 = AtomicU32::new(0);

        impl Dir {
            pub fn new() -> Self {
                let n = NEXT.fetch_add(1, Ordering::Relaxed);
                let path =
                    std::env::temp_dir().join(format!("policy-cases-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&path).unwrap();
                Self(path)
            }
            pub fn path(&self) -> &Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    const TASK: (&str, &str) = ("task.yaml", "id: 1\nqueue-name: gpu\n");
    const POD: (&str, &str) = ("pod.yaml", "kind: Pod\n");

    fn reject(message: &str) -> Outcome {
        Err(Failure {
            kind: ErrorKind::Reject,
            message: message.to_owned(),
            full: format!("policy `p`: rejected the task: {message}"),
        })
    }

    #[test]
    fn loads_a_case_with_numbers_as_ids_and_no_config() {
        let dir = case_dir(&[TASK, POD, ("expected-error.txt", "reject: at most 4\n")]);
        let case = Case::load(dir.path()).unwrap();
        assert_eq!(case.task.id, "1");
        assert_eq!(case.config, Value::Null);
        assert_eq!(
            case.expected,
            Expected::Error(ExpectedError {
                kind: ErrorKind::Reject,
                text: "at most 4".into()
            })
        );
    }

    #[test]
    fn bad_case_files_are_errors_that_name_the_file() {
        let dir = case_dir(&[TASK, POD, ("expected-error.txt", "")]);
        let err = Case::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("expected-error.txt: is empty"), "{err}");
        let dir = case_dir(&[
            TASK,
            POD,
            ("expected-error.txt", "reject: x"),
            ("expected.yaml", "{}"),
        ]);
        assert!(matches!(
            Case::load(dir.path()),
            Err(CaseError::BothExpectations { .. })
        ));
        let dir = case_dir(&[("task.yaml", "id: t\nproperties: [a]\n"), POD]);
        let err = Case::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("task.yaml: properties: invalid type: sequence"),
            "{err}"
        );
        let dir = case_dir(&[TASK]);
        assert!(matches!(
            Case::load(dir.path()),
            Err(CaseError::Missing {
                file: "pod.yaml",
                ..
            })
        ));
        let empty = case_dir(&[]);
        assert!(matches!(
            load_cases(empty.path()),
            Err(CaseError::NoCases { .. })
        ));
    }

    #[test]
    fn the_error_kind_is_checked_as_well_as_the_text() {
        let dir = case_dir(&[
            TASK,
            POD,
            ("expected-error.txt", "invalid-config: at most 4\n"),
        ]);
        let case = Case::load(dir.path()).unwrap();
        let got = reject("queue allows at most 4");
        let Verdict::Fail(why) = judge(&case, &got, &got, false) else {
            panic!("a reject must not meet an invalid-config expectation")
        };
        assert!(
            why.contains("kind `invalid-config`") && why.contains("kind `reject`"),
            "{why}"
        );
        let dir = case_dir(&[TASK, POD, ("expected-error.txt", "reject: at most 4\n")]);
        let case = Case::load(dir.path()).unwrap();
        assert_eq!(judge(&case, &got, &got, false), Verdict::Pass);
        assert!(matches!(
            judge(&case, &reject("at most 2"), &reject("at most 2"), false),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn nondeterminism_fails_even_when_blessing() {
        let dir = case_dir(&[TASK, POD]);
        let case = Case::load(dir.path()).unwrap();
        let verdict = judge(&case, &Ok(json!({"a": 1})), &Ok(json!({"a": 2})), true);
        assert!(matches!(verdict, Verdict::Fail(why) if why.starts_with("not deterministic")));
    }

    #[test]
    fn blessing_writes_the_expectation_the_next_run_meets() {
        let dir = case_dir(&[TASK, POD]);
        let case = Case::load(dir.path()).unwrap();
        let got = reject("queue allows at most 4\n(details)");
        assert!(matches!(judge(&case, &got, &got, false), Verdict::Fail(_)));
        assert_eq!(judge(&case, &got, &got, true), Verdict::Blessed);
        let written = std::fs::read_to_string(dir.path().join("expected-error.txt")).unwrap();
        assert_eq!(written, "reject: queue allows at most 4\n");
        let case = Case::load(dir.path()).unwrap();
        assert_eq!(judge(&case, &got, &got, false), Verdict::Pass);
        let pod = Ok(json!({"kind": "Pod"}));
        assert_eq!(judge(&case, &pod, &pod, true), Verdict::Blessed);
        assert!(!dir.path().join("expected-error.txt").exists());
        assert_eq!(
            judge(&Case::load(dir.path()).unwrap(), &pod, &pod, false),
            Verdict::Pass
        );
    }
}
