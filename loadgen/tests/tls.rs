//! `https://` targets (issue 15): every strategy over TLS against the project's chat server
//! serving a certificate from a CA made here; bytes counted are TLS records; a certificate the
//! generator does not trust is a clear error.

mod report_fixture;
mod support;

use loadgen::driver;
use loadgen::results::Wire;
use loadgen::scenario::StrategySpec;
use support::tls::{make_pki, tls_chat_server};
use support::{assert_lossless, hooks, in_process_server, run, small_scenario};

const STRATEGIES: [&str; 5] = [
    "poll@200ms",
    "longpoll",
    "sse",
    "socketio",
    "socketio-polling",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_strategy_is_lossless_over_tls_and_counts_more_bytes_than_plain_http() {
    let pki = make_pki();
    let tls_server = tls_chat_server(&pki).await;
    let plain_server = in_process_server().await;
    for spec in STRATEGIES {
        let mut scenario = small_scenario(Some(format!("https://{}", tls_server.addr())));
        scenario.access.tls.ca_cert = Some(pki.ca.clone());
        let tls = run(spec, &scenario).await;
        assert_lossless(&tls);
        assert_eq!(tls.traffic.wire, Wire::Tls, "{spec}");
        let printed = loadgen::cli::render_summary(&tls, std::path::Path::new("out"));
        assert!(printed.contains("TLS records"), "{printed}");

        let plain = run(
            spec,
            &small_scenario(Some(format!("http://{}", plain_server.addr()))),
        )
        .await;
        assert_lossless(&plain);
        assert_eq!(plain.traffic.wire, Wire::Plain, "{spec}");
        // Per delivered message, so that a few more or fewer polls cannot decide it: TLS adds
        // handshakes (certificates), record headers and tags to every byte counted.
        let per_delivery = |r: &loadgen::results::RunResult| {
            r.traffic.receiver_bytes as f64 / r.traffic.deliveries as f64
        };
        assert!(
            per_delivery(&tls) > per_delivery(&plain),
            "{spec}: TLS {} B/msg, plain {} B/msg",
            per_delivery(&tls),
            per_delivery(&plain)
        );
    }
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_naming_the_problem() {
    let pki = make_pki();
    let server = tls_chat_server(&pki).await;
    let other = make_pki();
    let mut scenario = small_scenario(Some(format!("https://{}", server.addr())));
    scenario.access.tls.ca_cert = Some(other.ca.clone());
    let spec: StrategySpec = "socketio".parse().expect("spec");
    let err = driver::run_strategy(&scenario, &spec, &hooks())
        .await
        .expect_err("an untrusted certificate must stop the run")
        .to_string();
    assert!(err.contains("TLS handshake"), "{err}");
    assert!(err.contains("certificate"), "{err}");
    assert!(err.contains("--ca-cert"), "{err}");
}

#[tokio::test]
async fn plain_http_to_a_tls_server_fails_and_insecure_skips_verification() {
    let pki = make_pki();
    let server = tls_chat_server(&pki).await;
    let spec: StrategySpec = "socketio".parse().expect("spec");
    let plain = small_scenario(Some(format!("http://{}", server.addr())));
    assert!(driver::run_strategy(&plain, &spec, &hooks()).await.is_err());

    let mut insecure = small_scenario(Some(format!("https://{}", server.addr())));
    insecure.access.tls.insecure = true;
    let r = run("socketio", &insecure).await;
    assert_lossless(&r);
    assert_eq!(r.traffic.wire, Wire::Tls);
}

#[test]
fn reports_say_when_the_bytes_are_tls_records() {
    let mut results = report_fixture::results();
    let summary = |r: &loadgen::results::Results| {
        let view = loadgen::report::ReportView::new(r).expect("view");
        loadgen::report::markdown::summary(&view)
    };
    assert!(!summary(&results).contains("TLS records"));
    results.runs[0].traffic.wire = Wire::Tls;
    assert!(summary(&results).contains("**wire**: TLS"));
}
