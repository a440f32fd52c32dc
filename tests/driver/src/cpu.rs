//! Where a run's CPU went: the whole machine's busy time (`/proc/stat`) and each part of the benchmark's
//! (the agent, kube-apiserver, etcd, kubelet-sim, this process: the driver and the in-process emulator), so a
//! report can say what a task costs the machine, not only the agent. Parsing is pure and unit-tested.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::stats::{cpu_ticks, human, ticks_to_duration};

/// Busy clock ticks (`user + nice + system + irq + softirq + steal`) from the `cpu` line of `/proc/stat`.
pub fn machine_busy_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is already inside user.
    let busy = |i: usize| fields.get(i).copied();
    Some(busy(0)? + busy(1)? + busy(2)? + busy(5)? + busy(6)? + busy(7).unwrap_or(0))
}

/// The `TLB` row of `/proc/interrupts`, summed over the CPUs: TLB shootdowns so far. In a VM each one is an
/// inter-processor interrupt that stops the other vCPU, whatever it was running.
pub fn tlb_shootdowns(interrupts: &str) -> Option<u64> {
    let line = interrupts
        .lines()
        .find(|l| l.trim_start().starts_with("TLB:"))?;
    Some(
        line.split_whitespace()
            .skip(1)
            .map_while(|f| f.parse::<u64>().ok())
            .sum(),
    )
}

/// CPU time used so far by the machine and by each named part.
#[derive(Debug, Clone, Default)]
pub struct CpuSnapshot {
    /// The whole machine, every core.
    pub machine: Duration,
    /// TLB shootdowns so far, every core ([`tlb_shootdowns`]; 0 where unreadable).
    pub tlb_shootdowns: u64,
    /// Per part.
    pub parts: BTreeMap<&'static str, Duration>,
}

/// The pids of one run's parts, for [`CpuSnapshot::take_of`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Pids {
    /// The agent.
    pub agent: Option<u32>,
    /// Its control plane's kube-apiserver.
    pub apiserver: Option<u32>,
    /// Its control plane's etcd.
    pub etcd: Option<u32>,
    /// Its kubelet-sim.
    pub sim: Option<u32>,
}

impl CpuSnapshot {
    /// Now, each part found by its pid (`None`: that part reads zero): one side of an interleaved pair, whose
    /// control plane and kubelet-sim are not the only ones running.
    pub fn take_of(parts: &Pids) -> Self {
        let by_pid = |pid: Option<u32>| pid.map_or(Duration::ZERO, process_cpu);
        Self {
            machine: machine_busy(),
            tlb_shootdowns: std::fs::read_to_string("/proc/interrupts")
                .ok()
                .and_then(|s| tlb_shootdowns(&s))
                .unwrap_or(0),
            parts: BTreeMap::from([
                ("agent", by_pid(parts.agent)),
                ("driver + emulator", process_cpu(std::process::id())),
                ("kube-apiserver", by_pid(parts.apiserver)),
                ("etcd", by_pid(parts.etcd)),
                ("kubelet-sim", by_pid(parts.sim)),
            ]),
        }
    }

    /// What was used between `earlier` and `self`.
    pub fn since(&self, earlier: &CpuSnapshot) -> CpuSnapshot {
        CpuSnapshot {
            machine: self.machine.saturating_sub(earlier.machine),
            tlb_shootdowns: self.tlb_shootdowns.saturating_sub(earlier.tlb_shootdowns),
            parts: self
                .parts
                .iter()
                .map(|(name, now)| {
                    let before = earlier.parts.get(name).copied().unwrap_or_default();
                    (*name, now.saturating_sub(before))
                })
                .collect(),
        }
    }

    /// Add what `other` used (both from [`CpuSnapshot::since`]): a side's chunks summed.
    pub fn add(&mut self, other: &CpuSnapshot) {
        self.machine += other.machine;
        self.tlb_shootdowns += other.tlb_shootdowns;
        for (name, used) in &other.parts {
            *self.parts.entry(name).or_default() += *used;
        }
    }

    /// What was used between `earlier` and `self`, per task, as one report line.
    pub fn per_task_line(&self, earlier: &CpuSnapshot, tasks: usize) -> String {
        let tasks = u32::try_from(tasks.max(1)).unwrap_or(u32::MAX);
        let machine = self.machine.saturating_sub(earlier.machine) / tasks;
        let mut accounted = Duration::ZERO;
        let mut line = format!("{} machine", human(machine));
        for (name, now) in &self.parts {
            let used =
                now.saturating_sub(earlier.parts.get(name).copied().unwrap_or_default()) / tasks;
            accounted += used;
            line.push_str(&format!(", {} {name}", human(used)));
        }
        line.push_str(&format!(
            ", {} everything else; {:.1} TLB shootdowns",
            human(machine.saturating_sub(accounted)),
            self.tlb_shootdowns.saturating_sub(earlier.tlb_shootdowns) as f64 / f64::from(tasks)
        ));
        line
    }
}

