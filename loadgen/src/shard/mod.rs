//! Load from many generator processes, merged exactly.
//!
//! `loadgen run … --shard I/N --run-id ID --start-at TIME` runs the I-th share of one
//! scenario: receiver `c` and sender `s` belong to shard `c mod N` and `s mod N`, so the N
//! shards together run exactly the single run's clients and schedule (same ids, same poll
//! phases, same send instants). All shards share the run id (probes carry its hash, so every
//! shard measures every probe of the run whoever sent it) and the schedule's origin, the
//! wall-clock start instant, mapped once onto each process's monotonic clock ([`clock`]).
//!
//! Each shard writes its own results folder plus `shard.json` ([`record`]): its sent probes,
//! its receivers' memberships and per-probe delivery counts. `loadgen merge` ([`merge`]) adds
//! the histograms (HdrHistogram adds exactly), sums the counters and decides loss against the
//! union of sent probes and the receivers of every shard. `loadgen run --workers K`
//! ([`workers`]) does it all on one machine.

pub mod clock;
pub mod merge;
pub mod record;
pub mod workers;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;

use crate::recorder::ShardTallies;

/// `I/N`: shard I (from 0) of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    pub index: u32,
    pub count: u32,
}

impl ShardSpec {
    /// Does this shard run client (or sender) `i` of the whole scenario?
    pub fn owns(&self, i: usize) -> bool {
        i % self.count as usize == self.index as usize
    }

    /// How many of `total` clients (or senders) this shard runs.
    pub fn share(&self, total: usize) -> usize {
        (0..total).filter(|&i| self.owns(i)).count()
    }
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for ShardSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not I/N (shard I from 0 of N, e.g. 0/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(format!(
                "shard {index}/{count}: I must be below N, N above 0"
            ));
        }
        Ok(ShardSpec { index, count })
    }
}

/// `--start-at`: RFC 3339 (`2026-05-01T12:00:00Z`, fractions allowed) or Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartAt(pub SystemTime);

impl FromStr for StartAt {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(ms) = s.parse::<u64>() {
            return Ok(StartAt(UNIX_EPOCH + Duration::from_millis(ms)));
        }
        humantime::parse_rfc3339_weak(s)
            .map(StartAt)
            .map_err(|e| format!("`{s}` is neither RFC 3339 nor Unix milliseconds: {e}"))
    }
}

impl StartAt {
    /// Unix milliseconds, the form `--start-at` is passed on as.
    pub fn unix_ms(&self) -> u128 {
        self.0
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    }
}

/// The flags of a sharded `loadgen run` (all three or none), and `--workers`.
#[derive(Debug, Clone, Default, Args)]
pub struct ShardArgs {
    /// Run only shard I of N of the scenario (clients and senders with index mod N = I);
    /// needs --run-id, --start-at and --target. Merge the shards with `loadgen merge`.
    #[arg(long)]
    pub shard: Option<ShardSpec>,
    /// The run's id, the same in every shard (probes of other runs are ignored).
    #[arg(long)]
    pub run_id: Option<String>,
    /// When the senders' schedule starts, the same in every shard: RFC 3339 or Unix ms. The
    /// receivers connect before it. Shards' wall clocks must agree (see the README).
    #[arg(long)]
    pub start_at: Option<StartAt>,
    /// Local address to open every connection from (e.g. 127.0.0.2: each source address has
    /// its own ~28,000 ephemeral ports).
    #[arg(long)]
    pub source_ip: Option<IpAddr>,
    /// Run the scenario as K shard processes of this executable (each from its own source
    /// address in 127.0.0.0/8), wait for them and merge their results.
    #[arg(long)]
    pub workers: Option<std::num::NonZeroU32>,
}

/// Why the shard flags make no sense together.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ShardFlagError {
    #[error("--shard needs --run-id and --start-at (the same in every shard)")]
    Incomplete,
    #[error("--run-id and --start-at only apply with --shard")]
    WithoutShard,
    #[error("--shard needs --target: every shard must measure the same server")]
    NoTarget,
    #[error("--workers starts the shards itself: do not combine it with --shard")]
    WorkersAndShard,
    #[error(
        "{shards} shards for {clients} clients: every shard needs a receiver (raise --clients or use fewer shards)"
    )]
    TooFewClients { shards: u32, clients: usize },
}

