//! A spawned server child that dies mid-run ends the run within seconds, with partial results
//! and the child's exit in the outcome. (Its own test binary: the only child process here is the
//! server the run starts.)

mod support;

use std::time::Duration;

use loadgen::driver::run_strategy;
use loadgen::results::Outcome;
use support::{hooks, small_scenario};

/// Child processes of this test process, from /proc.
fn children() -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| s.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_child_ends_the_run_as_server_died() {
    let mut scenario = small_scenario(None);
    scenario.duration = Duration::from_secs(60);
    let run = tokio::spawn(async move {
        run_strategy(&scenario, &"socketio".parse().expect("spec"), &hooks()).await
    });
    // Wait (bounded) for the run's server child to appear, let messages flow, then kill it.
    let mut pids = Vec::new();
    for _ in 0..100 {
        pids = children();
        if !pids.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!pids.is_empty(), "the run started no server child");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = std::process::Command::new("kill")
        .arg("-9")
        .args(&pids)
        .status()
        .expect("kill");
    assert!(status.success());
    let r = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the run ends within seconds of the server's death")
        .expect("join")
        .expect("run");
    match &r.outcome {
        Outcome::ServerDied { detail } => assert!(detail.contains("exited"), "{detail}"),
        other => panic!("expected ServerDied, got {other:?}"),
    }
    assert!(r.traffic.requests.posts > 0, "partial numbers are kept");
}
