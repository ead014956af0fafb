//! Servers that want credentials (issue 15): `--header` on every request and the WebSocket
//! upgrade, a `--login` cookie for the whole run, the Socket.IO `auth` payload. Each is checked
//! against a server that answers `401` (or refuses the socket) without it: the run fails clearly
//! without the credential and is lossless with it.

mod support;

use std::sync::atomic::Ordering::Relaxed;

use clap::Parser;
use loadgen::cli::{Cli, Command};
use loadgen::driver::run_strategy;
use loadgen::results::Outcome;
use loadgen::scenario::StrategySpec;
use support::faulty::{Faults, FaultyServer};
use support::gate::{Gate, LOGIN_BODY};
use support::{assert_lossless, hooks, run, scenario_with_access};

async fn gated(gate: Gate) -> FaultyServer {
    FaultyServer::start(Faults {
        gate,
        ..Faults::default()
    })
    .await
}

#[tokio::test]
async fn a_required_header_goes_on_every_request_and_every_upgrade() {
    let gate = Gate {
        header: Some(("x-api-key".into(), "k1".into())),
        ..Gate::default()
    };
    let server = gated(gate.clone()).await;
    let spec: StrategySpec = "socketio".parse().expect("spec");
    let err = run_strategy(&scenario_with_access(&server.url(), &[]), &spec, &hooks())
        .await
        .expect_err("no header, no run")
        .to_string();
    assert!(err.contains("401"), "{err}");

    let refused_before = gate.log.unauthorized.load(Relaxed);
    let scenario = scenario_with_access(&server.url(), &["--header", "X-Api-Key: k1"]);
    for spec in [
        "poll@200ms",
        "longpoll",
        "sse",
        "socketio",
        "socketio-polling",
    ] {
        assert_lossless(&run(spec, &scenario).await);
    }
    assert_eq!(gate.log.unauthorized.load(Relaxed), refused_before);
}

#[tokio::test]
async fn a_login_cookie_goes_with_the_whole_run() {
    let gate = Gate {
        cookie: true,
        ..Gate::default()
    };
    let server = gated(gate.clone()).await;
    let spec: StrategySpec = "poll@200ms".parse().expect("spec");
    let wrong = scenario_with_access(
        &server.url(),
        &["--login", "POST", "/login", "password=wrong"],
    );
    let err = run_strategy(&wrong, &spec, &hooks())
        .await
        .expect_err("bad credentials")
        .to_string();
    assert!(
        err.contains("--login POST /login was answered 401"),
        "{err}"
    );

    let refused_before = gate.log.unauthorized.load(Relaxed);
    let right = scenario_with_access(&server.url(), &["--login", "post", "/login", LOGIN_BODY]);
    for spec in ["poll@200ms", "sse", "socketio"] {
        assert_lossless(&run(spec, &right).await);
    }
    assert_eq!(gate.log.logins.load(Relaxed), 3, "one login per run");
    assert_eq!(gate.log.unauthorized.load(Relaxed), refused_before);
}

#[tokio::test]
async fn the_socketio_auth_payload_goes_with_the_namespace_connect() {
    let gate = Gate {
        socketio_token: Some("t0k".into()),
        ..Gate::default()
    };
    let server = gated(gate.clone()).await;
    for spec in ["socketio", "socketio-polling"] {
        let without = run(spec, &scenario_with_access(&server.url(), &[])).await;
        assert_eq!(without.clients.connected, 0, "{spec}");
        assert!(
            matches!(&without.outcome, Outcome::Failed { detail } if detail.contains("no receiver could connect")),
            "{spec}: {:?}",
            without.outcome
        );
        let refused = gate.log.sockets_refused.load(Relaxed);
        assert!(refused > 0, "{spec}");

        let with = scenario_with_access(&server.url(), &["--socketio-auth", r#"{"token":"t0k"}"#]);
        assert_lossless(&run(spec, &with).await);
        assert_eq!(gate.log.sockets_refused.load(Relaxed), refused, "{spec}");
    }
}

#[test]
fn malformed_access_flags_are_refused_naming_the_flag() {
    for (flags, needle) in [
        (&["--header", "no colon here"][..], "--header"),
        (&["--header", "bad name: x"][..], "--header"),
        (&["--socketio-auth", "[1]"][..], "--socketio-auth"),
        (&["--login", "POST", "/login"][..], "--login"),
    ] {
        let args = ["loadgen", "run"].iter().chain(flags).copied();
        let err = Cli::try_parse_from(args).expect_err("refused").to_string();
        assert!(err.contains(needle), "{flags:?}: {err}");
    }
    let args = ["loadgen", "run", "--ca-cert", "ca.pem", "--insecure"];
    let Command::Run(args) = Cli::try_parse_from(args).expect("parses").command else {
        unreachable!("parsed `run`")
    };
    let err = args.scenario.to_scenario().expect_err("contradiction");
    assert!(err.to_string().contains("--insecure"), "{err}");
}
