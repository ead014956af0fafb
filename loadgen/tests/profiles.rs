//! Target profiles (issue 15): a server with other routes, another JSON shape, another Socket.IO
//! namespace and event, measured losslessly through the profile that describes it.

mod support;

use clap::Parser;
use loadgen::cli::{Cli, Command};
use loadgen::driver::run_strategy;
use loadgen::scenario::StrategySpec;
use support::chat_api::{ChatApiServer, EVENT_PROFILE, PROFILE};
use support::{assert_lossless, hooks, run, scenario_with_access};

#[tokio::test]
async fn a_profiled_server_is_measured_losslessly_through_socketio_sse_and_poll() {
    let server = ChatApiServer::start().await;
    let scenario = scenario_with_access(&server.url(), &["--profile", PROFILE]);
    for spec in [
        "socketio",
        "poll@200ms",
        "poll-full@200ms",
        "socketio-polling",
        "sse",
    ] {
        assert_lossless(&run(spec, &scenario).await);
    }
    // Doors the profile does not declare are refused by name.
    let spec: StrategySpec = "longpoll".parse().expect("spec");
    let err = run_strategy(&scenario, &spec, &hooks())
        .await
        .expect_err("no long-poll door")
        .to_string();
    assert!(err.contains("declares no long-poll door"), "{err}");
}

#[tokio::test]
async fn probes_sent_as_a_socketio_event_are_delivered_losslessly() {
    let server = ChatApiServer::start().await;
    let scenario = scenario_with_access(&server.url(), &["--profile", EVENT_PROFILE]);
    let mut sent = 0;
    for spec in ["socketio", "poll@200ms"] {
        let results = run(spec, &scenario).await;
        assert_lossless(&results);
        sent += results.delivery.probes_sent;
    }
    // Every probe (the measured ones, and those of warm-up and drain) came by event.
    let (posted, said) = server.taken();
    assert_eq!(posted, 0);
    assert!(said >= sent, "{said} events for {sent} measured probes");

    // With `ack = true` each event asks for an ack and is accepted when it arrives.
    let dir = tempfile::tempdir().expect("tempdir");
    let acked = std::fs::read_to_string(EVENT_PROFILE)
        .expect("profile")
        .replace("{text}\"}' }", "{text}\"}', ack = true }");
    let path = dir.path().join("acked.toml");
    std::fs::write(&path, acked).expect("write");
    let path = path.display().to_string();
    let scenario = scenario_with_access(&server.url(), &["--profile", &path]);
    let results = run("socketio", &scenario).await;
    assert_lossless(&results);
    assert_eq!(server.taken().0, 0);
}

/// Waits (up to 10 s, in 20 ms steps) for `done`; false if it never was.
async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if done() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    done()
}

#[tokio::test]
async fn a_lost_event_socket_fails_its_writes_and_a_new_one_sends() {
    use loadgen::parts::EventConn;
    use pushpoll_wire::engineio::encode_sio_event;
    let server = ChatApiServer::start().await;
    let target =
        loadgen::parts::TargetAddr::new(server.addr(), &server.addr().to_string()).expect("target");
    let wire = std::sync::Arc::new(loadgen::parts::WireCounters::default());
    let open = || {
        EventConn::open(
            &target,
            &wire,
            "/chat",
            std::time::Duration::from_secs(5),
            tokio_util::sync::CancellationToken::new(),
        )
    };
    let say = |text: &str| {
        let mut frame = String::new();
        encode_sio_event(
            "/chat",
            "say",
            &format!(r#"{{"body":"{text}"}}"#),
            &mut frame,
        );
        frame
    };
    let conn = open().await.expect("joins /chat");
    conn.write(say("one")).await.expect("written");
    assert!(eventually(|| server.taken() == (0, 1)).await);

    server.disconnect_all().await;
    assert!(eventually(|| !conn.is_open()).await, "the loss is noticed");
    assert!(
        conn.write(say("lost")).await.is_err(),
        "a lost socket fails"
    );

    let again = open().await.expect("joins /chat again");
    again.write(say("two")).await.expect("written");
    assert!(eventually(|| server.taken() == (0, 2)).await);
    // Acknowledged: the server had taken it when the ack came.
    again
        .write_acked(say("three"), "/chat")
        .await
        .expect("acknowledged");
    assert_eq!(server.taken(), (0, 3));
    assert!(
        wire.up.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "counted"
    );
}

#[test]
fn a_profile_sends_by_http_or_by_event_exactly_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let event = std::fs::read_to_string(EVENT_PROFILE).expect("profile");
    let both = event.replace(
        "[send]\n",
        "[send]\nroute = \"/api/chat\"\nbody = '{\"body\":\"{text}\"}'\n",
    );
    let neither = event.replace("socketio = { namespace", "# socketio = { namespace");
    let no_text = event.replace(
        "event = \"say\", body = '{\"body\":\"{text}\"}'",
        "event = \"say\", body = '{}'",
    );
    for (mistake, needle) in [
        (both, "field `send.socketio`"),
        (neither, "field `send.route` is missing"),
        (no_text, "field `send.socketio.body`"),
    ] {
        assert_ne!(mistake, event, "{needle}: the mistake was made");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, &mistake).expect("write");
        let path = path.display().to_string();
        let args = ["loadgen", "run", "--profile", &path];
        let Command::Run(args) = Cli::try_parse_from(args).expect("parses").command else {
            unreachable!("parsed `run`")
        };
        let err = args
            .scenario
            .to_scenario()
            .expect_err("refused")
            .to_string();
        assert!(err.contains(needle), "{needle}: {err}");
    }
}

