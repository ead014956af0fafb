//! Known faults, measured: a chat server that injects faults and counts every one it injected
//! (`support::faulty`), and loadgen must report exactly those counts. One sender and no warm-up,
//! so every probe is measured and the server's counts map 1:1 onto loadgen's.
//!
//! Each fault has its figure: missing (drops, stalls, failed sends), duplicates, out of order,
//! failed sends, the server's share of a poll (delays), stale answers (held-back messages), and
//! the model check that must hold or fail accordingly.

mod support;

use std::num::NonZeroUsize;
use std::time::Duration;

use loadgen::report::findings::findings;
use loadgen::report::view::ReportView;
use loadgen::results::{Outcome, Results, RunResult, Warning};
use loadgen::scenario::Scenario;
use support::faulty::{FaultCounts, Faults, FaultyServer};
use support::{run, small_scenario};

/// Receivers per run.
const CLIENTS: u64 = 15;
/// 20 probes/s for 2 s from one sender, all measured.
const PROBES: u64 = 40;

/// `small_scenario`'s rate and duration, with one sender, no warm-up (every probe sent is
/// measured) and a short drain (dropped messages never arrive).
fn scenario(server: &FaultyServer) -> Scenario {
    Scenario {
        clients: NonZeroUsize::new(CLIENTS as usize).expect("nonzero"),
        senders: NonZeroUsize::new(1).expect("nonzero"),
        warmup: Duration::ZERO,
        drain: Duration::from_secs(1),
        // The faults (503s among them) are injected to be measured, never a reason to stop.
        safety: loadgen::scenario::safety::SafetySpec {
            abort_on_errors_pct: 100.0,
            ..Default::default()
        },
        ..small_scenario(Some(server.url()))
    }
}

/// Runs `spec` against a fresh faulty server; returns loadgen's result and the server's counts.
async fn run_with(spec: &str, faults: Faults) -> (RunResult, FaultCounts) {
    let server = FaultyServer::start(faults).await;
    let r = run(spec, &scenario(&server)).await;
    (r, server.counts())
}

/// The out-of-order deliveries a run must show: exactly `injected` when the server stored each
/// sender's probes in sequence. The sender is open-loop, so on a busy machine a POST can still be
/// in flight at the next send instant and be overtaken; the server then stores the two inverted
/// and every receiver rightly sees them out of order, so the figure is at least `injected`.
fn assert_out_of_order(out_of_order: u64, injected: u64, f: &FaultCounts, ctx: &str) {
    if f.arrived_out_of_order == 0 {
        assert_eq!(out_of_order, injected, "{ctx}");
    } else {
        assert!(out_of_order >= injected, "{ctx}");
        eprintln!(
            "{} probes arrived out of sequence at the server (a busy machine): out-of-order {out_of_order}, injected {injected}",
            f.arrived_out_of_order
        );
    }
}

/// What every run here must show before its fault's own figures: it completed, every receiver
/// connected once and stayed, every planned probe was posted and measured.
fn assert_clean_run(r: &RunResult, f: &FaultCounts) {
    let ctx = format!("{}: {r:#?}\n{f:?}", r.label);
    assert_eq!(r.outcome, Outcome::Completed, "{ctx}");
    assert_eq!(r.clients.connected, CLIENTS, "{ctx}");
    // One connection per receiver, and the sender's: one on a quiet machine, a few more when a
    // POST is still in flight at the next send instant (the sender is open-loop), as on a
    // machine busy with other work. A receiver that reconnected would open one per reconnect.
    assert!(
        (CLIENTS + 1..=CLIENTS + 4).contains(&r.traffic.connections_opened),
        "one connection per receiver, one to four for the sender, nobody reconnected: {ctx}"
    );
    assert_eq!(r.schedule.planned_sends, PROBES, "{ctx}");
    assert_eq!(r.traffic.requests.posts, PROBES, "{ctx}");
    assert_eq!(
        r.delivery.probes_sent + r.delivery.probes_failed,
        PROBES,
        "{ctx}"
    );
    assert_eq!(
        r.delivery.probes_sent, f.stored,
        "every accepted probe was stored: {ctx}"
    );
    assert_eq!(f.emit_errors, 0, "no message lost but by a fault: {ctx}");
    // The faulty server runs in this process, whose memory is the generator's too: no figure
    // of the server's memory per connection (absent, never a zero).
    assert_eq!(r.resources.server_memory, None, "{ctx}");
}

// ---- Dropped messages: missing deliveries ----