/// A process's CPU time so far (utime + stime); zero if it cannot be read.
fn process_cpu(pid: u32) -> Duration {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| cpu_ticks(&s))
        .map_or(Duration::ZERO, ticks_to_duration)
}

/// The whole machine's busy CPU time so far; zero if `/proc/stat` cannot be read.
fn machine_busy() -> Duration {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| machine_busy_ticks(&s))
        .map_or(Duration::ZERO, ticks_to_duration)
}

/// Wait until the machine is quiet: less than `quiet` of its CPU busy over one second (kubelet-sim still
/// starting the last run's pods, the apiserver still sending their watch events, would otherwise land on the next
/// run's figures), or `max` has passed. Returns how long it waited.
pub async fn settle(quiet: f64, max: Duration) -> Duration {
    let started = std::time::Instant::now();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as f64;
    let mut before = machine_busy();
    while started.elapsed() < max {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = machine_busy();
        if now.saturating_sub(before).as_secs_f64() < quiet * cores {
            break;
        }
        before = now;
    }
    started.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_ticks_leave_out_idle_and_iowait() {
        let stat = "cpu  100 5 50 9000 40 3 2 7 11 0\ncpu0 50 2 25 4500 20 1 1 3 5 0\nintr 1 2 3\n";
        assert_eq!(machine_busy_ticks(stat), Some(100 + 5 + 50 + 3 + 2 + 7));
        // Old kernels without steal.
        assert_eq!(
            machine_busy_ticks("cpu  1 2 3 4 5 6 7\n"),
            Some(1 + 2 + 3 + 6 + 7)
        );
        assert_eq!(machine_busy_ticks("intr 1\n"), None);
    }

    #[test]
    fn tlb_shootdowns_are_summed_over_the_cpus() {
        let interrupts = "           CPU0       CPU1\n RES:     410324     394768   Rescheduling interrupts\n \
                          TLB:     953513     963960   TLB shootdowns\n";
        assert_eq!(tlb_shootdowns(interrupts), Some(953_513 + 963_960));
        assert_eq!(tlb_shootdowns("CPU0\n"), None);
    }

    #[test]
    fn the_line_splits_a_task_between_the_parts() {
        let ms = Duration::from_millis;
        let before = CpuSnapshot {
            machine: ms(1000),
            tlb_shootdowns: 100,
            parts: BTreeMap::from([("agent", ms(100)), ("etcd", ms(10))]),
        };
        let after = CpuSnapshot {
            machine: ms(5000),
            tlb_shootdowns: 2600,
            parts: BTreeMap::from([("agent", ms(1100)), ("etcd", ms(510))]),
        };
        assert_eq!(
            after.per_task_line(&before, 1000),
            "4.0 ms machine, 1.0 ms agent, 500 µs etcd, 2.5 ms everything else; 2.5 TLB shootdowns"
        );
    }

    #[test]
    fn chunks_add_up_to_one_run() {
        let ms = Duration::from_millis;
        let at = |machine, agent| CpuSnapshot {
            machine: ms(machine),
            tlb_shootdowns: machine / 10,
            parts: BTreeMap::from([("agent", ms(agent))]),
        };
        let mut used = CpuSnapshot::default();
        used.add(&at(300, 120).since(&at(100, 20)));
        used.add(&at(1000, 400).since(&at(800, 300)));
        assert_eq!(used.machine, ms(400));
        assert_eq!(used.tlb_shootdowns, 40);
        assert_eq!(used.parts["agent"], ms(200));
        assert_eq!(
            used.per_task_line(&CpuSnapshot::default(), 100),
            "4.0 ms machine, 2.0 ms agent, 2.0 ms everything else; 0.4 TLB shootdowns"
        );
    }

    #[test]
    fn this_machine_can_be_sampled() {
        let now = CpuSnapshot::take_of(&Pids {
            agent: Some(std::process::id()),
            ..Pids::default()
        });
        assert!(now.machine > Duration::ZERO);
        // A test process may not have used a clock tick yet: every part is there, none need be non-zero.
        let parts: Vec<&str> = now.parts.keys().copied().collect();
        assert_eq!(
            parts,
            [
                "agent",
                "driver + emulator",
                "etcd",
                "kube-apiserver",
                "kubelet-sim"
            ]
        );
    }
}
