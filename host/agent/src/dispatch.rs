//! What to pop next: the agent's decision core, a pure function of queue and capacity state.
//!
//! The loop around it ([`crate::run`]) asks ClearML once which monitored queues have entries, counts capacity from
//! the pod watch, and calls [`plan`]. Only the pops in the plan are made, so a task is never popped unless a pod
//! for it can be created right now: capacity (`maxPods` over all queues and per queue) is checked first and a task
//! keeps its place in the queue (the Python glue pops, then re-enqueues at the back).
//!
//! Fairness: queues are visited round-robin in the values' order, one pop per queue per round, so the first queue
//! wins when there is room for everyone and no queue is starved by a busy one when there is not: a plan cut short by
//! the global limit hands the next plan's first pick to the queue after the last one served.

/// One monitored queue as the planner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueState {
    /// Tasks waiting in the queue (as last reported by ClearML).
    pub waiting: u32,
    /// This queue's pods that count against its limit: pods not yet finished, plus submissions in flight.
    pub active: u32,
    /// `queueSettings.maxPods`.
    pub max_pods: Option<u32>,
}

impl QueueState {
    fn free(&self) -> u32 {
        self.max_pods
            .map_or(u32::MAX, |max| max.saturating_sub(self.active))
    }
}

/// The planner's input besides the queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Room under the global `maxPods` (`u32::MAX` without one).
    pub global_free: u32,
    /// At most this many pops in one plan: bounds the submissions in flight.
    pub batch: u32,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Queue indices to pop from, in order; an index appears once per pop.
    pub pops: Vec<usize>,
    /// Where the next plan starts its round-robin (see the module docs).
    pub next_cursor: usize,
}

/// Decide which queues to pop from, starting the round-robin at `cursor`.
pub fn plan(queues: &[QueueState], limits: Limits, cursor: usize) -> Plan {
    let n = queues.len();
    if n == 0 {
        return Plan::default();
    }
    let start = cursor % n;
    let mut left: Vec<u32> = queues.iter().map(|q| q.waiting.min(q.free())).collect();
    let mut budget = limits.global_free.min(limits.batch);
    let mut pops = Vec::new();
    let mut last_served = None;
    while budget > 0 && left.iter().any(|&l| l > 0) {
        for offset in 0..n {
            let index = (start + offset) % n;
            if budget == 0 {
                break;
            }
            if left[index] > 0 {
                left[index] -= 1;
                budget -= 1;
                pops.push(index);
                last_served = Some(index);
            }
        }
    }
    // Cut short while tasks still wait: the next plan starts after the last queue served. Otherwise everyone got
    // what they could take, and priority order applies again.
    let truncated = left.iter().any(|&l| l > 0);
    let next_cursor = match (truncated, last_served) {
        (true, Some(last)) => (last + 1) % n,
        _ => 0,
    };
    Plan { pops, next_cursor }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(waiting: u32, active: u32, max_pods: Option<u32>) -> QueueState {
        QueueState {
            waiting,
            active,
            max_pods,
        }
    }

    const UNLIMITED: Limits = Limits {
        global_free: u32::MAX,
        batch: 64,
    };

    #[test]
    fn nothing_waiting_nothing_popped() {
        let plan = plan(&[q(0, 0, None), q(0, 3, Some(5))], UNLIMITED, 0);
        assert!(plan.pops.is_empty());
        assert_eq!(plan.next_cursor, 0);
    }

    #[test]
    fn round_robin_in_priority_order_when_there_is_room() {
        let plan = plan(&[q(2, 0, None), q(1, 0, None), q(3, 0, None)], UNLIMITED, 0);
        assert_eq!(plan.pops, vec![0, 1, 2, 0, 2, 2]);
        assert_eq!(plan.next_cursor, 0);
    }

    #[test]
    fn per_queue_max_pods_holds() {
        let plan = plan(&[q(10, 4, Some(5)), q(10, 0, Some(2))], UNLIMITED, 0);
        assert_eq!(plan.pops, vec![0, 1, 1]);
    }

    #[test]
    fn full_queue_pops_nothing_so_the_task_keeps_its_place() {
        let plan = plan(&[q(10, 5, Some(5))], UNLIMITED, 0);
        assert!(plan.pops.is_empty());
    }

    #[test]
    fn global_limit_holds_and_the_next_plan_serves_the_others() {
        let queues = [q(10, 0, None), q(10, 0, None), q(10, 0, None)];
        let limits = Limits {
            global_free: 1,
            batch: 64,
        };
        let first = plan(&queues, limits, 0);
        assert_eq!(first.pops, vec![0]);
        let second = plan(&queues, limits, first.next_cursor);
        assert_eq!(second.pops, vec![1]);
        let third = plan(&queues, limits, second.next_cursor);
        assert_eq!(third.pops, vec![2]);
        assert_eq!(third.next_cursor, 0);
    }

    #[test]
    fn batch_bounds_a_plan() {
        let plan = plan(
            &[q(100, 0, None)],
            Limits {
                global_free: u32::MAX,
                batch: 8,
            },
            0,
        );
        assert_eq!(plan.pops.len(), 8);
    }

    #[test]
    fn a_busy_queue_does_not_starve_a_quiet_one() {
        // Queue 0 always has work; queue 1 gets one task. With room for one pod at a time, queue 1 is served within
        // two plans.
        let limits = Limits {
            global_free: 1,
            batch: 64,
        };
        let first = plan(&[q(100, 0, None), q(1, 0, None)], limits, 0);
        assert_eq!(first.pops, vec![0]);
        let second = plan(&[q(99, 0, None), q(1, 0, None)], limits, first.next_cursor);
        assert_eq!(second.pops, vec![1]);
    }
}