/// Every 4th receiver is never sent every 3rd message: exactly those pairs are missing.
async fn drops_are_missing(spec: &str) {
    let faults = Faults {
        drop_every: Some((3, 4)),
        ..Faults::default()
    };
    let (r, f) = run_with(spec, faults).await;
    assert_clean_run(&r, &f);
    let d = &r.delivery;
    // Each faulted receiver loses probes 3, 6, …, 39: 13 of 40.
    assert!(
        f.dropped > 0 && f.dropped.is_multiple_of(13),
        "{spec}: injected {f:?}"
    );
    assert_eq!(d.probes_sent, PROBES, "{spec}: {d:?}");
    assert_eq!(d.expected, PROBES * CLIENTS, "{spec}: {d:?}");
    assert_eq!(d.missing, f.dropped, "{spec}: {d:?} vs injected {f:?}");
    assert_eq!(d.expected, d.delivered + d.missing, "{spec}: {d:?}");
    assert_eq!(d.duplicates, 0, "{spec}: {d:?}");
    assert_out_of_order(d.out_of_order, 0, &f, &format!("{spec}: {d:?}"));
    // Each missing pair enters the tail censored at the end of the drain.
    assert_eq!(r.latency.corrected.censored, d.missing, "{spec}");
    assert_eq!(r.latency.corrected.count, d.delivered + d.missing, "{spec}");
    assert!(r.latency.corrected.lower_bound_from_us.is_some(), "{spec}");
    assert!(
        r.latency
            .corrected
            .is_lower_bound(r.latency.corrected.max_us),
        "{spec}: the maximum is a lower bound"
    );
    assert!(
        r.warnings.contains(&Warning::MessagesLost {
            missing: f.dropped,
            expected: d.expected
        }),
        "{spec}: {:?}",
        r.warnings
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_drops_are_counted_missing_exactly() {
    drops_are_missing("socketio").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_polling_drops_are_counted_missing_exactly() {
    drops_are_missing("socketio-polling").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_drops_are_counted_missing_exactly() {
    drops_are_missing("sse").await;
}

// ---- Duplicates ----

async fn duplicates_are_counted(spec: &str) {
    let faults = Faults {
        duplicate_every: Some(5),
        ..Faults::default()
    };
    let (r, f) = run_with(spec, faults).await;
    assert_clean_run(&r, &f);
    let d = &r.delivery;
    // Probes 5, 10, …, 40 to each receiver: 8 each.
    assert_eq!(f.duplicated, 8 * CLIENTS, "{spec}: injected {f:?}");
    assert_eq!(
        d.duplicates, f.duplicated,
        "{spec}: {d:?} vs injected {f:?}"
    );
    assert_eq!(d.missing, 0, "{spec}: {d:?}");
    assert_eq!(d.delivered, d.expected, "{spec}: {d:?}");
    assert_out_of_order(d.out_of_order, 0, &f, &format!("{spec}: {d:?}"));
    assert_eq!(
        r.latency.corrected.count, d.delivered,
        "{spec}: a duplicate is not a second latency sample"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_duplicates_are_counted_exactly() {
    duplicates_are_counted("socketio").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_duplicates_are_counted_exactly() {
    duplicates_are_counted("sse").await;
}

// ---- Reordering ----

/// Every 3rd message to each receiver is sent after the next one: probes k+1, k arrive in that
/// order, which is one out-of-order delivery (k after the later k+1) per swap.
async fn reorders_are_counted(spec: &str) {
    let faults = Faults {
        reorder_every: Some(3),
        ..Faults::default()
    };
    let (r, f) = run_with(spec, faults).await;
    assert_clean_run(&r, &f);
    let d = &r.delivery;
    // Pairs (3,4), (6,7), …, (39,40) to each receiver: 13 each (a held probe whose successor
    // came too late was sent alone instead, and is not a swap).
    assert!(f.reordered > 0, "{spec}: injected {f:?}");
    assert_eq!(
        f.reordered + f.reorder_flushed,
        13 * CLIENTS,
        "{spec}: injected {f:?}"
    );
    assert_out_of_order(
        d.out_of_order,
        f.reordered,
        &f,
        &format!("{spec}: {d:?} vs injected {f:?}"),
    );
    assert_eq!(d.missing, 0, "{spec}: {d:?}");
    assert_eq!(d.delivered, d.expected, "{spec}: {d:?}");
    assert_eq!(d.duplicates, 0, "{spec}: {d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_reorders_are_counted_exactly() {
    reorders_are_counted("socketio").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_reorders_are_counted_exactly() {
    reorders_are_counted("sse").await;
}

// ---- A stalled socket ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_socket_misses_every_probe() {
    let faults = Faults {
        stall_socket: Some(5),
        ..Faults::default()
    };
    let (r, f) = run_with("socketio", faults).await;
    assert_clean_run(&r, &f);
    let d = &r.delivery;
    assert_eq!(f.stalled, PROBES, "one socket, every probe: {f:?}");
    assert_eq!(d.missing, f.stalled, "{d:?} vs injected {f:?}");
    assert_eq!(d.delivered, (CLIENTS - 1) * PROBES, "{d:?}");
    assert_eq!(d.expected, d.delivered + d.missing, "{d:?}");
    assert_eq!(d.duplicates, 0, "{d:?}");
    assert_out_of_order(d.out_of_order, 0, &f, &format!("{d:?}"));
}

// ---- Failed POSTs ----

fn failing_posts() -> Faults {
    Faults {
        fail_posts_every: Some(4),
        ..Faults::default()
    }
}

/// Every 4th POST is answered 503: each is a failed send and an `http_status` error, and a lost
/// message owed to every receiver; achieved sends are the accepted ones; every accepted probe
/// still reaches every receiver; the run says so (`failed_sends`) and never "exactly once".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_posts_are_lost_messages_counted_exactly() {
    let (r, f) = run_with("socketio", failing_posts()).await;
    assert_clean_run(&r, &f);
    let d = &r.delivery;
    assert_eq!(f.failed_posts, PROBES / 4, "{f:?}");
    assert_eq!(d.probes_failed, f.failed_posts, "{d:?} vs injected {f:?}");
    assert_eq!(d.probes_sent, PROBES - f.failed_posts, "{d:?}");
    assert_eq!(
        r.traffic.requests.errors.get("http_status").copied(),
        Some(f.failed_posts),
        "{:?}",
        r.traffic.requests.errors
    );
    assert_eq!(r.schedule.achieved_sends, d.probes_sent, "{:?}", r.schedule);
    assert_eq!(r.schedule.failed_sends, f.failed_posts, "{:?}", r.schedule);
    assert_eq!(d.expected, PROBES * CLIENTS, "{d:?}");
    assert_eq!(d.delivered, d.probes_sent * CLIENTS, "{d:?}");
    assert_eq!(d.missing, f.failed_posts * CLIENTS, "{d:?}");
    assert_eq!(d.missing_from_failed_sends, d.missing, "{d:?}");
    assert_eq!(d.duplicates, 0, "{d:?}");
    assert_out_of_order(d.out_of_order, 0, &f, &format!("{d:?}"));
    assert!(!d.exactly_once());
    assert!(
        r.warnings.contains(&Warning::FailedSends {
            failed: f.failed_posts,
            planned: PROBES
        }),
        "{:?}",
        r.warnings
    );
    assert_eq!(r.latency.corrected.censored, d.missing);
    let said = all_findings(&r).join("\n");
    assert!(!said.contains("exactly once"), "{said}");
    assert!(said.contains("(10 sends failed)"), "{said}");
}

// ---- Slow poll answers ----

const POLL_DELAY: Duration = Duration::from_millis(100);

fn delayed_polls() -> Faults {
    Faults {
        delay_polls: Some(POLL_DELAY),
        ..Faults::default()
    }
}

fn assert_delivered_once_in_order(r: &RunResult, f: &FaultCounts) {
    let d = &r.delivery;
    assert_eq!(d.expected, PROBES * CLIENTS, "{}: {d:?}", r.label);
    assert_eq!(d.delivered, d.expected, "{}: {d:?}", r.label);
    assert_eq!((d.missing, d.duplicates), (0, 0), "{}: {d:?}", r.label);
    assert_out_of_order(d.out_of_order, 0, f, &format!("{}: {d:?}", r.label));
}

/// Answers sent 100 ms after they were made (poll@200ms): delivery latency rises by about that
/// much against the same server without the delay, and every poll was one delayed answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_poll_answers_add_their_delay_to_latency() {
    let (base, base_f) = run_with("poll@200ms", Faults::default()).await;
    assert_clean_run(&base, &base_f);
    assert_delivered_once_in_order(&base, &base_f);
    let (slow, f) = run_with("poll@200ms", delayed_polls()).await;
    assert_clean_run(&slow, &f);
    assert_delivered_once_in_order(&slow, &f);
    // Every receiver poll, and the capability check's GET /messages?since=0.
    assert_eq!(
        f.delayed_polls,
        slow.traffic.requests.receiver_requests + 1,
        "{f:?} vs {:?}",
        slow.traffic.requests
    );
    let p50 = |r: &RunResult| r.latency.corrected.p50_us as f64 / 1000.0;
    let rise = p50(&slow) - p50(&base);
    let d = POLL_DELAY.as_secs_f64() * 1000.0;
    assert!(
        (0.5 * d..=1.5 * d).contains(&rise),
        "p50 rose by {rise:.1} ms ({:.1} → {:.1} ms) for answers delayed by {d} ms",
        p50(&base),
        p50(&slow)
    );
}

/// `polls.answer_time` (request to answer, µs): with every answer delayed by D its median is
/// within [D, D + 50 ms]; the model, which adds this measured server share to T/2, holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_answer_time_shows_the_delay_and_the_model_holds() {
    let (r, f) = run_with("poll@200ms", delayed_polls()).await;
    assert_clean_run(&r, &f);
    let polls = r.polls.as_ref().expect("poll stats");
    assert!(polls.answer_time.count > 0);
    let d = POLL_DELAY.as_micros() as u64;
    let p50 = polls.answer_time.p50_us;
    assert!(
        (d..=d + 50_000).contains(&p50),
        "answer time p50 {p50} µs for answers delayed by {d} µs"
    );
    assert_eq!(polls.stale_answers, 0);
    let check = model_check(&r);
    assert!(check.contains("as the model predicts"), "{check}");
}

/// Every finding the report makes of a single run.
fn all_findings(r: &RunResult) -> Vec<String> {
    let results = Results {
        schema_version: loadgen::results::SCHEMA_VERSION,
        tool: loadgen::driver::tool_info(),
        machine: loadgen::driver::machine_info(),
        scenario: small_scenario(None),
        started_unix: 0,
        runs: vec![r.clone()],
    };
    let view = ReportView::new(&results).expect("a view");
    findings(&view)
}

/// The findings' model check of a single run.
fn model_check(r: &RunResult) -> String {
    all_findings(r)
        .into_iter()
        .find(|f| f.starts_with("Model check"))
        .unwrap_or_else(|| panic!("no model check for {}", r.label))
}

// ---- Stale poll answers ----

fn held_back() -> Faults {
    Faults {
        hold_back_once: Some(4),
        ..Faults::default()
    }
}

/// Probes 4, 8, …, 40 are each left out of the first poll answer that would carry them, on
/// every connection, and come in the next one: late, but nothing is lost, doubled or reordered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_back_poll_answers_lose_nothing() {
    let (r, f) = run_with("poll@100ms", held_back()).await;
    assert_clean_run(&r, &f);
    assert_delivered_once_in_order(&r, &f);
    assert!(f.stale_answers > 0, "{f:?}");
    // Each of the 10 candidates was decided once per receiver connection (held back, or included
    // because the poll came too soon after it was stored): one keep-alive connection per receiver.
    assert_eq!(
        f.stale_answers + f.hold_backs_skipped,
        CLIENTS * PROBES / 4,
        "{f:?}"
    );
}

/// `polls.stale_answers`: polls sent after a probe's 201 came back whose answer did not carry
/// it; exactly the answers the server made stale. The held-back probes arrive a poll late, so
/// the tail departs from the model and the model check must fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_poll_answers_are_counted_exactly_and_fail_the_model() {
    let (r, f) = run_with("poll@100ms", held_back()).await;
    assert_clean_run(&r, &f);
    assert!(f.stale_answers > 0, "{f:?}");
    let polls = r.polls.as_ref().expect("poll stats");
    assert_eq!(polls.stale_answers, f.stale_answers, "injected {f:?}");
    assert!(
        r.warnings.contains(&Warning::StaleAnswers {
            count: f.stale_answers
        }),
        "{:?}",
        r.warnings
    );
    let check = model_check(&r);
    assert!(check.contains("the model FAILS"), "{check}");
}

// ---- A receiver dropped mid-run catches up ----

/// The server disconnects the 3rd socket when its 10th message is due. The receiver reconnects
/// and catches up with `GET /messages?since=`, as the chat page does: nothing is missing or
/// doubled, and exactly the messages it could not get live (from the unsent one to its new
/// socket's start) are counted as delivered by the catch-up.
async fn a_dropped_receiver_catches_up(spec: &str) {
    let faults = Faults {
        kick_socket: Some((3, 10)),
        ..Faults::default()
    };
    let (r, f) = run_with(spec, faults).await;
    let d = &r.delivery;
    assert_eq!(r.outcome, Outcome::Completed, "{r:#?}");
    assert_eq!(f.kicked, 1, "{f:?}");
    assert!(f.catchup_gap >= 1, "{f:?}");
    assert_eq!(f.sockets, CLIENTS + 1, "one reconnect: {f:?}");
    assert_eq!(d.expected, PROBES * CLIENTS, "{spec}: {d:?}");
    assert_eq!(
        (d.delivered, d.missing, d.duplicates),
        (d.expected, 0, 0),
        "{spec}: {d:?}"
    );
    assert_eq!(
        d.delivered_by_catchup, f.catchup_gap,
        "{spec}: {d:?} vs injected {f:?}"
    );
    assert_eq!(
        r.traffic.requests.errors.get("closed").copied(),
        Some(1),
        "{spec}: {:?}",
        r.traffic.requests.errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_socketio_receiver_catches_up_exactly() {
    a_dropped_receiver_catches_up("socketio").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_socketio_polling_receiver_catches_up_exactly() {
    a_dropped_receiver_catches_up("socketio-polling").await;
}

// ---- Server memory per connection ----

/// Bytes each SSE stream of the memory-holding server allocates, writes and keeps.
const HELD_PER_STREAM: usize = 1 << 20;
/// Set (to the bytes to hold) in the child process that serves as the memory-holding server.
const HOLD_ENV: &str = "PUSHPOLL_TEST_HOLD_PER_STREAM";

/// Not a test: the body of the child process [`server_memory_per_connection_is_measured`]
/// starts (this test binary again, with [`HOLD_ENV`] set). A faulty server holding
/// [`HOLD_ENV`] bytes per SSE stream, its URL on stdout; it ends when its stdin closes, or
/// after two minutes at most. Without the variable it returns at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of server_memory_per_connection_is_measured"]
async fn memory_holding_server_process() {
    use tokio::io::AsyncReadExt;
    let Some(hold) = std::env::var(HOLD_ENV).ok().and_then(|v| v.parse().ok()) else {
        return;
    };
    let server = FaultyServer::start(Faults {
        hold_per_stream: Some(hold),
        ..Faults::default()
    })
    .await;
    println!("listening on {}", server.url());
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::io::stdin().read_to_end(&mut sink),
    )
    .await;
}

/// A server in its own process that holds 1 MiB per connection (every byte written, so
/// resident) until the connection ends: loadgen's server memory per connection is that 1 MiB,
/// within [−64 KiB, +96 KiB]. Below: the baseline's noise, spread over 15 connections (the
/// server's allocator may hand back to the OS, after the baseline was read, up to ~0.7 MB it
/// held then: seen here as −47 KiB per connection in the idle figure, 0.07 KiB at 10,000
/// connections) and the RSS's page granularity. Above: the server's own state per connection
/// (hyper's buffers, the connection's and the stream's tasks: 5–11 KiB measured here) and
/// what the messages added. A figure that lost the baseline, or counted another process,
/// would be off by megabytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_memory_per_connection_is_measured() {
    use std::process::Stdio;
    use tokio::io::AsyncBufReadExt;
    let exe = std::env::current_exe().expect("the test binary");
    let mut child = tokio::process::Command::new(exe)
        .args([
            "memory_holding_server_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLD_ENV, HELD_PER_STREAM.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the memory-holding server");
    let stdout = child.stdout.take().expect("piped");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        // libtest prints its own lines first, and `test NAME ... ` before the server's line.
        for _ in 0..20 {
            let line = lines.next_line().await.ok()??;
            if let Some((_, url)) = line.split_once("listening on ") {
                return Some(url.trim().to_string());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("the memory-holding server prints its URL within 30 s");
    let scenario = Scenario {
        clients: NonZeroUsize::new(CLIENTS as usize).expect("nonzero"),
        senders: NonZeroUsize::new(1).expect("nonzero"),
        warmup: Duration::ZERO,
        drain: Duration::from_secs(1),
        ..small_scenario(Some(url))
    };
    let r = run("sse", &scenario).await;
    drop(child.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    let ctx = format!("{:#?}", r.resources);
    assert_eq!(r.outcome, Outcome::Completed, "{ctx}");
    assert_eq!(r.resources.server_source, "proc", "a local process: {ctx}");
    let m = r.resources.server_memory.as_ref().expect("figure present");
    assert_eq!(m.connections, CLIENTS, "{ctx}");
    assert!(
        m.baseline_rss_bytes > 0 && m.peak_rss_bytes >= m.idle_rss_bytes,
        "{ctx}"
    );
    let held = HELD_PER_STREAM as f64;
    for per_connection in [m.per_connection_bytes, m.idle_per_connection_bytes] {
        assert!(
            (held - 64.0 * 1024.0..=held + 96.0 * 1024.0).contains(&per_connection),
            "{per_connection} bytes per connection, {held} held: {ctx}"
        );
    }
}
