//! What lives in a `Store` for one evaluation: an empty WASI context, the memory cap, and the policy's log.
//! A fresh `EvalState` is built for every evaluation, so nothing leaks from one task to the next.

use std::sync::{Arc, Mutex};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::bindings::{self, LogLevel};

/// At most this many log records per evaluation; later ones are counted, not kept.
const MAX_LOG_RECORDS: usize = 64;
/// At most this many bytes per log message, and per captured stdout/stderr stream.
const MAX_LOG_BYTES: usize = 4096;
const MAX_STDIO_BYTES: usize = 16 * 1024;

/// Who is being evaluated, for the fields on every log line a policy emits.
#[derive(Debug, Clone, Default)]
pub(crate) struct EvalLabels {
    pub policy: Arc<str>,
    pub queue: Option<String>,
    pub task_id: Option<String>,
}

/// A line a policy logged (through the `host.log` import, or written to stdout/stderr).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogRecord {
    /// `debug`, `info`, `warn`, `error`; stdout is `info`, stderr is `warn`.
    pub level: &'static str,
    /// The message, truncated to a few KiB.
    pub message: String,
}

pub(crate) struct EvalState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryCap,
    pub(crate) labels: EvalLabels,
    pub(crate) logs: Vec<LogRecord>,
    dropped_logs: usize,
    stdout: CappedPipe,
    stderr: CappedPipe,
}

impl EvalState {
    pub(crate) fn new(labels: EvalLabels, memory_limit_bytes: usize) -> Self {
        let stdout = CappedPipe::new(MAX_STDIO_BYTES);
        let stderr = CappedPipe::new(MAX_STDIO_BYTES);
        // Empty context: no preopened directories, no env, no args, no network (the builder's defaults deny
        // sockets); stdin is closed. Only stdout/stderr are wired, into capped in-memory buffers.
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryCap::new(memory_limit_bytes),
            labels,
            logs: Vec::new(),
            dropped_logs: 0,
            stdout,
            stderr,
        }
    }

    fn push_log(&mut self, level: &'static str, mut message: String) {
        if self.logs.len() >= MAX_LOG_RECORDS {
            self.dropped_logs += 1;
            return;
        }
        truncate_utf8(&mut message, MAX_LOG_BYTES);
        let l = &self.labels;
        let (policy, queue, task_id) = (&*l.policy, l.queue.as_deref(), l.task_id.as_deref());
        match level {
            "error" => tracing::error!(policy, queue, task_id, "{message}"),
            "warn" => tracing::warn!(policy, queue, task_id, "{message}"),
            "info" => tracing::info!(policy, queue, task_id, "{message}"),
            _ => tracing::debug!(policy, queue, task_id, "{message}"),
        }
        self.logs.push(LogRecord { level, message });
    }

    /// Move what the policy wrote to stdout/stderr into the log, and return the log. Called once, after the call.
    pub(crate) fn take_logs(&mut self) -> Vec<LogRecord> {
        for (pipe, level) in [(self.stdout.clone(), "info"), (self.stderr.clone(), "warn")] {
            let text = pipe.take();
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                self.push_log(level, line.to_string());
            }
        }
        if self.dropped_logs > 0 {
            let n = self.dropped_logs;
            self.dropped_logs = 0;
            self.logs.push(LogRecord {
                level: "warn",
                message: format!(
                    "{n} more log records dropped (limit {MAX_LOG_RECORDS} per evaluation)"
                ),
            });
        }
        std::mem::take(&mut self.logs)
    }

    /// The end of what the policy wrote to stderr, as one line: the last two meaningful lines (a Rust panic's
    /// "panicked at file:line:" and its message; a Python traceback's last frame and exception).
    pub(crate) fn stderr_tail(&self) -> Option<String> {
        let text = self.stderr.peek();
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
            .collect();
        let tail = lines[lines.len().saturating_sub(2)..].join(" ");
        (!tail.is_empty()).then_some(tail)
    }
}

impl WasiView for EvalState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl bindings::clearml::queue_policy::types::Host for EvalState {}

impl bindings::clearml::queue_policy::host::Host for EvalState {
    fn log(&mut self, level: LogLevel, message: String) {
        let level = match level {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        };
        self.push_log(level, message);
    }
}

fn truncate_utf8(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("… (truncated)");
    }
}

// === impl MemoryCap ===

/// Caps linear memory (and table) growth for one evaluation and remembers whether the cap was hit, so a failed
/// call can be reported as "memory limit" rather than as whatever trap the guest's allocator ends in.
pub(crate) struct MemoryCap {
    limit_bytes: usize,
    pub(crate) exceeded: bool,
}

/// Generous: componentize-py/js runtimes have large function tables; the cap is about memory, not tables.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

impl MemoryCap {
    fn new(limit_bytes: usize) -> Self {
        Self {
            limit_bytes,
            exceeded: false,
        }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit_bytes {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(maximum.is_none_or(|max| desired <= max))
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS && maximum.is_none_or(|max| desired <= max))
    }
}

// === impl CappedPipe ===

/// stdout/stderr for a policy: an in-memory buffer that keeps the first bytes and silently drops the rest, so a
/// chatty policy is never failed for printing (unlike a pipe that traps when full).
#[derive(Clone)]
struct CappedPipe {
    inner: Arc<Mutex<Vec<u8>>>,
    capacity: usize,
}

impl CappedPipe {
    fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Vec::new())),
            capacity,
        }
    }

    fn append(&self, bytes: &[u8]) {
        if let Ok(mut buf) = self.inner.lock() {
            let room = self.capacity.saturating_sub(buf.len());
            buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
    }

    fn take(&self) -> String {
        self.inner
            .lock()
            .map(|mut buf| String::from_utf8_lossy(&std::mem::take(&mut *buf)).into_owned())
            .unwrap_or_default()
    }

    fn peek(&self) -> String {
        self.inner
            .lock()
            .map(|buf| String::from_utf8_lossy(&buf).into_owned())
            .unwrap_or_default()
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        // Always accept a full chunk; `append` drops what is over the cap.
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for CappedPipe {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.append(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
