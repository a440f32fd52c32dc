//! Figures from raw samples, and a process's CPU time and memory from `/proc` (pure parsing, unit-tested).

use std::time::Duration;

/// `/proc/<pid>/...` could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// The file could not be read (the process is gone?).
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file's content is not what the kernel writes.
    #[error("{path}: {what}")]
    Parse {
        /// The file.
        path: String,
        /// What was missing.
        what: &'static str,
    },
}

/// The `p`-th percentile (0..=100) of `samples` in any order; `None` when empty.
///
/// The rank rule is the one the policy benchmarks use, [`policy_runtime::bench::percentile`], so the agent's figures
/// and the policies' figures in BENCHMARKS.md mean the same thing. This wrapper only sorts a copy and turns "no
/// samples" into `None` (that rule returns zero, which a report would print as a real 0 µs latency).
pub fn percentile(samples: &[Duration], p: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    Some(policy_runtime::bench::percentile(&sorted, p))
}

/// `utime + stime` in clock ticks from the text of `/proc/<pid>/stat`.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces: fields are counted after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at indices 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A `kB` line (`VmHWM:   51234 kB`) of `/proc/<pid>/status`, in bytes.
pub fn status_kb(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix(':')?;
        let kb: u64 = value.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kb * 1024)
    })
}

/// A process's resource use at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcSample {
    /// User + system CPU time so far.
    pub cpu: Duration,
    /// Resident set size now (`VmRSS`).
    pub rss_bytes: u64,
    /// Peak resident set size so far (`VmHWM`).
    pub peak_rss_bytes: u64,
}

/// Read `pid`'s CPU time and memory now.
pub fn sample(pid: u32) -> Result<ProcSample, ProcError> {
    let read = |file: &str| {
        let path = format!("/proc/{pid}/{file}");
        std::fs::read_to_string(&path)
            .map_err(|source| ProcError::Read {
                path: path.clone(),
                source,
            })
            .map(|text| (path, text))
    };
    let (stat_path, stat) = read("stat")?;
    let ticks = cpu_ticks(&stat).ok_or(ProcError::Parse {
        path: stat_path,
        what: "utime/stime fields",
    })?;
    let (status_path, status) = read("status")?;
    let kb = |key: &'static str| {
        status_kb(&status, key).ok_or(ProcError::Parse {
            path: status_path.clone(),
            what: key,
        })
    };
    Ok(ProcSample {
        cpu: ticks_to_duration(ticks),
        rss_bytes: kb("VmRSS")?,
        peak_rss_bytes: kb("VmHWM")?,
    })
}

/// Clock ticks (the unit of `/proc/<pid>/stat` and `/proc/stat`) as time.
pub(crate) fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second() as f64)
}

/// `sysconf(_SC_CLK_TCK)` as `getconf` reports it; 100 (Linux's USER_HZ) if `getconf` is unavailable.
fn clock_ticks_per_second() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// Bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// A duration in the unit that reads best (`840 µs`, `12.3 ms`, `1.52 s`).
pub fn human(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 1e6 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_unsorted_samples_follow_the_one_rule() {
        let ms = |v: u64| Duration::from_millis(v);
        let sorted: Vec<Duration> = (1..=11).map(ms).collect();
        // Reversed and shuffled input: the wrapper sorts before it ranks.
        let reversed: Vec<Duration> = sorted.iter().rev().copied().collect();
        let shuffled: Vec<Duration> = [6, 1, 11, 3, 9, 2, 8, 4, 10, 5, 7].map(ms).to_vec();
        for p in [0.0, 25.0, 50.0, 90.0, 99.0, 100.0] {
            let rule = policy_runtime::bench::percentile(&sorted, p);
            assert_eq!(percentile(&reversed, p), Some(rule), "p{p}");
            assert_eq!(percentile(&shuffled, p), Some(rule), "p{p}");
        }
        // The figures themselves, so a change of the shared rule shows up here too.
        assert_eq!(percentile(&shuffled, 0.0), Some(ms(1)));
        assert_eq!(percentile(&shuffled, 50.0), Some(ms(6)));
        assert_eq!(percentile(&shuffled, 100.0), Some(ms(11)));
        assert_eq!(percentile(&[ms(7)], 99.0), Some(ms(7)));
    }

    #[test]
    fn no_samples_is_none_not_zero() {
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn cpu_ticks_counts_fields_after_the_command_name() {
        // A command name with a space and a ')' in it, as the kernel writes it.
        let stat = "4242 (clearml k8s) agent) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 37 0 0 20 0 9 0 100 0 0";
        assert_eq!(cpu_ticks(stat), Some(287));
        assert_eq!(cpu_ticks("4242 (short"), None);
    }

    #[test]
    fn status_lines_in_bytes() {
        let status = "Name:\tclearml-k8s-agent\nVmHWM:\t   51234 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(status_kb(status, "VmHWM"), Some(51234 * 1024));
        assert_eq!(status_kb(status, "VmRSS"), Some(40000 * 1024));
        assert_eq!(status_kb(status, "VmSwap"), None);
    }

    #[test]
    fn own_process_can_be_sampled() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.peak_rss_bytes >= s.rss_bytes && s.rss_bytes > 0);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_micros(840)), "840 µs");
        assert_eq!(human(Duration::from_micros(12_340)), "12.3 ms");
        assert_eq!(human(Duration::from_millis(1520)), "1.52 s");
    }
}
