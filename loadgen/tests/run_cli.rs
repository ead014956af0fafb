//! `loadgen run` as a user meets it: flags, errors, the spawned server child, Ctrl-C and a server
//! that dies mid-run.

mod support;

use std::time::Duration;

use clap::Parser;
use loadgen::cli::{Cli, Command, ScenarioError};
use loadgen::driver::{RunError, run_strategy};
use loadgen::results::{Outcome, RunResult};
use loadgen::scenario::InvalidScenario;
use support::{assert_lossless, hooks, in_process_server, run, small_scenario};

fn run_args(extra: &[&str]) -> Result<loadgen::cli::RunArgs, clap::Error> {
    let args = ["loadgen", "run"].iter().chain(extra).copied();
    match Cli::try_parse_from(args)?.command {
        Command::Run(args) => Ok(args),
        _ => unreachable!("parsed `run`"),
    }
}

#[test]
fn bad_flags_are_refused_with_the_flag_named() {
    let err = run_args(&["--strategy", "pol@1s"]).expect_err("bad strategy");
    assert!(err.to_string().contains("pol@1s"), "{err}");
    let err = run_args(&["--duration", "soon"]).expect_err("bad duration");
    assert!(err.to_string().contains("--duration"), "{err}");
    let args = run_args(&["--rate", "0"]).expect("parses");
    let err = args.scenario.to_scenario().expect_err("zero rate");
    assert_eq!(
        err,
        ScenarioError::Invalid(InvalidScenario::NotPositive {
            flag: "rate",
            value: 0.0
        })
    );
    let args = run_args(&["--strategy", "sse", "--etag"]).expect("parses");
    assert!(
        args.spec()
            .expect_err("etag on sse")
            .to_string()
            .contains("--etag")
    );
    let args = run_args(&[
        "--strategy",
        "poll",
        "--interval",
        "250ms",
        "--poll-mode",
        "full",
    ])
    .expect("parses");
    assert_eq!(args.spec().expect("poll").label(), "poll-full@250ms");
}

#[tokio::test]
async fn an_unreachable_target_is_a_clear_error() {
    let port = closed_port();
    let scenario = small_scenario(Some(format!("http://127.0.0.1:{port}")));
    let err = run_strategy(&scenario, &"poll".parse().expect("spec"), &hooks())
        .await
        .expect_err("unreachable");
    assert!(matches!(err, RunError::Control(_)), "{err:?}");
    assert!(err.to_string().contains("unreachable"), "{err}");
}

#[tokio::test]
async fn a_remote_target_needs_allow_remote() {
    let scenario = small_scenario(Some("http://192.0.2.1:3000".into()));
    let err = run_strategy(&scenario, &"poll".parse().expect("spec"), &hooks())
        .await
        .expect_err("remote");
    assert!(err.to_string().contains("--allow-remote"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_target_the_server_runs_as_a_child_process() {
    let r = run("poll@200ms", &small_scenario(None)).await;
    assert_lossless(&r);
    assert_eq!(r.target, "spawned");
    assert_eq!(r.resources.server_source, "proc");
    let server = r
        .resources
        .server
        .as_ref()
        .expect("server usage from /proc");
    assert!(
        server.peak_rss_bytes > 0 && server.cpu_seconds > 0.0,
        "{server:?}"
    );
    assert!(r.resources.generator.peak_rss_bytes > 0);
    let summary = loadgen::cli::render_summary(&r, std::path::Path::new("out"));
    assert!(summary.starts_with("poll@200ms: completed"), "{summary}");
    assert!(summary.contains("missing 0 duplicates 0"), "{summary}");
    assert!(
        summary.contains("generator's own error: send lag p50"),
        "{summary}"
    );
    // The generator's own error is measured for every measured send, and on the runtime.
    let g = &r.generator_error;
    assert_eq!(g.send_lag.count, r.schedule.planned_sends, "{g:?}");
    assert!(
        g.loop_lag.count > 0 && !g.loop_lag_threads.is_empty(),
        "{g:?}"
    );
    assert!(
        g.threads.iter().any(|t| t.thread == "loadgen-pacer"),
        "{:?}",
        g.threads
    );
    let polls = r.polls.as_ref().expect("a poll run has poll stats");
    assert!(polls.answer_time.count > 0, "{polls:?}");
    assert_eq!(polls.stale_answers, 0, "{polls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_the_run_with_partial_results() {
    let server = in_process_server().await;
    let mut scenario = small_scenario(Some(format!("http://{}", server.addr())));
    scenario.duration = Duration::from_secs(60);
    let hooks = hooks();
    let cancel = hooks.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        cancel.cancel();
    });
    let r = run_strategy(&scenario, &"socketio".parse().expect("spec"), &hooks)
        .await
        .expect("run");
    assert_eq!(r.outcome, Outcome::Interrupted);
    assert!(r.traffic.requests.posts > 0, "partial numbers are kept");
    assert!(
        r.timings.total_ms < 30_000.0,
        "stopped promptly: {:?}",
        r.timings
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_dies_mid_run_ends_it_within_seconds() {
    let server = in_process_server().await;
    let mut scenario = small_scenario(Some(format!("http://{}", server.addr())));
    scenario.duration = Duration::from_secs(60);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        server.shutdown().await.expect("shutdown");
    });
    let r = run_strategy(&scenario, &"poll@200ms".parse().expect("spec"), &hooks())
        .await
        .expect("run");
    assert!(
        matches!(r.outcome, Outcome::ServerDied { .. }),
        "{:?}",
        r.outcome
    );
    assert!(
        r.timings.total_ms < 30_000.0,
        "stopped within seconds: {:?}",
        r.timings
    );
}

#[test]
fn the_binary_prints_json_and_writes_results() {
    let out = tempfile::tempdir().expect("tempdir");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "run",
            "--strategy",
            "sse",
            "--clients",
            "5",
            "--senders",
            "1",
            "--rate",
            "10",
        ])
        .args([
            "--duration",
            "1s",
            "--warmup",
            "200ms",
            "--drain",
            "3s",
            "--json",
            "--out",
        ])
        .arg(out.path())
        .output()
        .expect("run the binary");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let r: RunResult = serde_json::from_slice(&output.stdout).expect("stdout is a RunResult");
    assert_lossless(&r);
    let saved = loadgen::results::Results::load(out.path()).expect("results.json");
    assert_eq!(saved.runs.len(), 1);
    // A single run gets the same readable report folder as a sweep.
    for file in ["summary.md", "summary.csv", "sse.hgrm", "report.html"] {
        assert!(out.path().join(file).is_file(), "{file} missing");
    }
}

