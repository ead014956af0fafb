//! Ctrl-C during `loadgen compare` stops the sweep, keeps what was measured in a complete report
//! folder, and exits with 130.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use loadgen::results::{Outcome, Results};

#[test]
fn ctrl_c_leaves_a_complete_folder_and_exits_130() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("sweep");
    // Long runs: without the interrupt this would take minutes.
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "compare",
            "--strategies",
            "sse,socketio",
            "--clients",
            "4",
            "--duration",
            "120s",
            "--warmup",
            "1s",
            "--drain",
            "2s",
            "--out",
        ])
        .arg(&out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("loadgen starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    // The first line says the Ctrl-C handler is installed; without a terminal, each run is
    // announced on a line of its own. Interrupt the first run while it is under way.
    let first = lines.next().expect("a line").expect("utf-8");
    assert!(first.starts_with("compare: 2 strategies"), "{first}");
    let second = lines.next().expect("a line").expect("utf-8");
    assert_eq!(second, "[1/2] sse: running");
    let pid = child.id().to_string();
    let kill = |signal: &str| {
        Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill runs")
    };
    assert!(kill("-INT").success(), "SIGINT delivered");
    // Drain stderr so the child never blocks on a full pipe; wait for the exit, bounded.
    let drain = std::thread::spawn(move || lines.count());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait()));
    let status = match rx.recv_timeout(Duration::from_secs(90)) {
        Ok(status) => status.expect("wait"),
        Err(_) => {
            kill("-KILL");
            panic!("loadgen did not stop within 90 s of Ctrl-C");
        }
    };
    drain.join().expect("stderr reader");
    assert_eq!(status.code(), Some(130));
    let saved = Results::load(&out).expect("results.json written");
    let labels: Vec<&str> = saved.runs.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["sse"], "the sweep stopped at the first run");
    assert_eq!(saved.runs[0].outcome, Outcome::Interrupted);
    for f in ["summary.md", "summary.csv", "report.html"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
}
