//! `policy bench`: compile time, load-from-cache time and per-evaluation percentiles of one component, so the CLI
//! only parses flags and prints [`BenchReport`]. Also the one [`percentile`] the benchmarks use.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::engine::{EngineConfig, EngineError, Limits, PolicyEngine};
use crate::error::{EvalError, LoadError};
use crate::harness::{Case, CaseError, Expected};
use crate::task::TaskContext;

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The engine could not be built.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The component was refused.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// An evaluation failed (a case that expects a pod must produce one to be measured).
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// The built-in case could not be read.
    #[error(transparent)]
    Case(#[from] CaseError),
    /// The scratch cache directory could not be prepared.
    #[error("cannot prepare the scratch cache {}: {source}", path.display())]
    Scratch {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The `p`-th percentile (0..=100) of `sorted` samples, by nearest rank on `len - 1`; zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Evaluation figures for one case.
#[derive(Debug, Clone)]
pub struct CaseFigures {
    /// Case name.
    pub name: String,
    /// Sorted evaluation times, one fresh instance each.
    pub samples: Vec<Duration>,
    /// Size of the input pod as JSON.
    pub pod_bytes: usize,
}

/// What [`bench`] measured.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Policy name.
    pub name: String,
    /// Component size.
    pub size: usize,
    /// Component sha256 (hex).
    pub sha256: String,
    /// Compile time without a cache.
    pub compile: Duration,
    /// Sorted times of loads from a warm cache.
    pub cache_loads: Vec<Duration>,
    /// Per case (cases that expect an error are not measured).
    pub cases: Vec<CaseFigures>,
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "policy {}: {:.1} KB, sha256 {}",
            self.name,
            self.size as f64 / 1024.0,
            self.sha256.get(..16).unwrap_or(&self.sha256)
        )?;
        writeln!(
            f,
            "  compile (Cranelift, no cache):   {:.1} ms",
            self.compile.as_secs_f64() * 1e3
        )?;
        writeln!(
            f,
            "  load from cache (n={}):          p50 {:.2} ms, p99 {:.2} ms",
            self.cache_loads.len(),
            percentile(&self.cache_loads, 50.0).as_secs_f64() * 1e3,
            percentile(&self.cache_loads, 99.0).as_secs_f64() * 1e3
        )?;
        for case in &self.cases {
            let n = u32::try_from(case.samples.len().max(1)).unwrap_or(u32::MAX);
            let mean = case.samples.iter().sum::<Duration>() / n;
            writeln!(
                f,
                "  evaluate {:<28} p50 {}, p99 {}, mean {} (n={}, fresh instance each, pod {} B)",
                case.name,
                micros(percentile(&case.samples, 50.0)),
                micros(percentile(&case.samples, 99.0)),
                micros(mean),
                case.samples.len(),
                case.pod_bytes
            )?;
        }
        Ok(())
    }
}

/// Loads from the warm cache measured per run.
const CACHE_LOADS: usize = 20;
/// Evaluations before measuring (page in code, fill allocator caches).
const WARM_UP: usize = 20;

/// Measure `bytes` (named `name`): compile without a cache, load through a scratch cache directory (a miss, then
/// [`CACHE_LOADS`] hits), then `iterations` fresh-instance evaluations of every case that expects a pod.
pub fn bench(
    name: &str,
    bytes: &[u8],
    limits: Limits,
    cases: &[Case],
    iterations: usize,
) -> Result<BenchReport, BenchError> {
    let started = Instant::now();
    PolicyEngine::new(EngineConfig::default())?.load(name, bytes, None, limits)?;
    let compile = started.elapsed();

    let scratch = std::env::temp_dir().join(format!("clearml-policy-bench-{}", std::process::id()));
    let scratch_err = |source| BenchError::Scratch {
        path: scratch.clone(),
        source,
    };
    match std::fs::remove_dir_all(&scratch) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(scratch_err(e)),
        _ => {}
    }
    let cached_engine = PolicyEngine::new(EngineConfig::with_cache_dir(Some(scratch.clone())))?;
    let measured = (|| {
        cached_engine.load(name, bytes, None, limits)?;
        let mut cache_loads = Vec::with_capacity(CACHE_LOADS);
        for _ in 0..CACHE_LOADS {
            let t = Instant::now();
            cached_engine.load(name, bytes, None, limits)?;
            cache_loads.push(t.elapsed());
        }
        cache_loads.sort();
        let policy = cached_engine.load(name, bytes, None, limits)?;
        Ok::<_, BenchError>((cache_loads, policy))
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    let (cache_loads, policy) = measured?;

    let mut figures = Vec::new();
    for case in cases
        .iter()
        .filter(|c| !matches!(c.expected, Expected::Error(_)))
    {
        let pod_json = case.pod.to_string();
        let config_json = case.config.to_string();
        let task = TaskContext::from(case.task.clone());
        for _ in 0..WARM_UP {
            policy.transform(&pod_json, &task, &config_json, None)?;
        }
        let mut samples = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let t = Instant::now();
            policy.transform(&pod_json, &task, &config_json, None)?;
            samples.push(t.elapsed());
        }
        samples.sort();
        figures.push(CaseFigures {
            name: case.name.clone(),
            samples,
            pod_bytes: pod_json.len(),
        });
    }
    Ok(BenchReport {
        name: name.to_owned(),
        size: bytes.len(),
        sha256: policy.sha256().to_owned(),
        compile,
        cache_loads,
        cases: figures,
    })
}

/// The realistic pod of the Rust template's `labels-and-resources` case (2 containers, 20 env vars, ~2.7 KB) with
/// a `null` config, compiled in so `policy bench` works on any component without case files.
pub fn builtin_case() -> Result<Case, BenchError> {
    const POD: &str =
        include_str!("../../../examples/rust-policy-template/cases/labels-and-resources/pod.yaml");
    const TASK: &str =
        include_str!("../../../examples/rust-policy-template/cases/labels-and-resources/task.yaml");
    let parse = |file: &str, text: &str| {
        serde_yaml::from_str(text).map_err(|e| CaseError::Parse {
            path: PathBuf::from(file),
            message: e.to_string(),
        })
    };
    Ok(Case {
        name: "builtin-realistic-pod".to_owned(),
        dir: PathBuf::new(),
        task: policy_cases::CaseTask::from_yaml(TASK).map_err(|source| CaseError::Task {
            path: PathBuf::from("builtin task.yaml"),
            source,
        })?,
        pod: parse("builtin pod.yaml", POD)?,
        config: serde_json::Value::Null,
        expected: Expected::Nothing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_by_nearest_rank() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|&m| Duration::from_millis(m))
                .collect::<Vec<_>>()
        };
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
        assert_eq!(percentile(&ms(&[7]), 99.0), Duration::from_millis(7));
        let samples = ms(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        assert_eq!(percentile(&samples, 50.0), Duration::from_millis(6));
        assert_eq!(percentile(&samples, 0.0), Duration::from_millis(1));
        assert_eq!(percentile(&samples, 100.0), Duration::from_millis(11));
        assert_eq!(percentile(&samples, 99.0), Duration::from_millis(11));
    }

    #[test]
    fn the_builtin_case_loads() {
        let case = builtin_case().unwrap();
        assert!(
            case.pod["spec"]["containers"]
                .as_array()
                .is_some_and(|c| c.len() == 2)
        );
    }
}