#[test]
fn the_binary_exits_non_zero_on_bad_input() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["run", "--target", "http://192.0.2.1:3000"])
        .output()
        .expect("run the binary");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Error:") && stderr.contains("--allow-remote"),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_absurd_rate_is_refused() {
    let mut scenario = small_scenario(Some("http://127.0.0.1:9".into()));
    scenario.rate = 1e9;
    let err = run_strategy(&scenario, &"sse".parse().expect("spec"), &hooks())
        .await
        .expect_err("rate");
    assert!(matches!(err, RunError::Scenario(_)), "{err:?}");
    assert!(err.to_string().contains("--rate"), "{err}");
}

/// `serve-chat` (the child server `run` starts) logs as `chat-server` does, to stderr, so the
/// stderr tail a report keeps of a dead child holds the server's own lines.
#[test]
fn serve_chat_logs_like_the_server() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command as Process, Stdio};
    let mut child = Process::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["serve-chat", "--addr", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn loadgen serve-chat");
    let stdout = child.stdout.take().expect("stdout");
    let mut announced = String::new();
    BufReader::new(stdout)
        .read_line(&mut announced)
        .expect("reads the announce line");
    assert!(
        announced.contains("listening on http://127.0.0.1:"),
        "{announced}"
    );
    // Closing its stdin stops it, gracefully.
    drop(child.stdin.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("reads stderr");
    let status = child.wait().expect("exits");
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(stderr.contains("serving the chat"), "{stderr}");
    assert!(stderr.contains("shutting down"), "{stderr}");
}

/// `loadgen run` is a sweep of one: a run that cannot start (nothing listens on the target) is
/// recorded as failed in its folder, said in one line, and exits 1.
#[test]
fn a_run_that_cannot_start_is_recorded_and_exits_1() {
    let port = closed_port();
    let out = tempfile::tempdir().expect("tempdir");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "run",
            "--strategy",
            "sse",
            "--clients",
            "3",
            "--duration",
            "1s",
        ])
        .args(["--target", &format!("http://127.0.0.1:{port}"), "--out"])
        .arg(out.path())
        .output()
        .expect("run the binary");
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("sse: FAILED"), "{stdout}");
    assert!(stdout.contains("unreachable"), "{stdout}");
    assert!(
        !stdout.contains("latency"),
        "no figures for a run that never started: {stdout}"
    );
    let saved = loadgen::results::Results::load(out.path()).expect("results.json");
    assert!(matches!(saved.runs[0].outcome, Outcome::Failed { .. }));
}

/// A port that was free a moment ago: nothing listens there.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}
