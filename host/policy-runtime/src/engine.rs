//! The engine: compile/load components into [`Policy`] values and evaluate them in fresh, limited stores.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap,
};

use crate::bindings::{PolicyError, QueuePolicy, QueuePolicyPre};
use crate::cache::{CacheOutcome, PrecompiledCache, engine_fingerprint};
use crate::error::{EvalError, EvalErrorKind, LoadError};
use crate::inspect;
use crate::state::{EvalLabels, EvalState, LogRecord};
use crate::task::TaskContext;
use crate::workers::{Workers, WorkersError};

/// Per-policy evaluation limits. Defaults: [`Limits::DEFAULT_TIMEOUT_MS`] ms, [`Limits::DEFAULT_MEMORY_MIB`] MiB:
/// the one place they are set (the CLI's flags and the agent take them from here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock budget of one evaluation (instantiation + call), enforced by epoch interruption.
    pub timeout: Duration,
    /// Cap on the policy's linear memory.
    pub memory_bytes: usize,
}

impl Limits {
    /// Default evaluation timeout, in milliseconds: ample for a Rust policy (~0.1 ms), enough for the Python and
    /// JavaScript examples once compiled.
    pub const DEFAULT_TIMEOUT_MS: u64 = 100;
    /// Default memory cap, in MiB.
    pub const DEFAULT_MEMORY_MIB: usize = 64;

    /// Limits from a timeout in milliseconds and a memory cap in MiB (the units of the CLI's flags).
    pub fn from_ms_and_mib(timeout_ms: u64, memory_mib: usize) -> Self {
        Self {
            timeout: Duration::from_millis(timeout_ms),
            memory_bytes: memory_mib.saturating_mul(1024 * 1024),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::from_ms_and_mib(Self::DEFAULT_TIMEOUT_MS, Self::DEFAULT_MEMORY_MIB)
    }
}

/// How the engine is set up. `EngineConfig::default()` suits tests (no disk cache); the agent and the CLI use
/// [`EngineConfig::with_cache_dir`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Directory for precompiled components; `None` compiles every load.
    pub cache_dir: Option<PathBuf>,
    /// Evaluations running at once through [`PolicyEngine::run_blocking`]; also sizes the instance pool.
    pub max_concurrent_evaluations: usize,
    /// Epoch tick: the granularity of timeouts. A deadline fires between `timeout` and `timeout + tick`.
    pub epoch_tick: Duration,
    /// Components larger than this (Python and JavaScript runtimes, ~10-20 MB) are instantiated with the on-demand
    /// allocator; small ones (Rust, ~100 KB) use the pooling allocator, which makes a fresh instance ~2x cheaper.
    pub large_component_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            cache_dir: None,
            max_concurrent_evaluations: cores.max(2),
            epoch_tick: Duration::from_millis(5),
            large_component_bytes: 4 * 1024 * 1024,
        }
    }
}

impl EngineConfig {
    /// Default settings with precompiled components cached in `dir` (the caller decides where: binaries use
    /// `cache_paths`; the library never reads the environment).
    pub fn with_cache_dir(dir: Option<PathBuf>) -> Self {
        Self {
            cache_dir: dir,
            ..Self::default()
        }
    }
}

/// With PAGEMAP_SCAN: at most this many dirtied bytes of a freed memory or table are rewritten in place (the rest is
/// decommitted). A Rust policy dirties well under 256 KiB per evaluation; 1 MiB leaves room at no cost.
const KEEP_RESIDENT_BYTES: usize = 1024 * 1024;

/// Largest memory a pooled instance may have; a policy with a larger cap uses the on-demand allocator.
const POOLED_MAX_MEMORY: usize = 256 * 1024 * 1024;

/// Failure to build the engine itself (a host setup problem, not a policy problem).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// wasmtime refused the configuration.
    #[error("cannot configure the wasmtime engine: {0}")]
    Wasmtime(String),
    /// The cache directory could not be opened.
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    /// The threads that run evaluations could not be started.
    #[error(transparent)]
    Workers(#[from] WorkersError),
}

/// One wasmtime engine and its linker. There are two: pooled (small components) and on-demand (large ones).
struct Backend {
    engine: Engine,
    linker: Linker<EvalState>,
    fingerprint: String,
}

