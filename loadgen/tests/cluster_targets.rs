//! `--target URL1,URL2,URL3` against three real chat nodes sharing one real `redis-server`:
//! receivers and senders spread round-robin, per-node figures that add up to the totals, and
//! probes posted to one node delivered through the others; a bad or duplicate list refused.

mod support;

use std::path::Path;

use loadgen::results::NodeResult;
use loadgen::results::RunResult;
use support::redis::{RedisServer, nodes};
use support::{assert_lossless, run, small_scenario};

const NODES: usize = 3;
/// 20 clients over 3 nodes: 7, 7 and 6 (receiver i → node i mod 3); 3 senders, one per node.
const CLIENTS: usize = 20;
const SENDERS: usize = 3;

fn scenario(list: String) -> loadgen::scenario::Scenario {
    let mut s = small_scenario(Some(list));
    s.clients = CLIENTS.try_into().expect("nonzero");
    s.senders = SENDERS.try_into().expect("nonzero");
    s
}

/// Every node has its share of receivers and senders; its receivers got every probe (those
/// posted to the two other nodes included); the nodes' figures add up to the run's.
fn assert_spread(r: &RunResult, urls: &[String]) {
    assert_lossless(r);
    let nodes: &[NodeResult] = r.nodes.as_deref().expect("per-node figures");
    assert_eq!(nodes.len(), NODES, "{}", r.label);
    let probes = r.delivery.probes_sent;
    assert!(probes > 0, "{}: no probe sent", r.label);
    for (k, n) in nodes.iter().enumerate() {
        let share = (0..CLIENTS).filter(|i| i % NODES == k).count() as u64;
        assert_eq!(n.url, urls[k], "{}", r.label);
        assert_eq!(
            (n.receivers, n.connected),
            (share, share),
            "{}: {n:?}",
            r.label
        );
        assert_eq!(n.senders, 1, "{}: {n:?}", r.label);
        // Each receiver got all probes, two thirds of them posted to other nodes.
        assert_eq!(n.expected, share * probes, "{}: {n:?}", r.label);
        assert_eq!(
            (n.delivered, n.missing),
            (n.expected, 0),
            "{}: {n:?}",
            r.label
        );
        assert!(
            n.latency_p50_ms.is_some() && n.latency_p99_ms.is_some(),
            "{n:?}"
        );
        assert!(n.requests > 0 || r.label != "poll@250ms", "{n:?}");
        assert!(n.bytes_up > 0 && n.bytes_down > 0, "{}: {n:?}", r.label);
        assert!(
            n.server_cpu_seconds.is_some(),
            "{}: node CPU unread: {n:?}",
            r.label
        );
    }
    let sum = |f: fn(&NodeResult) -> u64| nodes.iter().map(f).sum::<u64>();
    assert_eq!(sum(|n| n.delivered), r.delivery.delivered, "{}", r.label);
    assert_eq!(sum(|n| n.expected), r.delivery.expected, "{}", r.label);
    assert_eq!(sum(|n| n.missing), r.delivery.missing, "{}", r.label);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_redis_share_the_load_and_every_probe_crosses_them() {
    let redis = RedisServer::start();
    let exe = Path::new(env!("CARGO_BIN_EXE_loadgen"));
    let servers = nodes(exe, &redis, NODES).await;
    let urls: Vec<String> = servers
        .iter()
        .map(|s| format!("http://{}", s.addr))
        .collect();
    let list = urls.join(",");
    for spec in ["socketio", "sse", "poll@250ms"] {
        let r = run(spec, &scenario(list.clone())).await;
        assert_spread(&r, &urls);
        assert_eq!(r.target, list);
        assert!(
            r.resources.server.is_some(),
            "{spec}: the nodes' CPU summed"
        );
    }
    for s in servers {
        s.stop().await;
    }
}

/// The CLI writes the nodes into results.json and a per-node table into summary.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reports_each_node() {
    let redis = RedisServer::start();
    let exe = Path::new(env!("CARGO_BIN_EXE_loadgen"));
    let servers = nodes(exe, &redis, 2).await;
    let list = format!("http://{},http://{}", servers[0].addr, servers[1].addr);
    let out = tempfile::tempdir().expect("tempdir");
    let output = tokio::process::Command::new(exe)
        .args([
            "run",
            "--strategy",
            "sse",
            "--clients",
            "6",
            "--senders",
            "2",
        ])
        .args([
            "--rate",
            "10",
            "--duration",
            "1s",
            "--warmup",
            "200ms",
            "--drain",
            "3s",
        ])
        .args(["--target", &list, "--out"])
        .arg(out.path())
        .output()
        .await
        .expect("run the binary");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let saved = loadgen::results::Results::load(out.path()).expect("results.json");
    let nodes = saved.runs[0].nodes.as_ref().expect("nodes in results.json");
    assert_eq!(
        nodes.iter().map(|n| n.receivers).collect::<Vec<_>>(),
        [3, 3]
    );
    let md = std::fs::read_to_string(out.path().join("summary.md")).expect("summary.md");
    assert!(md.contains("## Nodes: sse"), "{md}");
    assert!(
        md.contains(&format!("| http://{} | 3/3 | 1 |", servers[0].addr)),
        "{md}"
    );
    for s in servers {
        s.stop().await;
    }
}

#[test]
fn a_duplicate_or_bad_url_in_the_list_is_refused_naming_it() {
    let refuse = |list: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args(["run", "--target", list])
            .output()
            .expect("run the binary");
        assert!(!output.status.success(), "{list} accepted");
        String::from_utf8_lossy(&output.stderr).to_string()
    };
    let err = refuse("http://127.0.0.1:9,http://127.0.0.1:10,http://127.0.0.1:9/");
    assert!(
        err.contains("`http://127.0.0.1:9/`") && err.contains("twice"),
        "{err}"
    );
    let err = refuse("http://127.0.0.1:9,127.0.0.1:10");
    assert!(err.contains("`127.0.0.1:10`"), "{err}");
    let err = refuse("http://127.0.0.1:9,,http://127.0.0.1:10");
    assert!(err.contains("empty entry"), "{err}");
    let err = refuse("http://127.0.0.1:9,http://192.0.2.1:3000");
    assert!(err.contains("--allow-remote"), "{err}");
}
