//! `shard.json`: what one shard adds to its results folder for the merge.
//!
//! A shard's own `results.json` is a true but partial view: its latency histograms hold every
//! probe its receivers got (whichever shard sent it), but its delivery figures only pair its
//! own senders' probes with its own receivers, and it censors nothing (the merge does). Read
//! the merge.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ShardPlan;
use super::clock::ClockFacts;
use crate::recorder::ShardTallies;

/// The file's name inside a shard's results folder.
pub const SHARD_FILE: &str = "shard.json";
/// Bump when a field changes meaning.
pub const SHARD_SCHEMA: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardRecord {
    pub shard_schema: u32,
    pub run_id: String,
    /// The 32-bit id the probes carry (a hash of `run_id`).
    pub probe_run_id: u32,
    pub index: u32,
    pub count: u32,
    pub clock: ClockFacts,
    pub tallies: ShardTallies,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source} (did this shard finish?)")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a shard record: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path} has shard schema {found}; this loadgen reads {SHARD_SCHEMA}")]
    Version { path: PathBuf, found: u32 },
}

impl ShardRecord {
    pub fn new(plan: &ShardPlan, clock: ClockFacts, tallies: ShardTallies) -> ShardRecord {
        ShardRecord {
            shard_schema: SHARD_SCHEMA,
            run_id: plan.run_id.clone(),
            probe_run_id: plan.probe_run_id(),
            index: plan.spec.index,
            count: plan.spec.count,
            clock,
            tallies,
        }
    }

    /// Writes `DIR/shard.json` through a temporary file.
    pub fn save(&self, dir: &Path) -> Result<PathBuf, RecordError> {
        let path = dir.join(SHARD_FILE);
        let fail = |source| RecordError::Write {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(fail)?;
        let json = serde_json::to_vec(self).map_err(|e| fail(std::io::Error::other(e)))?;
        let tmp = dir.join(format!(".{SHARD_FILE}.tmp"));
        std::fs::write(&tmp, json).map_err(fail)?;
        std::fs::rename(&tmp, &path).map_err(fail)?;
        Ok(path)
    }

    pub fn load(dir: &Path) -> Result<ShardRecord, RecordError> {
        let path = dir.join(SHARD_FILE);
        let bytes = std::fs::read(&path).map_err(|source| RecordError::Read {
            path: path.clone(),
            source,
        })?;
        let record: ShardRecord =
            serde_json::from_slice(&bytes).map_err(|source| RecordError::Parse {
                path: path.clone(),
                source,
            })?;
        if record.shard_schema != SHARD_SCHEMA {
            return Err(RecordError::Version {
                path,
                found: record.shard_schema,
            });
        }
        Ok(record)
    }
}
