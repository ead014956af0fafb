//! Compatibility with the official Socket.IO client: `web/test/official-client.mjs` (pinned
//! `socket.io-client`) connects over WebSocket and over polling, receives an HTTP-posted message,
//! and emits messages that HTTP clients then see.

mod common;

use common::{get_json, start};
use serde_json::Value;

#[tokio::test]
async fn the_official_client_works_over_websocket_and_polling() {
    let server = start().await;
    let addr = server.addr();
    let stdout = common::run_node_script("official-client.mjs", addr).await;

    let summary: Value = serde_json::from_str(stdout.trim()).expect("one JSON summary line");
    for transport in ["websocket", "polling"] {
        let seen = summary["transports"][transport]
            .as_array()
            .expect("ids per transport");
        assert_eq!(
            seen.len(),
            3,
            "{transport} saw the HTTP message and both emits: {summary}"
        );
        assert_eq!(seen[0], 1, "{transport} got the HTTP-posted message first");
    }
    let stored = get_json(addr, "/messages").await;
    let stored = stored.as_array().expect("array");
    assert_eq!(stored.len(), 3);
    for emitted in summary["emitted"].as_array().expect("emitted") {
        assert!(
            stored
                .iter()
                .any(|m| m["name"] == emitted["name"] && m["message"] == emitted["message"]),
            "HTTP clients see {emitted}"
        );
    }
}
