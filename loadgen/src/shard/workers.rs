//! `loadgen run --workers K`: one machine past one process's file and port limits. Starts the
//! server (unless `--target`), then K shard processes of this executable, each opening its
//! connections from its own loopback address (127.0.0.2, 127.0.0.3, …: each address has its
//! own ephemeral ports), all with one run id and one start instant; waits for them and merges
//! their folders (`OUT/shards/shard-I`) into `OUT`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use super::merge::{self, MergeError, Merged};
use super::{ShardSpec, StartAt};
use crate::scenario::{Scenario, StrategySpec};
use crate::target::{ChildServer, TargetError};

/// Time for K processes to start and check the server, on top of the connect ramp.
const START_MARGIN: Duration = Duration::from_secs(3);

/// What the caller (the CLI) settles before the workers start.
#[derive(Debug, Clone)]
pub struct WorkersPlan {
    pub workers: u32,
    /// The scenario's `loadgen run` flags, without --target, --out and the shard flags.
    pub run_flags: Vec<String>,
    /// `--target`, or `None` to start the project's server here.
    pub target: Option<String>,
    pub clients: usize,
    pub connect_rate: f64,
    pub out: PathBuf,
    /// This executable (tests pass the built binary).
    pub exe: PathBuf,
}

impl WorkersPlan {
    /// K workers running `spec` under `scenario`, merged into `out`.
    pub fn new(
        workers: u32,
        spec: &StrategySpec,
        scenario: &Scenario,
        out: PathBuf,
        exe: PathBuf,
    ) -> WorkersPlan {
        WorkersPlan {
            workers,
            run_flags: run_flags(spec, scenario),
            target: scenario.target.clone(),
            clients: scenario.clients.get(),
            connect_rate: scenario.connect_rate,
            out,
            exe,
        }
    }
}

/// `loadgen run` flags for `spec` under `scenario`, as a shard process gets them (without
/// --target, --out, --json and the shard flags, which [`spawn_shard`] adds).
pub fn run_flags(spec: &StrategySpec, s: &Scenario) -> Vec<String> {
    fn value(v: &impl clap::ValueEnum) -> String {
        v.to_possible_value()
            .map(|p| p.get_name().to_string())
            .unwrap_or_default()
    }
    let secs = |d: Duration| d.as_secs_f64().to_string();
    let mut f: Vec<String> = vec![
        "--strategy".into(),
        spec.label(),
        "--clients".into(),
        s.clients.to_string(),
        "--senders".into(),
        s.senders.to_string(),
        "--rate".into(),
        s.rate.to_string(),
        "--arrivals".into(),
        value(&s.arrivals),
        "--payload-bytes".into(),
        s.payload_bytes.to_string(),
        "--duration".into(),
        secs(s.duration),
        "--warmup".into(),
        secs(s.warmup),
        "--drain".into(),
        secs(s.drain),
        "--connect-rate".into(),
        s.connect_rate.to_string(),
        "--seed".into(),
        s.seed.to_string(),
    ];
    if s.allow_remote {
        f.push("--allow-remote".into());
    }
    // How the shards get in (TLS trust, headers, auth, login) and the safety limits: each shard
    // is its own client of the target, with the same credentials and ceilings as one run.
    let a = &s.access;
    if let Some(ca) = &a.tls.ca_cert {
        f.push("--ca-cert".into());
        f.push(ca.display().to_string());
    }
    if a.tls.insecure {
        f.push("--insecure".into());
    }
    if let Some(profile) = &a.profile {
        f.push("--profile".into());
        f.push(profile.clone());
    }
    for h in &a.headers {
        f.push("--header".into());
        f.push(format!("{}: {}", h.name, h.value));
    }
    if let Some(auth) = &a.socketio_auth {
        f.push("--socketio-auth".into());
        f.push(auth.clone());
    }
    if let Some(login) = &a.login {
        f.push("--login".into());
        f.extend([login.method.clone(), login.url.clone(), login.body.clone()]);
    }
    if let Some(ceiling) = s.safety.max_request_rate {
        f.push("--max-request-rate".into());
        f.push(ceiling.to_string());
    }
    if let Some(ceiling) = s.safety.max_connect_rate {
        f.push("--max-connect-rate".into());
        f.push(ceiling.to_string());
    }
    f.push("--abort-on-errors".into());
    f.push(s.safety.abort_on_errors_pct.to_string());
    f
}

