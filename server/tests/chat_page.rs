//! The chat page's script (`web/app.js`) against a real server, driven by `web/test/page.mjs` in
//! Node with a minimal fake DOM: history as text, push with the official client, own-message
//! round trip, long poll, polling every N s, and the fallback when the client bundle is missing.

mod common;

use serde_json::Value;

#[tokio::test]
async fn the_chat_page_works_in_every_mode() {
    let server = common::start().await;
    let stdout = common::run_node_script("page.mjs", server.addr()).await;
    let summary: Value = serde_json::from_str(stdout.trim()).expect("one JSON summary line");
    assert_eq!(
        summary["checks"].as_array().map(Vec::len),
        Some(7),
        "{summary}"
    );
}
