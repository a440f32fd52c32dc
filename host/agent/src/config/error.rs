//! [`ConfigError`]: what can be wrong with a values file. Every variant names the key's full path (as the user
//! wrote it: `agentk8sglue.*` or `orchestratork8sglue.*`) so the message alone is enough to fix the file.
//! No variant ever carries a credential's value.

use std::path::PathBuf;

/// A values file the agent cannot run with. The binary exits 64 on any of these.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        /// The file named on the command line.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// Any other error, with the file it was found in.
    #[error("{}: {source}", .path.display())]
    InFile {
        /// The file named on the command line.
        path: PathBuf,
        /// What is wrong inside it.
        #[source]
        source: Box<ConfigError>,
    },
    /// The text is not YAML.
    #[error("YAML syntax error at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// The parser's description.
        message: String,
    },
    /// The text cannot be read as one YAML document, and the parser gave no position (several documents, a
    /// merge key `<<` on something that is not a map, ...).
    #[error("invalid YAML: {problem}")]
    Yaml {
        /// What the parser said.
        problem: String,
    },
    /// A key the values shape does not have.
    #[error("{path}: unknown key ({})", unknown_key_hint(.suggestion.as_deref(), .known))]
    UnknownKey {
        /// Full path of the key, e.g. `agentk8sglue.queues.red.templateOverides`.
        path: String,
        /// The closest known key, when one is close enough to be a likely typo.
        suggestion: Option<String>,
        /// The keys allowed there, comma-separated (shown when there is no suggestion).
        known: String,
    },
    /// A value of the wrong YAML type.
    #[error("{path}: expected {expected}, found {found}")]
    InvalidType {
        /// Full path of the value.
        path: String,
        /// What the key takes, e.g. `an integer`.
        expected: &'static str,
        /// What was given, e.g. `a string`.
        found: &'static str,
    },
    /// A value of the right type that is still unusable (zero where a limit must be positive, ...).
    #[error("{path}: {problem}")]
    InvalidValue {
        /// Full path of the value.
        path: String,
        /// What is wrong and what would be right.
        problem: String,
    },
    /// One setting given under both its names (the renamed Enterprise chart's and the original).
    #[error(
        "{first} and {second} are both set: they are the same setting under the chart's two names; keep one"
    )]
    BothSet {
        /// The original chart's name, e.g. `clearml.agentk8sglueKey`.
        first: String,
        /// The renamed chart's name, e.g. `controlPlane.apiKey`.
        second: String,
    },
    /// A required value given nowhere.
    #[error("{path} is not set, nor is {alternatives}: {needed_for}")]
    Missing {
        /// The values key, e.g. `agentk8sglue.apiServerUrlReference`.
        path: String,
        /// The other places it may come from (alias key, env var).
        alternatives: String,
        /// Why the agent cannot do without it.
        needed_for: &'static str,
    },
    /// Two queue keys that ClearML resolves to the same queue.
    #[error(
        "{path}: queues `{first}` and `{second}` are the same ClearML queue (queue names are case-insensitive); keep one"
    )]
    DuplicateQueue {
        /// `agentk8sglue.queues`.
        path: String,
        /// The first spelling, in file order.
        first: String,
        /// The later spelling.
        second: String,
    },
    /// A `policies` entry names a plugin that is neither a default plugin nor in `agentk8sglue.plugins`.
    #[error("{path}: unknown plugin `{name}` ({})", unknown_plugin_hint(.suggestion.as_deref(), .available))]
    UnknownPlugin {
        /// Full path of the `plugin` value.
        path: String,
        /// The name given.
        name: String,
        /// The closest available name, when close enough to be a likely typo.
        suggestion: Option<String>,
        /// Every name that can be used, comma-separated.
        available: String,
    },
    /// [`AgentConfig::validate_for_run`](super::AgentConfig::validate_for_run): values that parse but that the
    /// agent cannot run with (no queues, placeholders left from the documentation, URLs that are not http(s)).
    #[error("the configuration cannot be used to run the agent:{}", bullet_list(.problems))]
    NotUsable {
        /// One line per problem, each naming its key.
        problems: Vec<String>,
    },
}

fn unknown_key_hint(suggestion: Option<&str>, known: &str) -> String {
    match suggestion {
        Some(s) => format!("did you mean {s}?"),
        None => format!("expected one of: {known}"),
    }
}

fn unknown_plugin_hint(suggestion: Option<&str>, available: &str) -> String {
    match suggestion {
        Some(s) => format!("did you mean {s}? available: {available}"),
        None => format!("available: {available}"),
    }
}

fn bullet_list(items: &[String]) -> String {
    items.iter().map(|item| format!("\n  - {item}")).collect()
}

impl From<pod_template::Error> for ConfigError {
    /// Template errors carry their own path (we pass the values path in); re-shape them so a misspelt template
    /// key reads like every other misspelt key, with a suggestion.
    fn from(error: pod_template::Error) -> Self {
        match error {
            pod_template::Error::UnknownKey { path, key, known } => {
                let candidates: Vec<&str> = known.split(", ").collect();
                ConfigError::UnknownKey {
                    suggestion: super::walk::suggest(&key, &candidates).map(str::to_owned),
                    path: super::walk::join(&path, &key),
                    known,
                }
            }
            pod_template::Error::InvalidType {
                path,
                expected,
                found,
            } => ConfigError::InvalidType {
                path,
                expected,
                found,
            },
            pod_template::Error::InvalidPod(problem) => ConfigError::InvalidValue {
                path: String::new(),
                problem,
            },
        }
    }
}