impl Backend {
    fn new(pooled: bool, config: &EngineConfig) -> Result<Self, EngineError> {
        let wasm_err = |e: wasmtime::Error| EngineError::Wasmtime(format!("{e:#}"));
        let mut c = Config::new();
        c.epoch_interruption(true);
        // Compile on the loading thread: a component takes ~0.1-0.2 s either way at start-up, and Cranelift's own
        // thread pool would stay behind with the memory its threads' malloc arenas hold (the agent's RSS after a
        // start that compiled the default chain: 47 MB against 31 MB from the precompiled cache).
        c.parallel_compilation(false);
        if pooled {
            let slots = u32::try_from(config.max_concurrent_evaluations)
                .unwrap_or(u32::MAX / 16)
                .saturating_mul(2)
                .saturating_add(8);
            let mut pool = PoolingAllocationConfig::default();
            pool.total_component_instances(slots)
                .total_core_instances(slots.saturating_mul(8))
                .total_memories(slots.saturating_mul(2))
                .total_tables(slots.saturating_mul(4))
                .max_memory_size(POOLED_MAX_MEMORY);
            // Where Linux's PAGEMAP_SCAN (6.7+) finds the pages an evaluation dirtied, a freed slot is reset by
            // rewriting just those in place and they stay mapped: the next evaluation takes no page faults and the
            // reset no `madvise` with its TLB shootdown across the agent's threads (the default chain: ~430 ->
            // ~320 µs, BENCHMARKS.md). Without the scan, keeping pages resident means a memset of the whole kept
            // prefix on every reset, which made a chain ~20% slower: there slots are decommitted as usual.
            if PoolingAllocationConfig::is_pagemap_scan_available() {
                pool.pagemap_scan(Enabled::Yes)
                    .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
                    .table_keep_resident(KEEP_RESIDENT_BYTES);
            }
            c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&c).map_err(wasm_err)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(wasm_err)?;
        QueuePolicy::add_to_linker::<EvalState, HasSelf<EvalState>>(&mut linker, |s| s)
            .map_err(wasm_err)?;
        let fingerprint = engine_fingerprint(&engine);
        Ok(Self {
            engine,
            linker,
            fingerprint,
        })
    }
}

/// Hand the memory a compilation freed back to the OS: glibc keeps what is freed in its arenas, and compiling the
/// default chain frees megabytes (with the serial compile above: 47 → 43 MB after a start that compiled it, against
/// 31 MB from the cache; `clearml-k8s-agent run` avoids even that by compiling in a child process). Other C
/// libraries give memory back on their own.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_freed_heap() {
    // SAFETY: `malloc_trim` only returns free pages of glibc's arenas to the OS; no live allocation is touched.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_freed_heap() {}

/// The policy host. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct PolicyEngine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    pooled: Backend,
    on_demand: Backend,
    cache: Option<PrecompiledCache>,
    config: EngineConfig,
    workers: Workers,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for EngineInner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl PolicyEngine {
    /// Build the engines and start the epoch ticker.
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        let pooled = Backend::new(true, &config)?;
        let on_demand = Backend::new(false, &config)?;
        let cache = match &config.cache_dir {
            Some(dir) => Some(PrecompiledCache::open(dir)?),
            None => None,
        };
        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(
            [pooled.engine.clone(), on_demand.engine.clone()],
            config.epoch_tick,
            ticker_stop.clone(),
        );
        Ok(Self {
            inner: Arc::new(EngineInner {
                pooled,
                on_demand,
                cache,
                workers: Workers::start(config.max_concurrent_evaluations)?,
                config,
                ticker_stop,
            }),
        })
    }

    /// How many evaluations run at once through [`Self::run_blocking`] (its worker threads).
    pub fn evaluations_at_once(&self) -> usize {
        self.inner.config.max_concurrent_evaluations.max(1)
    }

    /// Where precompiled components are cached, if anywhere.
    pub fn cache_dir(&self) -> Option<&Path> {
        self.inner.cache.as_ref().map(PrecompiledCache::path)
    }

    /// Load a component from a file. The policy is named after the file stem.
    pub fn load_file(
        &self,
        path: &Path,
        pinned_sha256: Option<&str>,
        limits: Limits,
    ) -> Result<Policy, LoadError> {
        let name = path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            policy: name.clone(),
            path: path.to_path_buf(),
            source,
        })?;
        self.load(&name, &bytes, pinned_sha256, limits)
    }

    /// Load a component: verify, check the world, compile or load from cache, pre-instantiate.
    pub fn load(
        &self,
        name: &str,
        bytes: &[u8],
        pinned_sha256: Option<&str>,
        limits: Limits,
    ) -> Result<Policy, LoadError> {
        let started = Instant::now();
        let digest = inspect::sha256_hex(bytes);
        if let Some(pin) = pinned_sha256 {
            let pin = pin
                .trim()
                .trim_start_matches("sha256:")
                .to_ascii_lowercase();
            if pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(LoadError::BadDigest {
                    policy: name.to_string(),
                    value: pin,
                });
            }
            if pin != digest {
                return Err(LoadError::DigestMismatch {
                    policy: name.to_string(),
                    expected: pin,
                    actual: digest,
                });
            }
        }
        let info = inspect::read_component(name, bytes)?;
        let accepted = inspect::check(name, &info)?;

        let inner = &self.inner;
        let large = bytes.len() > inner.config.large_component_bytes
            || limits.memory_bytes > POOLED_MAX_MEMORY;
        let backend = if large {
            &inner.on_demand
        } else {
            &inner.pooled
        };
        let compile_err = |e: wasmtime::Error| LoadError::Compile {
            policy: name.to_string(),
            reason: format!("{e:#}"),
        };
        let (component, outcome) = match &inner.cache {
            Some(cache) => cache
                .load_or_compile(&backend.engine, &backend.fingerprint, &digest, bytes)
                .map_err(compile_err)?,
            None => (
                wasmtime::component::Component::from_binary(&backend.engine, bytes)
                    .map_err(compile_err)?,
                CacheOutcome::Compiled,
            ),
        };
        if outcome != CacheOutcome::Hit {
            release_freed_heap();
        }
        let link_err = |e: wasmtime::Error| LoadError::Link {
            policy: name.to_string(),
            reason: format!("{e:#}"),
        };
        let instance_pre = backend
            .linker
            .instantiate_pre(&component)
            .map_err(link_err)?;
        let pre = QueuePolicyPre::new(instance_pre).map_err(link_err)?;
        let load = LoadStats {
            outcome,
            duration: started.elapsed(),
        };
        tracing::debug!(policy = name, sha256 = %digest, ?outcome, elapsed_ms = load.duration.as_secs_f64() * 1e3, "policy loaded");
        Ok(Policy {
            inner: Arc::new(PolicyInner {
                name: Arc::from(name),
                sha256: digest,
                version: accepted.version,
                size: bytes.len(),
                pre,
                engine: backend.engine.clone(),
                limits,
                epoch_tick: inner.config.epoch_tick,
                load,
            }),
        })
    }

    /// Run CPU-bound policy work off the async reactor, on one of `max_concurrent_evaluations` worker threads
    /// (`crate::workers`). A panic in `work` is re-raised here, as a direct call would.
    pub async fn run_blocking<R, F>(&self, work: F) -> R
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let span = tracing::Span::current();
        self.inner.workers.run(move || span.in_scope(work)).await
    }
}

