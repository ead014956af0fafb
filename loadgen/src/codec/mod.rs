//! Pure, I/O-free codecs of the load generator: probe messages, Engine.IO / Socket.IO packets
//! and Server-Sent Events. Nothing here touches a socket or a clock, so every function is cheap
//! to unit-test, property-test and benchmark.

pub mod engineio;
pub mod probe;
pub mod sse;
