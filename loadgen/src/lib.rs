//! pushpoll's load generator: thousands of simulated chat clients per delivery strategy,
//! measuring delivery latency (coordinated-omission aware), loss, requests and bytes on the wire,
//! and the CPU and memory it all cost.
//!
//! # Layout
//! - [`codec`]: pure codecs: probe messages, Engine.IO / Socket.IO packets, SSE parsing.
//! - [`scenario`]: the validated scenario and strategy specs (`poll@1s`, `socketio`, …).
//! - [`results`]: the result schema behind `results.json` and every report.

pub mod codec;
pub mod report;
pub mod results;
pub mod scenario;