fn spawn_epoch_ticker(engines: [Engine; 2], tick: Duration, stop: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("policy-epoch".to_string())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                for engine in &engines {
                    engine.increment_epoch();
                }
            }
        });
    if let Err(err) = spawned {
        // Without a ticker no deadline ever fires; say so loudly rather than hang on the first runaway policy.
        tracing::error!(%err, "cannot start the policy epoch ticker: policy timeouts are not enforced");
    }
}

/// How a policy was loaded, for the harness and metrics.
#[derive(Debug, Clone, Copy)]
pub struct LoadStats {
    /// Cache hit, compiled, or recompiled after a corrupt entry.
    pub outcome: CacheOutcome,
    /// Time from bytes to a ready-to-instantiate policy.
    pub duration: Duration,
}

/// The result of one successful evaluation.
#[derive(Debug, Clone)]
pub struct Evaluation<T> {
    /// What the policy returned.
    pub value: T,
    /// What it logged.
    pub logs: Vec<LogRecord>,
    /// Instantiation + call time.
    pub duration: Duration,
}

/// A loaded, verified, pre-instantiated policy. Cheap to clone; immutable; every evaluation gets a fresh store.
#[derive(Clone)]
pub struct Policy {
    inner: Arc<PolicyInner>,
}

struct PolicyInner {
    name: Arc<str>,
    sha256: String,
    version: String,
    size: usize,
    pre: QueuePolicyPre<EvalState>,
    engine: Engine,
    limits: Limits,
    epoch_tick: Duration,
    load: LoadStats,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("name", &self.inner.name)
            .field("sha256", &self.inner.sha256)
            .field("version", &self.inner.version)
            .finish_non_exhaustive()
    }
}

/// Where an evaluation happens, for error messages and log fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct EvalContext<'a> {
    /// Queue name.
    pub queue: Option<&'a str>,
    /// ClearML task id.
    pub task_id: Option<&'a str>,
}

impl Policy {
    /// Name of the policy (plugin name or file stem).
    pub fn name(&self) -> &str {
        &self.inner.name
    }
    /// sha256 of the component, hex.
    pub fn sha256(&self) -> &str {
        &self.inner.sha256
    }
    /// Version of the queue-policy world it implements.
    pub fn world_version(&self) -> &str {
        &self.inner.version
    }
    /// Component size in bytes.
    pub fn size(&self) -> usize {
        self.inner.size
    }
    /// Its evaluation limits.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }
    /// How it was loaded.
    pub fn load_stats(&self) -> LoadStats {
        self.inner.load
    }

