//! Sharded runs with real processes: `loadgen run --shard I/N` children against one server,
//! `loadgen merge` of their folders, and `loadgen run --workers K` end to end. The merged
//! figures must equal exactly what the shards measured, and loss must be exact across shards.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use loadgen::results::{EncodedHistogram, Outcome, Results, RunResult, Warning};
use loadgen::shard::record::ShardRecord;
use support::faulty::{Faults, FaultyServer};
use tokio::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_loadgen");
/// 20 probes/s for 2 s: 40 measured probes.
const PROBES: u64 = 40;

/// The scenario every test here runs (whole-run figures; each shard runs its share).
fn scenario_flags(strategy: &str, clients: u64, senders: u64, warmup: &str) -> Vec<String> {
    [
        "--strategy",
        strategy,
        "--clients",
        &clients.to_string(),
        "--senders",
        &senders.to_string(),
        "--rate",
        "20",
        "--duration",
        "2s",
        "--warmup",
        warmup,
        "--drain",
        "1s",
        "--connect-rate",
        "1000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A start instant far enough ahead for the children to start and connect.
fn start_at_ms() -> String {
    let at = SystemTime::now() + Duration::from_secs(4);
    at.duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis()
        .to_string()
}

fn shard_command(
    flags: &[String],
    target: &str,
    spec: &str,
    run_id: &str,
    start: &str,
    out: &Path,
) -> Command {
    let mut cmd = Command::new(EXE);
    cmd.arg("run")
        .args(flags)
        .args(["--target", target, "--shard", spec, "--run-id", run_id])
        .args(["--start-at", start, "--json", "--out"])
        .arg(out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs shards `0..n` of `flags` against `target`; returns their folders.
async fn run_shards(flags: &[String], target: &str, n: u32, dir: &Path) -> Vec<PathBuf> {
    let start = start_at_ms();
    let run_id = format!("test-{}", std::process::id());
    let mut children = Vec::new();
    let mut dirs = Vec::new();
    for i in 0..n {
        let out = dir.join(format!("shard-{i}"));
        let spec = format!("{i}/{n}");
        let child = shard_command(flags, target, &spec, &run_id, &start, &out)
            .spawn()
            .expect("spawn shard");
        children.push(child);
        dirs.push(out);
    }
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().await.expect("shard ran");
        assert!(
            out.status.success(),
            "shard {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    dirs
}

async fn merge(dirs: &[PathBuf], out: &Path) -> Output {
    Command::new(EXE)
        .arg("merge")
        .args(dirs)
        .arg("--out")
        .arg(out)
        .output()
        .await
        .expect("merge ran")
}

fn run_of(dir: &Path) -> RunResult {
    let mut r = Results::load(dir).expect("results.json");
    assert_eq!(r.runs.len(), 1);
    r.runs.remove(0)
}

fn merged_key(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("results.json")).expect("results.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["merged"].clone()
}

fn decode(h: &EncodedHistogram) -> hdrhistogram::Histogram<u64> {
    h.decode().expect("histogram decodes")
}

/// Merged figures are the shards' figures added: histograms exactly, counters summed.
fn assert_merged_is_sum(merged: &RunResult, shards: &[RunResult]) {
    let mut corrected = loadgen::results::new_latency_histogram();
    let mut uncorrected = loadgen::results::new_latency_histogram();
    for s in shards {
        corrected
            .add(decode(&s.latency.histogram_corrected))
            .expect("same bounds");
        uncorrected
            .add(decode(&s.latency.histogram_uncorrected))
            .expect("same bounds");
    }
    let sum = |f: fn(&RunResult) -> u64| shards.iter().map(f).sum::<u64>();
    if merged.latency.corrected.censored == 0 {
        assert!(decode(&merged.latency.histogram_corrected) == corrected);
        assert!(decode(&merged.latency.histogram_uncorrected) == uncorrected);
    }
    assert_eq!(
        merged.latency.corrected.count,
        corrected.len() + merged.latency.corrected.censored
    );
    assert_eq!(
        merged.traffic.requests.posts,
        sum(|r| r.traffic.requests.posts)
    );
    assert_eq!(
        merged.traffic.requests.receiver_requests,
        sum(|r| r.traffic.requests.receiver_requests)
    );
    assert_eq!(merged.traffic.bytes_up, sum(|r| r.traffic.bytes_up));
    assert_eq!(merged.traffic.bytes_down, sum(|r| r.traffic.bytes_down));
    assert_eq!(
        merged.traffic.receiver_bytes,
        sum(|r| r.traffic.receiver_bytes)
    );
    assert_eq!(merged.traffic.deliveries, sum(|r| r.traffic.deliveries));
    assert_eq!(
        merged.traffic.connections_opened,
        sum(|r| r.traffic.connections_opened)
    );
    assert_eq!(merged.clients.connected, sum(|r| r.clients.connected));
    assert_eq!(
        merged.schedule.planned_sends,
        sum(|r| r.schedule.planned_sends)
    );
    assert_eq!(merged.delivery.duplicates, sum(|r| r.delivery.duplicates));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_merge_to_exactly_what_they_measured() {
    let server = support::in_process_server().await;
    let target = format!("http://{}", server.addr());
    let tmp = tempfile::tempdir().expect("tempdir");
    let clients = 12;
    let flags = scenario_flags("socketio", clients, 3, "500ms");
    let dirs = run_shards(&flags, &target, 2, tmp.path()).await;
    let out = tmp.path().join("merged");
    let m = merge(&dirs, &out).await;
    assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    let shards: Vec<RunResult> = dirs.iter().map(|d| run_of(d)).collect();
    let merged = run_of(&out);
    assert_merged_is_sum(&merged, &shards);
    // Every shard measured every probe, whichever shard sent it: its histogram holds each of
    // the 40 probes once per receiver it runs.
    for (s, dir) in shards.iter().zip(&dirs) {
        let record = ShardRecord::load(dir).expect("shard.json");
        assert_eq!(s.clients.connected, clients / 2, "{s:#?}");
        assert_eq!(
            s.latency.corrected.count,
            PROBES * clients / 2,
            "shard {}",
            record.index
        );
        assert_eq!(record.tallies.members.len() as u64, clients / 2);
    }
    // Senders 0 and 2 in shard 0, sender 1 in shard 1: the union is the whole schedule.
    let d = &merged.delivery;
    assert_eq!(merged.outcome, Outcome::Completed);
    assert_eq!(d.probes_sent, PROBES, "{d:?}");
    assert_eq!(merged.schedule.planned_sends, PROBES);
    assert_eq!(d.expected, PROBES * clients, "{d:?}");
    assert_eq!(d.delivered, d.expected, "{d:?}");
    assert_eq!(d.missing, 0);
    assert_eq!(merged.latency.corrected.count, PROBES * clients);
    assert_eq!(merged.latency.probes, PROBES);
    let info = merged_key(&out);
    assert_eq!(info["count"], 2);
    assert_eq!(info["shards"].as_array().map(Vec::len), Some(2));
    assert_eq!(info["missing"].as_array().map(Vec::len), Some(0));
    assert_eq!(info["inconsistent_pairs"], 0);
    assert!(info["clock"]["spread_ns"].is_u64(), "{info}");
    let alone: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("merged.json")).expect("merged.json"),
    )
    .expect("json");
    assert_eq!(alone, info);
    assert!(
        std::fs::read_to_string(out.join("summary.md"))
            .expect("summary.md")
            .contains("Merged from 2 of 2 shards")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_account_dropped_deliveries_exactly() {
    let server = FaultyServer::start(Faults {
        drop_every: Some((3, 4)),
        ..Faults::default()
    })
    .await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let clients = 15;
    // No warm-up: every probe the server drops is a measured one.
    let flags = scenario_flags("socketio", clients, 2, "0s");
    let dirs = run_shards(&flags, &server.url(), 3, tmp.path()).await;
    let f = server.counts();
    let out = tmp.path().join("merged");
    let m = merge(&dirs, &out).await;
    assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    let shards: Vec<RunResult> = dirs.iter().map(|d| run_of(d)).collect();
    let merged = run_of(&out);
    assert_merged_is_sum(&merged, &shards);
    let d = &merged.delivery;
    assert_eq!(f.stored, PROBES, "{f:?}");
    assert_eq!(d.probes_sent, PROBES, "{d:?}");
    assert_eq!(d.expected, PROBES * clients, "{d:?}");
    assert!(f.dropped > 0, "{f:?}");
    assert_eq!(d.missing, f.dropped, "{d:?} vs injected {f:?}");
    assert_eq!(d.expected, d.delivered + d.missing, "{d:?}");
    assert_eq!(d.duplicates, 0, "{d:?}");
    // Each missing pair enters the tail censored at its shard's close.
    assert_eq!(merged.latency.corrected.censored, d.missing);
    assert_eq!(merged.latency.corrected.count, d.delivered + d.missing);
    assert!(merged.warnings.contains(&Warning::MessagesLost {
        missing: f.dropped,
        expected: d.expected
    }));
    assert_eq!(merged_key(&out)["inconsistent_pairs"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_or_missing_shard_makes_the_merge_say_so() {
    let server = support::in_process_server().await;
    let target = format!("http://{}", server.addr());
    let tmp = tempfile::tempdir().expect("tempdir");
    let flags = scenario_flags("sse", 6, 2, "0s");
    let start = start_at_ms();
    // Shard 2 of 3 dies at once (killed): its folder never gets a shard.json.
    let dead = tmp.path().join("shard-2");
    let mut doomed = shard_command(&flags, &target, "2/3", "dies", &start, &dead)
        .spawn()
        .expect("spawn");
    doomed.kill().await.expect("kill");
    std::fs::create_dir_all(&dead).expect("dead shard's folder");
    let mut children = Vec::new();
    let mut dirs = Vec::new();
    for i in 0..2 {
        let out = tmp.path().join(format!("shard-{i}"));
        let spec = format!("{i}/3");
        children.push(
            shard_command(&flags, &target, &spec, "dies", &start, &out)
                .spawn()
                .expect("spawn"),
        );
        dirs.push(out);
    }
    for c in children {
        assert!(c.wait_with_output().await.expect("ran").status.success());
    }
    let out = tmp.path().join("merged");
    let mut given = dirs.clone();
    given.push(dead.clone());
    let m = merge(&given, &out).await;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&m.stdout),
        String::from_utf8_lossy(&m.stderr)
    );
    assert!(
        !m.status.success(),
        "a merge without shard 2 must fail: {said}"
    );
    assert!(said.contains("[2]") && said.contains("missing"), "{said}");
    assert!(
        said.contains("shard-2") && said.contains("unreadable"),
        "{said}"
    );
    let merged = run_of(&out);
    assert!(
        matches!(merged.outcome, Outcome::Failed { .. }),
        "{:?}",
        merged.outcome
    );
    assert!(merged.warnings.contains(&Warning::ShardsMissing {
        missing: vec![2],
        count: 3
    }));
    assert_eq!(merged_key(&out)["missing"], serde_json::json!([2]));

    // A folder of another run is refused outright.
    let other = tmp.path().join("other");
    copy_dir(&dirs[1], &other);
    let record_path = other.join("shard.json");
    let mut record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record_path).expect("read")).expect("json");
    record["run_id"] = "another-run".into();
    std::fs::write(&record_path, record.to_string()).expect("write");
    let m = merge(&[dirs[0].clone(), other], &tmp.path().join("refused")).await;
    assert!(!m.status.success());
    assert!(
        String::from_utf8_lossy(&m.stderr).contains("another-run"),
        "{}",
        String::from_utf8_lossy(&m.stderr)
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_run_shards_and_merge_end_to_end() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("w");
    let clients = 10;
    let run = Command::new(EXE)
        .arg("run")
        .args(scenario_flags("sse", clients, 2, "500ms"))
        .args(["--workers", "2", "--json", "--out"])
        .arg(&out)
        .output()
        .await
        .expect("ran");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let merged = run_of(&out);
    let d = &merged.delivery;
    assert_eq!(merged.outcome, Outcome::Completed, "{merged:#?}");
    assert_eq!(d.probes_sent, PROBES, "{d:?}");
    assert_eq!(d.expected, PROBES * clients, "{d:?}");
    assert_eq!(d.delivered, d.expected, "{d:?}");
    let info = merged_key(&out);
    assert_eq!(info["count"], 2);
    let shards: Vec<RunResult> = (0..2)
        .map(|i| run_of(&out.join("shards").join(format!("shard-{i}"))))
        .collect();
    assert_merged_is_sum(&merged, &shards);
}

/// `--source-ip`: every connection leaves from the given loopback address (what gives each
/// worker its own ephemeral ports).
#[tokio::test]
async fn connections_leave_from_the_source_address() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let source = loadgen::shard::workers::source_ip(1);
    let target = loadgen::parts::TargetAddr::new(addr, &addr.to_string())
        .expect("target")
        .with_source(Some(source));
    let wire = std::sync::Arc::new(Default::default());
    let (conn, accepted) = tokio::join!(
        loadgen::parts::connect_tcp(&target, &wire),
        listener.accept()
    );
    conn.expect("connects");
    let (_, peer) = accepted.expect("accepts");
    assert_eq!(peer.ip(), source);
    assert_eq!(source.to_string(), "127.0.0.3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_runs_every_strategy_as_merged_workers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("c");
    let clients = 6;
    let mut flags = scenario_flags("sse", clients, 2, "0s");
    // `compare` takes --strategies instead of --strategy.
    flags.drain(0..2);
    let run = Command::new(EXE)
        .arg("compare")
        .args(flags)
        .args(["--strategies", "sse,socketio", "--workers", "2", "--out"])
        .arg(&out)
        .output()
        .await
        .expect("ran");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let results = Results::load(&out).expect("results.json");
    assert_eq!(results.runs.len(), 2);
    for r in &results.runs {
        let d = &r.delivery;
        assert_eq!(r.outcome, Outcome::Completed, "{}", r.label);
        assert_eq!(d.expected, PROBES * clients, "{}: {d:?}", r.label);
        assert_eq!(d.delivered, d.expected, "{}: {d:?}", r.label);
        let merged = out.join("workers").join(&r.label);
        assert_eq!(merged_key(&merged)["count"], 2, "{}", r.label);
    }
}