#[tokio::test]
async fn profile_check_sends_by_event() {
    let server = ChatApiServer::start().await;
    let (code, out) = profile_check(EVENT_PROFILE, &server.url()).await;
    assert_eq!(code, 0, "{out}");
    for line in [
        "send      OK    event `say` in namespace `/chat` written",
        "socketio  OK    event `chat` in namespace `/chat`: text at `/body`, id 1",
        "sse       OK    GET /api/stream event `chat-msg`: text at `/body`, id 1",
        "poll      OK    GET /api/chat?after=0: the message is in the list, id 1",
    ] {
        assert!(out.contains(line), "{line}\n{out}");
    }
    // With `ack = true` the check waits for the server's ack.
    let dir = tempfile::tempdir().expect("tempdir");
    let acked = std::fs::read_to_string(EVENT_PROFILE)
        .expect("profile")
        .replace("{text}\"}' }", "{text}\"}', ack = true }");
    let path = dir.path().join("acked.toml");
    std::fs::write(&path, acked).expect("write");
    let (code, out) = profile_check(&path.display().to_string(), &server.url()).await;
    assert_eq!(code, 0, "{out}");
    let line = "send      OK    event `say` in namespace `/chat` acknowledged: [{\"seq\":2}]";
    assert!(out.contains(line), "{line}\n{out}");
}

#[tokio::test]
async fn without_its_profile_the_server_is_not_a_chat() {
    let server = ChatApiServer::start().await;
    let spec: StrategySpec = "poll@200ms".parse().expect("spec");
    let err = run_strategy(&scenario_with_access(&server.url(), &[]), &spec, &hooks())
        .await
        .expect_err("not the project's server")
        .to_string();
    assert!(err.contains("GET /messages"), "{err}");
}

#[test]
fn a_malformed_profile_file_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = std::fs::read_to_string(PROFILE).expect("profile");
    for (mistake, needle) in [
        (
            good.replace("event = \"chat\"\n", ""),
            "missing field `event`",
        ),
        (good.replace("list = ", "lists = "), "unknown field `lists`"),
        (good.replace("{text}", "{body}"), "field `send.body`"),
        (
            good.replace("cursor = \"after\"", "cursor = 1"),
            "cursor = 1",
        ),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, &mistake).expect("write");
        let path = path.display().to_string();
        let args = ["loadgen", "run", "--profile", &path];
        let Command::Run(args) = Cli::try_parse_from(args).expect("parses").command else {
            unreachable!("parsed `run`")
        };
        let err = args
            .scenario
            .to_scenario()
            .expect_err("refused")
            .to_string();
        assert!(
            err.contains("--profile") && err.contains(needle),
            "{needle}: {err}"
        );
    }
}

/// `loadgen profile check PROFILE --target URL`: exit code and stdout.
async fn profile_check(profile: &str, url: &str) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "profile",
            "check",
            profile,
            "--target",
            url,
            "--timeout",
            "2s",
        ])
        .output()
        .await
        .expect("loadgen runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
}

#[tokio::test]
async fn profile_check_passes_every_declared_door_and_names_what_does_not_match() {
    let server = ChatApiServer::start().await;
    let (code, out) = profile_check(PROFILE, &server.url()).await;
    assert_eq!(code, 0, "{out}");
    for line in [
        "send      OK    POST /api/chat answered 200 OK",
        "socketio  OK    event `chat` in namespace `/chat`: text at `/body`, id 1",
        "sse       OK    GET /api/stream event `chat-msg`: text at `/body`, id 1",
        "poll      OK    GET /api/chat?after=0: the message is in the list, id 1",
    ] {
        assert!(out.contains(line), "{line}\n{out}");
    }

    // The same server described wrongly: another event name, another text field.
    let dir = tempfile::tempdir().expect("tempdir");
    let wrong = std::fs::read_to_string(PROFILE)
        .expect("profile")
        .replace("event = \"chat\"", "event = \"message\"")
        .replace("event = \"chat-msg\"", "event = \"chat_msg\"")
        .replace(
            "id = \"/seq\"\ntext = \"/body\"",
            "id = \"/seq\"\ntext = \"/text\"",
        );
    let path = dir.path().join("wrong.toml");
    std::fs::write(&path, wrong).expect("write");
    let (code, out) = profile_check(&path.display().to_string(), &server.url()).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("send      OK"), "{out}");
    assert!(
        out.contains("socketio  FAIL  event `message` in namespace `/chat` never arrived within 2s (arrived instead: `chat` in namespace `/chat`)"),
        "{out}"
    );
    assert!(
        out.contains("sse       FAIL  GET /api/stream event `chat_msg` never arrived within 2s (the message came as event `chat-msg`)"),
        "{out}"
    );
    assert!(
        out.contains("poll      FAIL  GET /api/chat: no string at JSON pointer `/text`"),
        "{out}"
    );

    // Wrong routes: the send door's status, the SSE door that is not a stream.
    let wrong_routes = std::fs::read_to_string(PROFILE)
        .expect("profile")
        .replace(
            "route = \"/api/chat\"\nmethod",
            "route = \"/api/nope\"\nmethod",
        )
        .replace("path = \"/api/stream\"", "path = \"/api/chat\"");
    std::fs::write(&path, wrong_routes).expect("write");
    let (code, out) = profile_check(&path.display().to_string(), &server.url()).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("send      FAIL  POST /api/nope answered 404 Not Found"),
        "{out}"
    );
    assert!(
        out.contains(
            "sse       FAIL  GET /api/chat answered 200 OK (application/json), not an event stream"
        ),
        "{out}"
    );
}
