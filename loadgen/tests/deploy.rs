//! The `deploy/` manifests run flags this `loadgen` accepts, and their shards add up to one
//! whole run: N shards with indices 0..N-1, the same scenario in each, the merge after all.
//! (A structural check: no YAML parser is linked; the commands are written as one-line flow
//! sequences of double-quoted strings, which are JSON arrays.)

use std::path::PathBuf;

use clap::Parser;
use loadgen::cli::{Cli, Command};
use loadgen::shard::ShardSpec;

fn deploy_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `KEY: [...]` line whose array starts with `"run"`, parsed, with `$(VAR)` (Kubernetes)
/// and `${VAR…}` (Compose) replaced by `value(VAR)`.
fn run_commands(text: &str, key: &str, value: &dyn Fn(&str) -> String) -> Vec<Vec<String>> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix(key))
        .filter_map(|rest| serde_json::from_str::<Vec<String>>(rest.trim()).ok())
        .filter(|args| args.first().is_some_and(|a| a == "run"))
        .map(|args| args.iter().map(|a| substitute(a, value)).collect())
        .collect()
}

fn substitute(arg: &str, value: &dyn Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = arg;
    while let Some(at) = rest.find(['$']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 1..];
        let (open, close) = match tail.chars().next() {
            Some('(') => ('(', ')'),
            Some('{') => ('{', '}'),
            _ => panic!("unexpected $ in {arg}"),
        };
        let end = tail
            .find(close)
            .unwrap_or_else(|| panic!("unclosed {open} in {arg}"));
        let name: String = tail[1..end]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        out.push_str(&value(&name));
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Parses a command with the real CLI; returns its shard and its flags without the
/// per-shard ones (`--shard`, `--out`).
fn parse(args: &[String]) -> (ShardSpec, Vec<String>) {
    let cli =
        Cli::try_parse_from(std::iter::once("loadgen".to_string()).chain(args.iter().cloned()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let Command::Run(run) = cli.command else {
        panic!("not a run: {args:?}")
    };
    let spec = run.sharding.shard.expect("a shard");
    assert!(run.sharding.run_id.is_some() && run.sharding.start_at.is_some());
    assert!(run.scenario.target.is_some(), "{args:?}");
    let mut common = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--shard" || a == "--out" {
            it.next();
        } else {
            common.push(a.clone());
        }
    }
    (spec, common)
}

fn field(text: &str, key: &str) -> u32 {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{key}` number"))
}

#[test]
fn the_kubernetes_indexed_job_runs_one_shard_per_completion_index() {
    let text = deploy_file("k8s/loadgen-shards.yaml");
    assert!(text.contains("completionMode: Indexed"));
    assert!(text.contains("batch.kubernetes.io/job-completion-index"));
    let n = field(&text, "completions:");
    assert_eq!(field(&text, "parallelism:"), n);
    for index in 0..n {
        let value = |var: &str| match var {
            "SHARD_INDEX" => index.to_string(),
            "START_AT" => "2030-01-01T00:00:00Z".into(),
            "TARGET" => "http://10.0.0.5:3000".into(),
            other => format!("{other}-value"),
        };
        let commands = run_commands(&text, "args:", &value);
        assert_eq!(commands.len(), 1, "one shard container");
        let (spec, _) = parse(&commands[0]);
        assert_eq!(spec, ShardSpec { index, count: n });
    }
    let merge = deploy_file("k8s/merge-job.yaml");
    assert!(merge.contains("loadgen merge"));
}

#[test]
fn the_compose_file_runs_every_shard_once_with_one_scenario_then_the_merge() {
    let text = deploy_file("compose/compose.yaml");
    let value = |var: &str| match var {
        "START_AT" => "1900000000000".to_string(),
        "TARGET" => "http://target:3000".into(),
        other => format!("{other}-value"),
    };
    let shards: Vec<(ShardSpec, Vec<String>)> = run_commands(&text, "command:", &value)
        .iter()
        .map(|c| parse(c))
        .collect();
    let n = shards.len() as u32;
    assert!(n >= 2);
    for (i, (spec, common)) in shards.iter().enumerate() {
        assert_eq!(
            *spec,
            ShardSpec {
                index: i as u32,
                count: n
            }
        );
        assert_eq!(common, &shards[0].1, "shard {i} runs another scenario");
        assert!(
            text.contains(&format!(
                "shard-{i}: {{condition: service_completed_successfully}}"
            )),
            "the merge waits for shard {i}"
        );
    }
    assert!(text.contains("loadgen merge"));
}
