//! The chat's own response headers, beside the plain JSON array of `GET /messages`: they make a gap
//! in the history, and a cursor ahead of the log, visible to a client that looks.

/// Messages the cursor asked for that the log had already evicted.
pub const MISSED_HEADER: &str = "x-pushpoll-missed";
/// The oldest id the log still holds, sent with [`MISSED_HEADER`].
pub const OLDEST_ID_HEADER: &str = "x-pushpoll-oldest-id";
/// The newest id the log holds: the client's cursor was ahead of it (the server's ids restarted).
pub const LATEST_ID_HEADER: &str = "x-pushpoll-latest-id";
