//! `expected-error.txt`: the kind of error a case expects and a text its message must contain.
//!
//! The file is one line `<kind>: <text>`, e.g. `reject: allows at most 4 per task`. Both parts are required: an
//! empty file, an unknown kind or a kind without text is an error, so a case cannot pass by accident (an empty
//! text would match any message, and a text alone would match a policy that fails the wrong way).

use std::fmt;

/// How an evaluation failed, as far as a case is concerned. The first three are the WIT `policy-error` cases a
/// policy returns itself; the rest are what the host makes of a policy that misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `policy-error::reject`: the task must not run as asked.
    Reject,
    /// `policy-error::invalid-config`: the queue's config is wrong.
    InvalidConfig,
    /// `policy-error::internal`: the policy failed on its own.
    Internal,
    /// Ran past its deadline.
    Timeout,
    /// Grew its memory past the cap.
    MemoryLimit,
    /// Trapped (panic, unreachable, out of bounds).
    Trap,
    /// Returned text that is not JSON.
    BadOutput,
    /// Returned JSON that is not a valid `v1/Pod`.
    InvalidPod,
    /// The host could not encode its input.
    BadInput,
}

impl ErrorKind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [Self; 9] = [
        Self::Reject,
        Self::InvalidConfig,
        Self::Internal,
        Self::Timeout,
        Self::MemoryLimit,
        Self::Trap,
        Self::BadOutput,
        Self::InvalidPod,
        Self::BadInput,
    ];

    /// The word used in `expected-error.txt`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Reject => "reject",
            Self::InvalidConfig => "invalid-config",
            Self::Internal => "internal",
            Self::Timeout => "timeout",
            Self::MemoryLimit => "memory-limit",
            Self::Trap => "trap",
            Self::BadOutput => "bad-output",
            Self::InvalidPod => "invalid-pod",
            Self::BadInput => "bad-input",
        }
    }

    /// The kind for a label, if it is one.
    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.label() == label)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What a case expects when it expects an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedError {
    /// The kind the error must have.
    pub kind: ErrorKind,
    /// A text the error's message must contain.
    pub text: String,
}

/// Why an `expected-error.txt` is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpectedErrorProblem {
    /// Nothing in the file.
    #[error(
        "is empty: write `<kind>: <text>`, e.g. `reject: allows at most 4` (kinds: {})",
        kinds()
    )]
    Empty,
    /// No `kind:` prefix, or a word that is not a kind.
    #[error(
        "starts with `{found}`, which is not an error kind: write `<kind>: <text>` (kinds: {})",
        kinds()
    )]
    UnknownKind {
        /// What stood where the kind belongs.
        found: String,
    },
    /// A kind with nothing after it.
    #[error("gives the kind `{kind}` but no text: write `{kind}: <text the message contains>`")]
    NoText {
        /// The kind given.
        kind: ErrorKind,
    },
}

fn kinds() -> String {
    ErrorKind::ALL.map(ErrorKind::label).join(", ")
}

impl ExpectedError {
    /// Parse the contents of an `expected-error.txt`.
    pub fn parse(contents: &str) -> Result<Self, ExpectedErrorProblem> {
        let contents = contents.trim();
        if contents.is_empty() {
            return Err(ExpectedErrorProblem::Empty);
        }
        let (label, text) = contents.split_once(':').unwrap_or((contents, ""));
        let kind = ErrorKind::from_label(label.trim()).ok_or_else(|| {
            ExpectedErrorProblem::UnknownKind {
                found: label.trim().chars().take(40).collect(),
            }
        })?;
        let text = text.trim();
        if text.is_empty() {
            return Err(ExpectedErrorProblem::NoText { kind });
        }
        Ok(Self {
            kind,
            text: text.to_owned(),
        })
    }

    /// Whether an error of `kind` with `message` meets this expectation.
    pub fn matches(&self, kind: ErrorKind, message: &str) -> bool {
        self.kind == kind && message.contains(self.text.as_str())
    }

    /// The file contents that expect exactly this error (what blessing writes).
    pub fn file_contents(kind: ErrorKind, message: &str) -> String {
        // One line: a multi-line message keeps only its first line, which is what a reader compares by eye.
        let first = message.lines().next().unwrap_or_default().trim();
        format!("{kind}: {first}\n")
    }
}

impl fmt::Display for ExpectedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kind_and_text() {
        let e = ExpectedError::parse("reject: allows at most 4: per task\n").unwrap();
        assert_eq!(e.kind, ErrorKind::Reject);
        assert_eq!(e.text, "allows at most 4: per task");
        assert!(e.matches(
            ErrorKind::Reject,
            "queue gpu allows at most 4: per task (8 asked)"
        ));
        assert!(!e.matches(ErrorKind::InvalidConfig, "allows at most 4: per task"));
        assert!(!e.matches(ErrorKind::Reject, "allows at most 2"));
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_label(kind.label()), Some(kind));
            let written = ExpectedError::file_contents(kind, "boom\nsecond line");
            assert_eq!(
                ExpectedError::parse(&written).unwrap(),
                ExpectedError {
                    kind,
                    text: "boom".into()
                }
            );
        }
    }

    #[test]
    fn empty_kindless_and_textless_files_are_errors() {
        assert_eq!(
            ExpectedError::parse("  \n"),
            Err(ExpectedErrorProblem::Empty)
        );
        let err = ExpectedError::parse("allows at most 4").unwrap_err();
        assert!(
            matches!(&err, ExpectedErrorProblem::UnknownKind { found } if found == "allows at most 4")
        );
        assert!(
            err.to_string()
                .contains("reject, invalid-config, internal, timeout"),
            "{err}"
        );
        assert!(matches!(
            ExpectedError::parse("rejected: x"),
            Err(ExpectedErrorProblem::UnknownKind { .. })
        ));
        assert_eq!(
            ExpectedError::parse("timeout:"),
            Err(ExpectedErrorProblem::NoText {
                kind: ErrorKind::Timeout
            })
        );
    }
}
