//! Client-side networking: counted TCP streams, one keep-alive HTTP/1.1 connection per client,
//! and the address of the server under test.

mod counting;
mod http;
pub mod tls;

pub use counting::CountingStream;
pub use http::{
    ClientStream, HttpConn, HttpError, TargetAddr, collect_body, connect_tcp, latest_id_header,
};
