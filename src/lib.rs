//! Root package of the pushpoll workspace: owns `benches/` and cross-crate tests.
