//! pushpoll's chat server: one in-memory message log served through four doors, so push and
//! polling can be compared on the same process with the same settings.
//!
//! # Layout
//! - [`config`]: every setting as a clap flag ([`Config`]).
//! - [`log`]: the bounded [`MessageLog`] with monotonic ids and a change signal.
//! - `routes`: the HTTP doors (`GET`/`POST /messages`, long poll, `GET /events`), page, metrics.
//! - `socketio`: the Socket.IO door and the broadcaster that follows the log; `malformed`: what
//!   it does with malformed events (counted, logged within a budget, floods disconnected), with
//!   `rate`, a per-second limit.
//! - [`metrics`]: Prometheus metrics, [`net`]: byte counting and TCP options at the connection.
//! - `accept`, `connection`, `reserve`, `body_deadline`, [`limits`]: serving connections under
//!   the limits (timeouts, connection cap, HTTP/2 streams and buffers; README "Limits").
//! - [`broker`]: the log shared by several nodes through Redis (`--redis`).
//! - [`process`]: the server as a process (logging, bind, announce, serve until a signal), for
//!   `chat-server` and the load generator's child alike.
//! - `server`: [`connect`] (the log, in memory or on Redis), [`run`], [`spawn`] and graceful
//!   shutdown; `signal`: [`shutdown_signal`].

mod accept;
mod api_error;
mod assets;
mod body_deadline;
pub mod broker;
pub mod config;
mod connection;
mod engineio_errors;
pub mod input;
pub mod limits;
pub mod log;
mod malformed;
pub mod metrics;
pub mod net;
mod own_head;
pub mod process;
mod rate;
mod reserve;
mod routes;
mod server;
mod signal;
mod socketio;
mod state;
pub mod tls;

pub use config::Config;
pub use log::{AppendError, Ingested, Message, MessageLog, Page, PageInfo, StoredMessage};
pub use routes::{LATEST_ID_HEADER, MISSED_HEADER, OLDEST_ID_HEADER};
pub use server::{Backend, RunningServer, ServerError, connect, run, run_with, spawn};
pub use signal::shutdown_signal;