    /// Ask the policy whether `config_json` is a valid configuration for it.
    pub fn validate_config(
        &self,
        config_json: &str,
        ctx: EvalContext<'_>,
    ) -> Result<Evaluation<()>, EvalError> {
        self.evaluate(ctx, |instance, store| {
            instance
                .clearml_queue_policy_policy()
                .call_validate_config(store, config_json)
        })
    }

    /// Transform `pod_json` for `task`. Returns the policy's output as it came (see [`crate::PolicyChain`] for the
    /// checked, parsed form).
    pub fn transform(
        &self,
        pod_json: &str,
        task: &TaskContext,
        config_json: &str,
        queue: Option<&str>,
    ) -> Result<Evaluation<String>, EvalError> {
        let wit_task = task.to_wit();
        let ctx = EvalContext {
            queue: task.queue_for_messages(queue),
            task_id: Some(task.id.as_str()).filter(|t| !t.is_empty()),
        };
        self.evaluate(ctx, |instance, store| {
            instance.clearml_queue_policy_policy().call_transform(
                store,
                pod_json,
                &wit_task,
                config_json,
            )
        })
    }

    fn error(&self, ctx: EvalContext<'_>, kind: EvalErrorKind) -> EvalError {
        EvalError {
            policy: self.inner.name.to_string(),
            queue: ctx.queue.map(str::to_string),
            task_id: ctx.task_id.map(str::to_string),
            kind,
        }
    }

    fn evaluate<R>(
        &self,
        ctx: EvalContext<'_>,
        call: impl FnOnce(
            &QueuePolicy,
            &mut Store<EvalState>,
        ) -> wasmtime::Result<Result<R, PolicyError>>,
    ) -> Result<Evaluation<R>, EvalError> {
        let inner = &*self.inner;
        let started = Instant::now();
        let labels = EvalLabels {
            policy: inner.name.clone(),
            queue: ctx.queue.map(str::to_string),
            task_id: ctx.task_id.map(str::to_string),
        };
        let mut store = Store::new(
            &inner.engine,
            EvalState::new(labels, inner.limits.memory_bytes),
        );
        store.limiter(|state| &mut state.limiter);
        // Ticks until the deadline: the timeout rounded up, plus one because the current tick is already partly
        // over. The deadline is relative to the engine's epoch now, so each store gets its own full budget.
        let tick = inner.epoch_tick.as_nanos().max(1);
        let ticks = inner.limits.timeout.as_nanos().div_ceil(tick) + 1;
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
        store.epoch_deadline_trap();

        let result = inner
            .pre
            .instantiate(&mut store)
            .and_then(|instance| call(&instance, &mut store));
        let duration = started.elapsed();
        match result {
            Ok(Ok(value)) => Ok(Evaluation {
                value,
                logs: store.data_mut().take_logs(),
                duration,
            }),
            Ok(Err(policy_error)) => {
                store.data_mut().take_logs();
                Err(self.error(
                    ctx,
                    match policy_error {
                        PolicyError::Reject(m) => EvalErrorKind::Rejected(m),
                        PolicyError::InvalidConfig(m) => EvalErrorKind::InvalidConfig(m),
                        PolicyError::Internal(m) => EvalErrorKind::Internal(m),
                    },
                ))
            }
            Err(err) => {
                let kind = self.classify(&err, store.data(), duration);
                store.data_mut().take_logs();
                Err(self.error(ctx, kind))
            }
        }
    }

    /// Turn a wasmtime error into what actually happened: a hit memory cap or an epoch interrupt are reported as
    /// such, whatever trap the guest ended in; anything else is a trap, with the policy's last stderr line (a Rust
    /// panic message, a Python exception) when there is one.
    fn classify(
        &self,
        err: &wasmtime::Error,
        state: &EvalState,
        elapsed: Duration,
    ) -> EvalErrorKind {
        if state.limiter.exceeded {
            return EvalErrorKind::MemoryLimit {
                limit_bytes: self.inner.limits.memory_bytes,
            };
        }
        if err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return EvalErrorKind::Timeout {
                limit: self.inner.limits.timeout,
                elapsed,
            };
        }
        let mut message = match err.downcast_ref::<Trap>() {
            Some(trap) => trap.to_string(),
            None => err.root_cause().to_string(),
        };
        if let Some(line) = state.stderr_tail() {
            message.push_str(&format!(" (policy stderr: {line})"));
        }
        EvalErrorKind::Trap(message)
    }
}
