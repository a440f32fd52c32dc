//! The demo's table: one row per task, columns padded to their widest cell; long status messages are listed
//! below the table so the table stays readable in a terminal.

/// One task's line in the demo's table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    /// Task name.
    pub task: String,
    /// Queue name.
    pub queue: String,
    /// Pod name, or `-` when no pod was created (rejected by a policy).
    pub pod: String,
    /// The chain that shaped the pod (plugin names from its provenance annotation).
    pub policies: String,
    /// GPU limit of the task container.
    pub gpus: String,
    /// The pod's `team` label.
    pub team: String,
    /// Memory limit of the task container.
    pub memory: String,
    /// Final ClearML status.
    pub status: String,
    /// ClearML status message (why it failed, ...), if any.
    pub message: Option<String>,
}

const HEADERS: [&str; 8] = [
    "TASK", "QUEUE", "POD", "POLICIES", "GPUS", "TEAM", "MEMORY", "STATUS",
];

/// The table as text (ends with a newline).
pub fn render(rows: &[Row]) -> String {
    let cells: Vec<[&str; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.task.as_str(),
                &r.queue,
                &r.pod,
                &r.policies,
                &r.gpus,
                &r.team,
                &r.memory,
                &r.status,
            ]
        })
        .collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |row: &[&str; 8]| {
        let padded: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(&HEADERS);
    for row in &cells {
        out.push_str(&line(row));
    }
    let notes: Vec<String> = rows
        .iter()
        .filter_map(|r| r.message.as_ref().map(|m| format!("  {}: {}\n", r.task, m)))
        .collect();
    if !notes.is_empty() {
        out.push_str("\nstatus messages:\n");
        out.extend(notes);
    }
    out
}

/// Plugin names from the provenance annotation (`name@sha256:<digest>,...`), joined with `→`.
pub fn policy_names(provenance: &str) -> String {
    let names: Vec<&str> = provenance
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|step| step.split_once('@').map_or(step, |(name, _)| name))
        .collect();
    if names.is_empty() {
        "-".into()
    } else {
        names.join(" → ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_and_messages_listed_below() {
        let rows = vec![
            Row {
                task: "train".into(),
                queue: "green".into(),
                pod: "clearml-id-1".into(),
                policies: "template-overrides".into(),
                gpus: "-".into(),
                team: "green".into(),
                memory: "2Gi".into(),
                status: "completed".into(),
                message: None,
            },
            Row {
                task: "bad-image".into(),
                queue: "research".into(),
                pod: "-".into(),
                policies: "-".into(),
                gpus: "-".into(),
                team: "-".into(),
                memory: "-".into(),
                status: "failed".into(),
                message: Some("rejected by guardrails".into()),
            },
        ];
        let text = render(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "TASK       QUEUE     POD           POLICIES            GPUS  TEAM   MEMORY  STATUS"
        );
        assert_eq!(
            lines[1],
            "train      green     clearml-id-1  template-overrides  -     green  2Gi     completed"
        );
        assert_eq!(
            lines[2],
            "bad-image  research  -             -                   -     -      -       failed"
        );
        assert_eq!(lines[4], "status messages:");
        assert_eq!(lines[5], "  bad-image: rejected by guardrails");
    }

    #[test]
    fn provenance_becomes_plugin_names() {
        assert_eq!(
            policy_names("template-overrides@sha256:ab12,guardrails@sha256:cd34"),
            "template-overrides → guardrails"
        );
        assert_eq!(policy_names(""), "-");
    }
}
