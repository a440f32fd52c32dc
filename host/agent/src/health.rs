//! What `/readyz` says, and what the dispatch loop checks before it pops: whether the agent can reach ClearML and
//! the Kubernetes API right now.
//!
//! Each dependency is *up* until a call to it fails in a way retrying may fix (connection refused, timeout, 5xx,
//! 429), then *down* until a call succeeds again. The dispatch loop never pops while either is down (a task popped
//! then could not be handed over or get its pod); it probes a down Kubernetes API itself each round. `/readyz`
//! answers 503 with the reason while a dependency is down, and while the agent is starting; `/healthz` stays 200
//! (the process is alive and retrying: a restart would not help).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Instant;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::metrics::DependencyLabels;

/// Something the agent needs to dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    /// The ClearML API server.
    ClearMl,
    /// The Kubernetes API server.
    Kubernetes,
}

impl Dependency {
    /// The metric label and the name in `/readyz`.
    pub fn label(self) -> &'static str {
        match self {
            Self::ClearMl => "clearml",
            Self::Kubernetes => "kubernetes",
        }
    }
}

/// Where the agent is in its life, for `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Connecting, recovering: not ready.
    Starting,
    /// Another replica holds the Lease; this one is ready to take over.
    Standby,
    /// Dispatching.
    Leading,
    /// Shutting down: not ready.
    Stopping,
}

#[derive(Debug, Default)]
struct DownState {
    down: AtomicBool,
    /// Since when and why (the first error of the outage).
    since: Mutex<Option<(Instant, String)>>,
}

/// The agent's view of its dependencies.
#[derive(Debug)]
pub struct Health {
    clearml: DownState,
    kube: DownState,
    phase: AtomicU8,
    /// How many outages have ended: the dispatch loop runs recovery when this moves.
    outages_ended: AtomicU64,
    up: Family<DependencyLabels, Gauge>,
}

impl Health {
    /// Both dependencies up, phase [`Phase::Starting`]; `up` is the `clearml_agent_dependency_up` gauge.
    pub fn new(up: Family<DependencyLabels, Gauge>) -> Self {
        let health = Self {
            clearml: DownState::default(),
            kube: DownState::default(),
            phase: AtomicU8::new(Phase::Starting as u8),
            outages_ended: AtomicU64::new(0),
            up,
        };
        for dependency in [Dependency::ClearMl, Dependency::Kubernetes] {
            health.gauge(dependency).set(1);
        }
        health
    }

    fn state(&self, dependency: Dependency) -> &DownState {
        match dependency {
            Dependency::ClearMl => &self.clearml,
            Dependency::Kubernetes => &self.kube,
        }
    }

    fn gauge(&self, dependency: Dependency) -> Gauge {
        self.up
            .get_or_create(&DependencyLabels {
                dependency: dependency.label().to_string(),
            })
            .clone()
    }

    /// Whether `dependency` answered its last call.
    pub fn is_up(&self, dependency: Dependency) -> bool {
        !self.state(dependency).down.load(Ordering::Relaxed)
    }

    /// A call to `dependency` succeeded. Returns `true` when this ends an outage (the caller may want to catch up).
    pub fn record_up(&self, dependency: Dependency) -> bool {
        let state = self.state(dependency);
        if !state.down.swap(false, Ordering::Relaxed) {
            return false;
        }
        let since = state.since.lock().ok().and_then(|mut s| s.take());
        let seconds = since.map_or(0.0, |(at, _)| at.elapsed().as_secs_f64());
        tracing::warn!(
            dependency = dependency.label(),
            outage_seconds = seconds,
            "reachable again"
        );
        self.gauge(dependency).set(1);
        self.outages_ended.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// How many outages have ended so far (a submission that succeeds may end one, not only the dispatch loop).
    pub fn outages_ended(&self) -> u64 {
        self.outages_ended.load(Ordering::Relaxed)
    }

    /// A call to `dependency` failed in a way retrying may fix; `error` says how (no secrets: callers redact).
    pub fn record_down(&self, dependency: Dependency, error: &str) {
        let state = self.state(dependency);
        if state.down.swap(true, Ordering::Relaxed) {
            return;
        }
        if let Ok(mut since) = state.since.lock() {
            *since = Some((Instant::now(), error.to_string()));
        }
        tracing::warn!(
            dependency = dependency.label(),
            error,
            "unreachable: no pops until it answers again"
        );
        self.gauge(dependency).set(0);
    }

    /// Whether the dispatch loop may pop: both dependencies up.
    pub fn can_dispatch(&self) -> bool {
        self.is_up(Dependency::ClearMl) && self.is_up(Dependency::Kubernetes)
    }

    /// Move to `phase`.
    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            x if x == Phase::Standby as u8 => Phase::Standby,
            x if x == Phase::Leading as u8 => Phase::Leading,
            x if x == Phase::Stopping as u8 => Phase::Stopping,
            _ => Phase::Starting,
        }
    }

    /// `/readyz`: `Ok(body)` when ready, `Err(body)` saying why not.
    pub fn readiness(&self) -> Result<String, String> {
        match self.phase() {
            Phase::Starting => return Err("not ready: starting\n".into()),
            Phase::Stopping => return Err("not ready: shutting down\n".into()),
            // A standby has checked nothing but its config and the Lease: ready to take over.
            Phase::Standby => return Ok("ready (standby)\n".into()),
            Phase::Leading => {}
        }
        let mut down = Vec::new();
        for dependency in [Dependency::ClearMl, Dependency::Kubernetes] {
            if self.is_up(dependency) {
                continue;
            }
            let since = self
                .state(dependency)
                .since
                .lock()
                .ok()
                .and_then(|s| s.clone());
            down.push(match since {
                Some((at, why)) => format!(
                    "{} unreachable for {}s: {why}",
                    dependency.label(),
                    at.elapsed().as_secs()
                ),
                None => format!("{} unreachable", dependency.label()),
            });
        }
        if down.is_empty() {
            Ok("ready\n".into())
        } else {
            Err(format!("not ready: {}\n", down.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_makes_readyz_say_why_and_stops_pops_until_a_call_succeeds() {
        let health = Health::new(Family::default());
        assert_eq!(health.readiness(), Err("not ready: starting\n".into()));
        health.set_phase(Phase::Leading);
        assert_eq!(health.readiness(), Ok("ready\n".into()));
        assert!(health.can_dispatch());

        health.record_down(Dependency::Kubernetes, "connection refused");
        health.record_down(Dependency::Kubernetes, "a second error keeps the first");
        assert!(!health.can_dispatch());
        let why = health.readiness().unwrap_err();
        assert!(
            why.starts_with("not ready: kubernetes unreachable for 0s: connection refused"),
            "{why}"
        );
        assert!(health.record_up(Dependency::Kubernetes));
        assert!(
            !health.record_up(Dependency::Kubernetes),
            "only the first success ends the outage"
        );
        assert!(health.can_dispatch());

        health.set_phase(Phase::Standby);
        assert_eq!(health.readiness(), Ok("ready (standby)\n".into()));
        health.set_phase(Phase::Stopping);
        assert!(health.readiness().is_err());
    }
}
