//! pushpoll's load generator: thousands of simulated chat clients per delivery strategy,
//! measuring delivery latency (coordinated-omission aware), loss, requests and bytes on the wire,
//! and the CPU and memory it all cost.
//!
//! # Layout
//! - The codecs (probe, Engine.IO / Socket.IO, SSE) and the counting stream live in `pushpoll_wire`.
//! - [`scenario`]: the validated scenario and strategy specs (`poll@1s`, `socketio`, …).
//! - [`results`]: the result schema behind `results.json` and every report.
//! - [`cli`]: the command line (`loadgen run`, the hidden `serve-chat`).
//! - [`driver`]: one run, phase by phase ([`driver::run_strategy`]); [`summary`] turns its
//!   counts into a [`results::RunResult`].
//! - [`target`]: the server under test (child process or `--target`); [`control`]: capability
//!   check, watchdog, /metrics scrapes.
//! - [`strategy`]: the receivers, one module per strategy; [`sender`]: open-loop probe senders.
//! - [`schedule`]: fixed tick arithmetic; [`recorder`]: deliveries, dedupe, histograms;
//!   [`counters`]: requests, errors and bytes; [`context`]: what a run's tasks share.
//! - [`local_pid`]: which local process listens on a `--target` port.
//! - [`net`]: counted TCP streams and per-client HTTP/1.1 connections; [`resources`]: CPU,
//!   memory and the open-file limit; [`progress`]: the live bar.
//! - [`bootstrap`]: percentile confidence intervals resampled over probes; [`loop_lag`]: the
//!   generator runtime's event-loop lag per worker thread; [`thread_cpu`]: CPU per thread of
//!   this process.
//! - [`bench_support`]: receiver fleets and single timed deliveries for the criterion benches.
//! - [`compare`]: `loadgen compare`, the sweep over strategies; [`report`]: every report format
//!   (`loadgen report`), rendered from `results.json`; [`capacity`]: `loadgen capacity` (and
//!   `compare --capacity`), the search for the largest client count a server holds.
//! - [`shard`]: one run split over processes or machines (`run --shard I/N`, `run --workers K`)
//!   and `loadgen merge`, exact.

pub mod access;

pub use pushpoll_report::{bootstrap, results, scenario};
pub mod bench_support;
pub mod capacity;
pub mod cli;
pub mod context;
pub mod control;
pub mod counters;
pub mod driver;
pub mod local_pid;
pub mod loop_lag;
pub mod net;
pub mod nodes;
pub mod profile;
pub mod profile_check;
pub mod progress;
pub mod recorder;
pub mod report;
pub mod resources;
pub mod safety;
pub mod schedule;
pub mod sender;
pub mod shard;
pub mod sio_send;
pub mod strategy;
pub mod summary;
pub mod sweep;
pub mod target;
pub mod thread_cpu;
