//! Against the reference Node.js tutorial server (Express 5 + the official `socket.io` 4, from
//! web/node_modules): poll falls back to the whole list, both Socket.IO transports work, and the
//! strategies it cannot serve fail with a clear error.

mod support;

use loadgen::driver::{RunError, run_strategy};
use loadgen::results::Warning;
use support::{assert_lossless, hooks, run, small_scenario, tutorial_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_falls_back_to_the_whole_list() {
    let node = tutorial_server().await;
    let r = run("poll@200ms", &small_scenario(Some(node.url.clone()))).await;
    assert_lossless(&r);
    assert!(
        r.warnings.contains(&Warning::FellBackToFullList),
        "{:?}",
        r.warnings
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_websocket_works_with_the_official_server() {
    let node = tutorial_server().await;
    let r = run("socketio", &small_scenario(Some(node.url.clone()))).await;
    assert_lossless(&r);
    // The Node server has no /metrics, but it is a local process: measured from /proc.
    assert_eq!(r.resources.server_source, "proc", "{:?}", r.warnings);
    let server = r.resources.server.as_ref().expect("node's usage");
    assert!(
        server.peak_rss_bytes > 0 && server.cpu_seconds > 0.0,
        "{server:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_polling_works_with_the_official_server() {
    let node = tutorial_server().await;
    let r = run("socketio-polling", &small_scenario(Some(node.url.clone()))).await;
    assert_lossless(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategies_it_cannot_serve_are_refused_clearly() {
    let node = tutorial_server().await;
    let scenario = small_scenario(Some(node.url.clone()));
    // Give the list an item, so the missing ids are visible.
    let _ = run("poll@200ms", &{
        let mut s = scenario.clone();
        s.duration = std::time::Duration::from_millis(200);
        s
    })
    .await;
    for (spec, what) in [("longpoll", "long polling"), ("sse", "Server-Sent Events")] {
        let spec = spec.parse().expect("spec");
        let err = run_strategy(&scenario, &spec, &hooks())
            .await
            .expect_err("unsupported");
        assert!(matches!(err, RunError::Unsupported(_)), "{err:?}");
        assert!(err.to_string().contains(what), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builtin_tutorial_profile_measures_it_and_checks_out() {
    let node = tutorial_server().await;
    let mut scenario = small_scenario(Some(node.url.clone()));
    scenario.access.profile = Some("tutorial".into());
    for spec in ["poll@200ms", "socketio"] {
        let r = run(spec, &scenario).await;
        assert_lossless(&r);
        // The profile says the list has no cursor: no fallback to find out.
        assert!(
            !r.warnings.contains(&Warning::FellBackToFullList),
            "{:?}",
            r.warnings
        );
    }
    let spec = "sse".parse().expect("spec");
    let err = run_strategy(&scenario, &spec, &hooks())
        .await
        .expect_err("no sse door")
        .to_string();
    assert!(
        err.contains("profile `tutorial` declares no sse door: --strategy sse cannot run"),
        "{err}"
    );
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["profile", "check", "tutorial", "--target", &node.url])
        .output()
        .await
        .expect("loadgen runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    for door in ["send      OK", "socketio  OK", "poll      OK"] {
        assert!(stdout.contains(door), "{door}\n{stdout}");
    }
}
