//! What the server's and the generator's integration tests both start: real services on free
//! loopback ports, stopped when dropped. A test dependency only.

pub mod redis;
