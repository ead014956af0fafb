//! A small real `compare` on loopback (a fresh child server per run) produces a complete report
//! folder, and `report` re-renders it alone and side by side with a second folder.

use clap::Parser;
use loadgen::cli::{Cli, Command};
use loadgen::results::{Outcome, Results};
use loadgen::sweep::{self, Execution};
use tokio_util::sync::CancellationToken;

const STRATEGIES: [&str; 3] = ["poll@500ms", "sse", "socketio"];

fn parse(args: &[&str]) -> Command {
    Cli::try_parse_from(args).expect("arguments parse").command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_compare_writes_a_complete_folder_and_report_merges_two() {
    let root = tempfile::tempdir().expect("tempdir");
    let a = root.path().join("A");
    let a_str = a.to_str().expect("utf-8 path");
    let Command::Compare(args) = parse(&[
        "loadgen",
        "compare",
        "--strategies",
        &STRATEGIES.join(","),
        "--clients",
        "6",
        "--rate",
        "10",
        "--duration",
        "2s",
        "--warmup",
        "1s",
        "--drain",
        "3s",
        "--out",
        a_str,
    ]) else {
        panic!("not compare");
    };
    let sweep = args.to_sweep().expect("valid sweep");
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_loadgen"));
    let outcome = sweep::run(
        &sweep,
        &Execution::InProcess,
        Some(exe),
        CancellationToken::new(),
    )
    .await
    .expect("sweep runs");
    assert!(outcome.failed.is_empty(), "{}", outcome.summary());
    assert_eq!(outcome.exit_code(), 0);

    let saved = Results::load(&a).expect("results.json");
    let labels: Vec<&str> = saved.runs.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, STRATEGIES);
    for run in &saved.runs {
        assert_eq!(run.outcome, Outcome::Completed, "{}", run.label);
        assert!(
            run.latency.corrected.count > 0,
            "{} delivered nothing",
            run.label
        );
    }
    let mut files = vec![
        "results.json".to_string(),
        "summary.md".into(),
        "summary.csv".into(),
        "report.html".into(),
    ];
    files.extend(STRATEGIES.iter().map(|s| format!("{s}.hgrm")));
    for f in &files {
        assert!(a.join(f).is_file(), "{f} missing");
    }
    let md = std::fs::read_to_string(a.join("summary.md")).expect("summary.md");
    assert!(
        md.contains("Model check (T/2 + measured server share ")
            && md.contains("): poll@500ms p50"),
        "{md}"
    );

    // `report A` re-renders in place from results.json alone.
    std::fs::remove_file(a.join("report.html")).expect("remove");
    let Command::Report(args) = parse(&["loadgen", "report", a_str]) else {
        panic!("not report");
    };
    loadgen::report::command::run(&args).expect("re-render");
    assert!(a.join("report.html").is_file());

    // `report A B --out C`: side by side.
    let b = root.path().join("B");
    std::fs::create_dir(&b).expect("mkdir");
    std::fs::copy(a.join("results.json"), b.join("results.json")).expect("copy");
    let c = root.path().join("C");
    let Command::Report(args) = parse(&[
        "loadgen",
        "report",
        a_str,
        b.to_str().expect("utf-8"),
        "--out",
        c.to_str().expect("utf-8"),
    ]) else {
        panic!("not report");
    };
    loadgen::report::command::run(&args).expect("side by side");
    let md = std::fs::read_to_string(c.join("summary.md")).expect("summary.md");
    assert!(md.contains("## Side by side: A vs B"), "{md}");
    assert!(md.contains("B:socketio"), "{md}");
    assert!(c.join("A_sse.hgrm").is_file() && c.join("B_sse.hgrm").is_file());
    let merged = Results::load(&c).expect("merged results.json");
    assert_eq!(merged.runs.len(), 2 * STRATEGIES.len());

    // Several folders without --out is refused with a message naming the flag.
    let Command::Report(args) = parse(&["loadgen", "report", a_str, a_str]) else {
        panic!("not report");
    };
    let err = loadgen::report::command::run(&args).expect_err("needs --out");
    assert!(err.to_string().contains("--out"), "{err}");
}
