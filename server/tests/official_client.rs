//! Compatibility with the official Socket.IO client: `web/test/official-client.mjs` (pinned
//! `socket.io-client`) connects over WebSocket and over polling, receives an HTTP-posted message,
//! and emits messages that HTTP clients then see.

mod common;

use std::path::PathBuf;
use std::process::Stdio;

use common::{get_json, start};
use serde_json::Value;

fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web")
}

#[tokio::test]
async fn the_official_client_works_over_websocket_and_polling() {
    let web = web_dir();
    assert!(
        web.join("node_modules/socket.io-client/package.json")
            .exists(),
        "web/node_modules/socket.io-client is missing: run the tests with `scripts/test` (it runs `npm ci --prefix web`)"
    );
    let server = start().await;
    let addr = server.addr();
    let child = tokio::process::Command::new("node")
        .arg(web.join("test/official-client.mjs"))
        .arg(format!("http://{addr}"))
        .current_dir(&web)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("`node` runs (install Node.js 18 or newer)");
    let output = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the Node script finishes within 30 s")
        .expect("node output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "official client failed:\n{stdout}\n{stderr}"
    );

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