/// Every shard runs at least one receiver (a shard without any would have nobody to measure).
pub fn check_clients(shards: u32, clients: usize) -> Result<(), ShardFlagError> {
    if (shards as usize) > clients {
        return Err(ShardFlagError::TooFewClients { shards, clients });
    }
    Ok(())
}

/// A shard's place in its run, resolved from the flags.
#[derive(Debug, Clone)]
pub struct ShardPlan {
    pub spec: ShardSpec,
    pub run_id: String,
    pub start_at: StartAt,
}

impl ShardPlan {
    /// The plan the flags ask for, `None` for an ordinary run.
    pub fn from_args(a: &ShardArgs, has_target: bool) -> Result<Option<ShardPlan>, ShardFlagError> {
        match (a.shard, &a.run_id, a.start_at) {
            (Some(_), _, _) if a.workers.is_some() => Err(ShardFlagError::WorkersAndShard),
            (Some(spec), Some(run_id), Some(start_at)) => {
                if !has_target {
                    return Err(ShardFlagError::NoTarget);
                }
                Ok(Some(ShardPlan {
                    spec,
                    run_id: run_id.clone(),
                    start_at,
                }))
            }
            (Some(_), _, _) => Err(ShardFlagError::Incomplete),
            (None, None, None) => Ok(None),
            (None, _, _) if a.workers.is_some() => Ok(None),
            (None, _, _) => Err(ShardFlagError::WithoutShard),
        }
    }

    /// The probes' 32-bit run id: FNV-1a of the run id text, the same in every shard.
    pub fn probe_run_id(&self) -> u32 {
        probe_run_id(&self.run_id)
    }
}

/// FNV-1a (32 bit) of `id`.
pub fn probe_run_id(id: &str) -> u32 {
    id.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// What the driver needs to run as a shard, and where it leaves its tallies.
#[derive(Debug, Clone)]
pub struct ShardRun {
    pub plan: ShardPlan,
    pub anchor: clock::Anchor,
    /// Filled by the driver after the close.
    pub tallies: Arc<Mutex<Option<ShardTallies>>>,
}

impl ShardRun {
    pub fn new(plan: ShardPlan) -> ShardRun {
        let anchor = clock::Anchor::new(plan.start_at.0);
        ShardRun {
            plan,
            anchor,
            tallies: Arc::new(Mutex::new(None)),
        }
    }

    pub fn take_tallies(&self) -> Option<ShardTallies> {
        self.tallies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_specs_parse_and_split_every_client_once() {
        let specs: Vec<ShardSpec> = ["0/3", "1/3", "2/3"]
            .iter()
            .map(|s| s.parse().expect("valid"))
            .collect();
        for i in 0..100 {
            assert_eq!(specs.iter().filter(|s| s.owns(i)).count(), 1, "client {i}");
        }
        assert_eq!(specs.iter().map(|s| s.share(100)).sum::<usize>(), 100);
        for bad in ["3/3", "1", "a/2", "0/0", "-1/2"] {
            assert!(bad.parse::<ShardSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn start_at_reads_rfc3339_and_unix_ms() {
        let a: StartAt = "2026-05-01T12:00:00.250Z".parse().expect("rfc3339");
        let b: StartAt = "1777636800250".parse().expect("ms");
        assert_eq!(a, b);
        assert_eq!(b.unix_ms(), 1_777_636_800_250);
        assert!("tomorrow".parse::<StartAt>().is_err());
    }

    #[test]
    fn flags_must_come_together() {
        let mut a = ShardArgs {
            shard: Some("0/2".parse().expect("spec")),
            ..ShardArgs::default()
        };
        assert_eq!(
            ShardPlan::from_args(&a, true).expect_err("incomplete"),
            ShardFlagError::Incomplete
        );
        a.run_id = Some("r".into());
        a.start_at = Some("0".parse().expect("ms"));
        assert_eq!(
            ShardPlan::from_args(&a, false).expect_err("no target"),
            ShardFlagError::NoTarget
        );
        assert!(ShardPlan::from_args(&a, true).expect("ok").is_some());
        a.shard = None;
        assert_eq!(
            ShardPlan::from_args(&a, true).expect_err("no shard"),
            ShardFlagError::WithoutShard
        );
        assert_eq!(probe_run_id("a"), 0xe40c_292c);
        assert!(check_clients(4, 4).is_ok());
        assert_eq!(
            check_clients(5, 4).expect_err("a shard without clients"),
            ShardFlagError::TooFewClients {
                shards: 5,
                clients: 4
            }
        );
    }
}
