//! The task status state machine (clearml-server `bll/task/task_status`): which transitions a status call may
//! make without `force`.

use serde::{Deserialize, Serialize};

/// A task status as the server spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// A draft: what `tasks.create` and `tasks.reset` leave, and the only status `tasks.edit` accepts unforced.
    Created,
    /// In a queue (`tasks.enqueue`), waiting to be popped.
    Queued,
    /// Running (`tasks.started`).
    InProgress,
    /// Aborted: `tasks.stop` with no live worker, `tasks.stopped`, or the non-responsive-task watchdog.
    Stopped,
    /// Final and read-only: no transition leaves it.
    Published,
    /// On its way to published.
    Publishing,
    /// A legacy status, between stopped and published.
    Closed,
    /// `tasks.failed`: the run failed.
    Failed,
    /// `tasks.completed`: the run ended successfully.
    Completed,
    /// The server's `unknown` status; no transition leads to or from it without `force`.
    Unknown,
}

impl TaskStatus {
    /// The wire name (`in_progress`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Created => "created",
            TaskStatus::Queued => "queued",
            TaskStatus::InProgress => "in_progress",
            TaskStatus::Stopped => "stopped",
            TaskStatus::Published => "published",
            TaskStatus::Publishing => "publishing",
            TaskStatus::Closed => "closed",
            TaskStatus::Failed => "failed",
            TaskStatus::Completed => "completed",
            TaskStatus::Unknown => "unknown",
        }
    }

    /// The status for a wire name; `None` for anything else (the callers answer 400/12).
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `from -> to` is allowed without `force`. Staying in the same status is always allowed.
pub fn can_transition(from: TaskStatus, to: TaskStatus) -> bool {
    use TaskStatus::*;
    if from == to {
        return true;
    }
    let allowed: &[TaskStatus] = match from {
        Created => &[Queued, InProgress],
        Queued => &[Created, InProgress, Stopped],
        InProgress => &[Stopped, Failed, Created, Completed],
        Stopped => &[
            Closed, Created, Failed, Queued, InProgress, Published, Publishing, Completed,
        ],
        Closed => &[Created, Failed, Published, Publishing, Stopped],
        Failed => &[Created, Stopped, Published, Queued],
        Completed => &[Published, InProgress, Created],
        Publishing => &[Published],
        Published | Unknown => &[],
    };
    allowed.contains(&to)
}

#[cfg(test)]
mod tests {
    use super::TaskStatus::*;
    use super::*;

    #[test]
    fn table_from_the_reference() {
        assert!(can_transition(Created, Queued));
        assert!(
            can_transition(Queued, InProgress),
            "a queued task can be started directly"
        );
        assert!(can_transition(InProgress, Failed));
        assert!(can_transition(Stopped, Queued));
        assert!(can_transition(Failed, Queued));
        assert!(!can_transition(Published, Created));
    }

    #[test]
    fn transitions_that_need_force() {
        assert!(!can_transition(Failed, InProgress));
        assert!(!can_transition(Created, Stopped));
        assert!(!can_transition(Queued, Failed));
        assert!(!can_transition(Created, Failed));
    }

    #[test]
    fn same_status_is_allowed() {
        for s in [Created, Queued, InProgress, Published, Failed] {
            assert!(can_transition(s, s));
        }
    }

    #[test]
    fn parse_round_trips() {
        for s in [
            Created, Queued, InProgress, Stopped, Published, Publishing, Closed, Failed, Completed,
        ] {
            assert_eq!(TaskStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(TaskStatus::parse("running"), None);
    }
}
