//! Every HTTP route and every bad-input row of the API table, status and body asserted.

mod common;

use common::{client, get_json, ids, post, start, start_with, url};
use serde_json::{Value, json};

async fn error_of(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("error body is JSON");
    body["error"]
        .as_str()
        .expect("{\"error\": \"...\"}")
        .to_owned()
}

#[tokio::test]
async fn page_health_metrics_and_client_bundle_are_served() {
    let server = start().await;
    let addr = server.addr();
    let http = client();

    let page = http.get(url(addr, "/")).send().await.expect("GET /");
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/html"))
    );
    let html = page.text().await.expect("html");
    assert!(html.contains("/socket.io/socket.io.js") && html.contains("app.js"));
    for asset in ["/app.js", "/style.css"] {
        assert_eq!(
            http.get(url(addr, asset))
                .send()
                .await
                .expect("asset")
                .status(),
            200,
            "{asset}"
        );
    }

    let health = http
        .get(url(addr, "/healthz"))
        .send()
        .await
        .expect("GET /healthz");
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<Value>().await.expect("json"),
        json!({"status": "ok"})
    );

    let bundle = http
        .get(url(addr, "/socket.io/socket.io.js"))
        .send()
        .await
        .expect("GET bundle");
    assert_eq!(
        bundle.status(),
        200,
        "run scripts/test (npm ci --prefix web) first"
    );
    assert!(
        bundle.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.contains("javascript"))
    );
    assert!(bundle.text().await.expect("js").contains("io"));

    let metrics = http
        .get(url(addr, "/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.expect("text");
    for name in [
        "pushpoll_http_requests_total{route=\"GET /healthz\",status=\"200\"} 1",
        "pushpoll_http_response_body_bytes_total{route=\"GET /healthz\"} 15",
        "pushpoll_tcp_connections_accepted_total",
        "pushpoll_tcp_bytes_received_total",
        "pushpoll_tcp_bytes_sent_total",
        "pushpoll_sockets_connected{transport=\"websocket\"} 0",
        "pushpoll_sockets_connected{transport=\"polling\"} 0",
        "pushpoll_broadcasts_total 0",
        "pushpoll_socket_send_overflows_total 0",
        "pushpoll_log_messages 0",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }

    let missing = http
        .get(url(addr, "/nope"))
        .send()
        .await
        .expect("GET /nope");
    assert_eq!(missing.status(), 404);
    assert!(error_of(missing).await.contains("README"));
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn missing_client_bundle_is_a_404_with_a_hint() {
    let config = chat_server::Config {
        web_dir: Some("no-such-web-dir".into()),
        ..common::config()
    };
    let server = start_with(config).await;
    let response = client()
        .get(url(server.addr(), "/socket.io/socket.io.js"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 404);
    assert!(error_of(response).await.contains("npm ci --prefix web"));
}

#[tokio::test]
async fn posts_are_stored_and_listed_oldest_first() {
    let server = start().await;
    let addr = server.addr();
    assert_eq!(get_json(addr, "/messages").await, json!([]));

    let first = post(addr, "ann", "hi <b>there</b>").await;
    assert_eq!(first["id"], 1);
    assert_eq!(first["name"], "ann");
    assert_eq!(first["message"], "hi <b>there</b>");
    assert!(
        first["ts"]
            .as_u64()
            .is_some_and(|ts| ts > 1_600_000_000_000)
    );

    let form = client()
        .post(url(addr, "/messages"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=bob&message=yo%20%E2%9C%93")
        .send()
        .await
        .expect("form POST");
    assert_eq!(form.status(), 201);
    let second: Value = form.json().await.expect("json");
    assert_eq!(
        (second["id"].as_u64(), second["message"].as_str()),
        (Some(2), Some("yo ✓"))
    );

    let all = get_json(addr, "/messages").await;
    assert_eq!(all, json!([first, second]));
    assert_eq!(get_json(addr, "/messages?since=1").await, json!([second]));
    assert_eq!(ids(&get_json(addr, "/messages?since=0&limit=1").await), [1]);
    assert_eq!(get_json(addr, "/messages?since=2").await, json!([]));
}

#[tokio::test]
async fn etag_answers_304_until_something_changes() {
    let server = start().await;
    let addr = server.addr();
    post(addr, "ann", "one").await;
    let http = client();
    let first = http
        .get(url(addr, "/messages?since=1"))
        .send()
        .await
        .expect("GET");
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().expect("ascii").to_owned();

    let again = http
        .get(url(addr, "/messages?since=1"))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("GET");
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().expect("ascii"), etag);
    assert!(again.bytes().await.expect("body").is_empty());

    post(addr, "ann", "two").await;
    let changed = http
        .get(url(addr, "/messages?since=1"))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("GET");
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()["etag"].to_str().expect("ascii"), etag);
    assert_eq!(ids(&changed.json().await.expect("json")), [2]);
}

#[tokio::test]
async fn evicted_history_is_signalled_in_headers() {
    let server = start_with(chat_server::Config {
        capacity: 3,
        ..common::config()
    })
    .await;
    let addr = server.addr();
    for i in 0..5 {
        post(addr, "ann", &format!("m{i}")).await;
    }
    let http = client();
    let whole = http.get(url(addr, "/messages")).send().await.expect("GET");
    assert_eq!(whole.headers()["x-pushpoll-missed"], "2");
    assert_eq!(whole.headers()["x-pushpoll-oldest-id"], "3");
    assert_eq!(ids(&whole.json().await.expect("json")), [3, 4, 5]);

    let cursor = http
        .get(url(addr, "/messages?since=1"))
        .send()
        .await
        .expect("GET");
    assert_eq!(cursor.headers()["x-pushpoll-missed"], "1");
    let caught_up = http
        .get(url(addr, "/messages?since=2"))
        .send()
        .await
        .expect("GET");
    assert!(caught_up.headers().get("x-pushpoll-missed").is_none());
    assert_eq!(ids(&caught_up.json().await.expect("json")), [3, 4, 5]);

    // A cursor from the future (e.g. before a restart) learns the real latest id at once.
    let ahead = http
        .get(url(addr, "/messages?since=99&wait=30s"))
        .send()
        .await
        .expect("GET");
    assert_eq!(ahead.headers()["x-pushpoll-latest-id"], "5");
    assert_eq!(ahead.json::<Value>().await.expect("json"), json!([]));
}

#[tokio::test]
async fn long_poll_answers_on_new_message_or_when_wait_runs_out() {
    let server = start().await;
    let addr = server.addr();
    let waiting = tokio::spawn(async move { get_json(addr, "/messages?since=0&wait=30s").await });
    common::wait_for_metric(addr, "pushpoll_long_polls_waiting", |v| v == 1.0).await;
    let stored = post(addr, "ann", "wake up").await;
    let answer = tokio::time::timeout(common::DEADLINE, waiting)
        .await
        .expect("answered")
        .expect("task");
    assert_eq!(answer, json!([stored]));

    // Nothing new: an empty array when the wait runs out.
    assert_eq!(
        get_json(addr, "/messages?since=1&wait=50ms").await,
        json!([])
    );
    // Already something newer: no waiting at all.
    assert_eq!(
        ids(&get_json(addr, "/messages?since=0&wait=60s").await),
        [1]
    );
}

#[tokio::test]
async fn bad_posts_get_json_errors_and_store_nothing() {
    let server = start().await;
    let addr = server.addr();
    post(addr, "ann", "keep me").await;
    let http = client();
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "application/json",
            b"{\"name\": \"a\", ".to_vec(),
            400,
            "malformed JSON",
        ),
        (
            "application/x-www-form-urlencoded",
            b"name=a&message=%zz".to_vec(),
            400,
            "malformed form",
        ),
        (
            "application/x-www-form-urlencoded",
            vec![b'n', b'=', 0xff],
            400,
            "malformed form",
        ),
        (
            "application/json",
            b"{\"message\": \"hi\"}".to_vec(),
            422,
            "`name` is missing",
        ),
        (
            "application/json",
            b"{\"name\": \"a\"}".to_vec(),
            422,
            "`message` is missing",
        ),
        (
            "application/json",
            b"{\"name\": 1, \"message\": \"hi\"}".to_vec(),
            422,
            "`name` must be a string",
        ),
        (
            "application/json",
            b"{\"name\": \"a\", \"message\": [1]}".to_vec(),
            422,
            "`message` must be a string",
        ),
        (
            "application/json",
            b"{\"name\": \"a\", \"message\": \"\"}".to_vec(),
            422,
            "empty",
        ),
        (
            "application/json",
            b"[\"a\", \"b\"]".to_vec(),
            422,
            "JSON object",
        ),
        (
            "application/x-www-form-urlencoded",
            b"name=a".to_vec(),
            422,
            "`message` is missing",
        ),
        (
            "application/x-www-form-urlencoded",
            b"name=a&message=".to_vec(),
            422,
            "empty",
        ),
        ("text/plain", b"hello".to_vec(), 415, "application/json"),
        (
            "",
            b"{\"name\": \"a\", \"message\": \"b\"}".to_vec(),
            415,
            "application/json",
        ),
    ];
    for (content_type, body, status, needle) in cases {
        let mut request = http.post(url(addr, "/messages")).body(body.clone());
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.expect("POST");
        let shown = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(response.status(), status, "{content_type} {shown}");
        let error = error_of(response).await;
        assert!(
            error.contains(needle),
            "{shown}: {error:?} lacks {needle:?}"
        );
    }

    let big = json!({ "name": "a", "message": "x".repeat(9000) });
    let response = http
        .post(url(addr, "/messages"))
        .json(&big)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 413);
    assert!(error_of(response).await.contains("--max-message-bytes"));
    // Body under the limit, content over it (form escapes shrink): still 413.
    let small = chat_server::Config {
        max_message_bytes: 10,
        ..common::config()
    };
    let small = start_with(small).await;
    let response = http
        .post(url(small.addr(), "/messages"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=abcdef&message=ghijk")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 413);

    let all = get_json(addr, "/messages").await;
    assert_eq!(ids(&all), [1], "bad input must not touch the log");
}

#[tokio::test]
async fn bad_query_parameters_are_400() {
    let server = start().await;
    let addr = server.addr();
    for (query, needle) in [
        ("since=abc", "`since`"),
        ("since=-1", "`since`"),
        ("limit=0", "`limit`"),
        ("limit=many", "`limit`"),
        ("wait=soon", "`wait`"),
        ("since=1&wait=-5s", "`wait`"),
    ] {
        let response = client()
            .get(url(addr, &format!("/messages?{query}")))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 400, "{query}");
        let error = error_of(response).await;
        assert!(error.contains(needle), "{query}: {error}");
    }
    let sse = client()
        .get(url(addr, "/events"))
        .header("last-event-id", "x")
        .send()
        .await
        .expect("GET");
    assert_eq!(sse.status(), 400);
    assert!(error_of(sse).await.contains("Last-Event-ID"));
    let sse = client()
        .get(url(addr, "/events?since=x"))
        .send()
        .await
        .expect("GET");
    assert_eq!(sse.status(), 400);
}

#[tokio::test]
async fn per_route_counters_follow_requests() {
    let server = start().await;
    let addr = server.addr();
    post(addr, "ann", "hi").await;
    let bad = client()
        .post(url(addr, "/messages"))
        .body("x")
        .send()
        .await
        .expect("POST");
    assert_eq!(bad.status(), 415);
    get_json(addr, "/messages").await;
    let m = |s: &'static str| common::metric(addr, s);
    assert_eq!(
        m("pushpoll_http_requests_total{route=\"POST /messages\",status=\"201\"}").await,
        1.0
    );
    assert_eq!(
        m("pushpoll_http_requests_total{route=\"POST /messages\",status=\"415\"}").await,
        1.0
    );
    assert_eq!(
        m("pushpoll_http_requests_total{route=\"GET /messages\",status=\"200\"}").await,
        1.0
    );
    assert_eq!(
        m("pushpoll_messages_stored_total{door=\"http\"}").await,
        1.0
    );
    assert_eq!(m("pushpoll_log_messages").await, 1.0);
    let stored = serde_json::to_vec(&get_json(addr, "/messages?since=0").await[0])
        .expect("json")
        .len();
    let bytes = m("pushpoll_http_response_body_bytes_total{route=\"GET /messages\"}").await;
    // Two GETs so far returned `[message]`: each is the stored JSON plus the brackets.
    assert_eq!(bytes, (2 * (stored + 2)) as f64);
}
