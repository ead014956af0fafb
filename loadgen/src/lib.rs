//! pushpoll's load generator: thousands of simulated chat clients per delivery strategy,
//! measuring delivery latency (coordinated-omission aware), loss, requests and bytes on the wire,
//! and the CPU and memory it all cost.
//!
//! # The API
//! A [`scenario::Scenario`] and a [`scenario::StrategySpec`] go in, a [`results::RunResult`]
//! comes out ([`driver::run_strategy`], with progress and cancellation through
//! [`driver::RunHooks`]); a [`sweep::Sweep`] runs several into one report folder. The schema, the
//! scenario and every report format come from `pushpoll_report` (re-exported as [`scenario`],
//! [`results`], [`bootstrap`] and, with the `report` command, [`report`]); the codecs and the
//! counting stream from `pushpoll_wire`.
//!
//! - [`cli`]: the command line: flags → a validated scenario (`cli::scenario_args`), `run`,
//!   `compare`, `capacity`, the hidden `serve-chat`.
//! - [`sweep`]: the one orchestration: results header, folder, exit code, Ctrl-C policy.
//! - [`driver`]: one run, phase by phase; `summary` turns its counts into a result.
//! - [`capacity`]: the search for the largest client count a server holds.
//! - [`shard`]: one run split over processes or machines (`run --shard I/N`, `--workers K`)
//!   and `loadgen merge`, exact.
//! - [`profile_check`]: `loadgen profile check`.
//! - [`bench_support`]: receiver fleets and single timed deliveries for the criterion benches.
//!
//! # Internals
//! - `target`: the server under test (child process or `--target`); `nodes`: several nodes of
//!   one chat; `control`: capability check, watchdog, /metrics scrapes; `local_pid`: which local
//!   process listens on a port.
//! - `strategy`: the receivers, one module per strategy; `sender`: open-loop probe senders;
//!   `sio_send`: sends by Socket.IO event.
//! - `schedule`: fixed tick arithmetic; `recorder`: deliveries, dedupe, histograms; `counters`:
//!   requests, errors and bytes; `context`: what a run's tasks share.
//! - `net`: counted TCP streams and per-client HTTP/1.1 connections; `access`: TLS, headers,
//!   login; `profile`: target profiles; `safety`: request-rate ceilings and the refusal guard.
//! - `resources`: CPU, memory and the open-file limit; `thread_cpu`: CPU per thread; `loop_lag`:
//!   the runtime's event-loop lag; `progress`: the live bar.

// The engine's API: what the binary, the benches and the tests use.
pub mod bench_support;
pub mod capacity;
pub mod cli;
pub mod driver;
pub mod profile_check;
pub mod report;
pub mod shard;
pub mod sweep;
pub use pushpoll_report::{bootstrap, results, scenario};

// Internals.
pub(crate) mod access;
pub(crate) mod context;
pub(crate) mod control;
pub(crate) mod counters;
pub(crate) mod local_pid;
pub(crate) mod loop_lag;
pub(crate) mod net;
pub(crate) mod nodes;
pub(crate) mod profile;

pub(crate) mod progress;
pub(crate) mod recorder;
pub(crate) mod resources;
pub(crate) mod safety;
pub(crate) mod schedule;
pub(crate) mod sender;
pub(crate) mod sio_send;
pub(crate) mod strategy;
pub(crate) mod summary;
pub(crate) mod target;
pub(crate) mod thread_cpu;

/// Pieces some integration tests and benches drive directly (a counted connection from a source
/// address, an event sender's socket, a child server, a decoded receive item): public for them,
/// not part of the engine's API.
#[doc(hidden)]
pub mod parts {
    pub use crate::counters::WireCounters;
    pub use crate::net::{TargetAddr, connect_tcp};
    pub use crate::sio_send::EventConn;
    pub use crate::strategy::Item;
    pub use crate::target::ChildServer;
}
