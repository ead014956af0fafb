//! What pushpoll's chat server and its load generator both speak and count, with no server or
//! runtime framework in it:
//!
//! - [`count`]: the counting stream and its [`count::ByteTally`], so both ends of a connection
//!   count bytes at the socket the same way; [`tls`]: plain or TLS behind one stream type.
//! - [`probe`]: the probe text a sender posts (who sent it, when it was meant to leave).
//! - [`engineio`]: Engine.IO v4 packets and polling payloads, Socket.IO v5 packets (client side).
//! - [`sse`]: the incremental Server-Sent Events parser.
//! - [`headers`]: the chat's own response headers; [`prometheus`]: reading `/metrics` text.
//!
//! The codecs are pure: nothing here touches a socket or a clock, so every function is cheap to
//! unit-test, property-test and benchmark.

pub mod count;
pub mod engineio;
pub mod headers;
pub mod probe;
pub mod prometheus;
pub mod sse;
pub mod tls;