#[derive(Debug, thiserror::Error)]
pub enum WorkersError {
    #[error(transparent)]
    Server(#[from] TargetError),
    #[error("cannot start shard {index}: {source}")]
    Spawn { index: u32, source: std::io::Error },
    #[error("cannot create {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Merge(#[from] MergeError),
    #[error("the merge holds no run")]
    Empty,
}

/// A finished `--workers` run: the merge, where it was written, and each shard's exit.
pub struct WorkersOutcome {
    pub merged: Merged,
    pub saved: PathBuf,
    /// Per shard: `None` when it exited 0, else what happened.
    pub failures: Vec<(u32, String)>,
}

/// The source address of worker `i`: 127.0.0.2 upwards, 250 per third octet.
pub fn source_ip(i: u32) -> IpAddr {
    let third = (i / 250).min(255) as u8;
    let fourth = (2 + i % 250) as u8;
    IpAddr::V4(Ipv4Addr::new(127, 0, third, fourth))
}

fn is_loopback_url(url: &str) -> bool {
    let host = url.split("://").nth(1).unwrap_or(url);
    host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")
}

pub async fn run(
    plan: &WorkersPlan,
    cancel: CancellationToken,
) -> Result<WorkersOutcome, WorkersError> {
    let server = match &plan.target {
        Some(_) => None,
        None => Some(ChildServer::spawn(&plan.exe, &[]).await?),
    };
    let target = match (&plan.target, &server) {
        (Some(url), _) => url.clone(),
        (None, Some(child)) => format!("http://{}", child.addr),
        (None, None) => unreachable!("a server was started when no target was given"),
    };
    let outcome = run_shards(plan, &target, cancel).await;
    if let Some(child) = server {
        child.stop().await;
    }
    outcome
}

async fn run_shards(
    plan: &WorkersPlan,
    target: &str,
    cancel: CancellationToken,
) -> Result<WorkersOutcome, WorkersError> {
    let now = SystemTime::now();
    let ramp = Duration::from_secs_f64(plan.clients as f64 / plan.connect_rate.max(1e-3));
    let start_at = StartAt(now + ramp + START_MARGIN);
    let unix_ms = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let run_id = format!("w{unix_ms}-{}", std::process::id());
    let from_own_address = is_loopback_url(target);
    let mut children: Vec<(u32, PathBuf, Child)> = Vec::new();
    for index in 0..plan.workers {
        let dir = plan.out.join("shards").join(format!("shard-{index}"));
        std::fs::create_dir_all(&dir).map_err(|source| WorkersError::Folder {
            path: dir.clone(),
            source,
        })?;
        let child = spawn_shard(
            plan,
            index,
            &dir,
            target,
            &run_id,
            start_at,
            from_own_address,
        )?;
        children.push((index, dir, child));
    }
    let mut failures = Vec::new();
    let mut dirs = Vec::new();
    for (index, dir, mut child) in children {
        let status = tokio::select! {
            s = child.wait() => s.map_or_else(|e| Some(e.to_string()), |s| (!s.success()).then(|| s.to_string())),
            _ = cancel.cancelled() => {
                // Ctrl-C reaches the whole process group: each shard writes partial results.
                child.wait().await.err().map(|e| e.to_string())
            }
        };
        if let Some(what) = status {
            failures.push((index, what));
        }
        dirs.push(dir);
    }
    let merged = merge::merge_dirs(&dirs)?;
    let saved = merge::write(&merged, &plan.out)?;
    Ok(WorkersOutcome {
        merged,
        saved,
        failures,
    })
}

fn spawn_shard(
    plan: &WorkersPlan,
    index: u32,
    dir: &Path,
    target: &str,
    run_id: &str,
    start_at: StartAt,
    from_own_address: bool,
) -> Result<Child, WorkersError> {
    let spec = ShardSpec {
        index,
        count: plan.workers,
    };
    let mut cmd = Command::new(&plan.exe);
    cmd.arg("run")
        .args(&plan.run_flags)
        .args(["--target", target])
        .args(["--shard", &spec.to_string()])
        .args(["--run-id", run_id])
        .args(["--start-at", &start_at.unix_ms().to_string()])
        .arg("--out")
        .arg(dir)
        .arg("--json");
    if from_own_address {
        cmd.args(["--source-ip", &source_ip(index).to_string()]);
    }
    let log =
        std::fs::File::create(dir.join("stderr.log")).map_err(|source| WorkersError::Folder {
            path: dir.join("stderr.log"),
            source,
        })?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| WorkersError::Spawn { index, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shard process parses back exactly the strategy and scenario it was given.
    #[test]
    fn run_flags_give_the_shards_the_same_scenario() {
        use clap::Parser;
        let parse = |args: Vec<String>| {
            let args = ["loadgen", "run"].map(String::from).into_iter().chain(args);
            match crate::cli::Cli::parse_from(args).command {
                crate::cli::Command::Run(run) => run,
                _ => panic!("a run"),
            }
        };
        let given = [
            "--clients",
            "7",
            "--rate",
            "2.5",
            "--duration",
            "1.25s",
            "--warmup",
            "0s",
            "--arrivals",
            "poisson",
            "--allow-remote",
            "--insecure",
            "--header",
            "Authorization: Bearer abc",
            "--header",
            "X-Team: a b",
            "--socketio-auth",
            r#"{"token":"abc"}"#,
            "--login",
            "post",
            "/login",
            r#"{"user":"a"}"#,
            "--max-request-rate",
            "1234.5",
            "--max-connect-rate",
            "150",
            "--abort-on-errors",
            "7.5",
        ];
        let scenario = parse(given.map(String::from).to_vec())
            .scenario
            .to_scenario()
            .expect("valid");
        for spec in [
            "poll-full-etag@250ms",
            "longpoll@7s",
            "sse",
            "socketio-polling",
        ] {
            let spec: StrategySpec = spec.parse().expect("spec");
            let run = parse(run_flags(&spec, &scenario));
            assert_eq!(run.spec().expect("spec"), spec);
            assert_eq!(run.scenario.to_scenario().expect("scenario"), scenario);
        }
    }

    #[test]
    fn every_worker_gets_its_own_loopback_address() {
        let ips: std::collections::HashSet<IpAddr> = (0..1000).map(source_ip).collect();
        assert_eq!(ips.len(), 1000);
        assert!(ips.iter().all(IpAddr::is_loopback));
        assert_eq!(source_ip(0).to_string(), "127.0.0.2");
        assert_eq!(source_ip(250).to_string(), "127.0.1.2");
        assert!(is_loopback_url("http://127.0.0.1:3000"));
        assert!(!is_loopback_url("http://10.0.0.1:3000"));
    }
}
