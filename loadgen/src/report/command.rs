//! `loadgen report DIR` (re-render every file from `DIR/results.json`) and
//! `loadgen report A/ B/ --out C/` (side by side, runs labelled `A:poll@1s`).

use std::path::PathBuf;

use super::{ReportError, merge, write_all};
use crate::results::Results;

/// Re-render reports from saved results, without running anything.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// Result folders (each holding a results.json). One folder is re-rendered in place; two
    /// or more are merged side by side into --out, runs labelled FOLDER:STRATEGY.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Output folder (default: the input folder; required with several inputs).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Renders the report folder and returns it with the files written.
pub fn run(args: &ReportArgs) -> Result<(PathBuf, Vec<PathBuf>), ReportError> {
    let (results, out) = match (args.dirs.as_slice(), &args.out) {
        ([dir], out) => (
            Results::load(dir)?,
            out.clone().unwrap_or_else(|| folder_of(dir)),
        ),
        (dirs, Some(out)) => {
            let names = merge::source_names(dirs);
            let inputs = names
                .into_iter()
                .zip(dirs)
                .map(|(name, dir)| Ok((name, Results::load(dir)?)))
                .collect::<Result<Vec<_>, ReportError>>()?;
            (merge::merge(inputs)?, out.clone())
        }
        (_, None) => {
            return Err(ReportError::Merge(
                "several result folders need --out DIR for the side-by-side report".into(),
            ));
        }
    };
    let written = write_all(&results, &out)?;
    Ok((out, written))
}

/// `DIR` for a folder, its parent for a path to results.json itself.
fn folder_of(path: &std::path::Path) -> PathBuf {
    if path.is_file() {
        path.parent()
            .map_or_else(|| PathBuf::from("."), |p| p.to_path_buf())
    } else {
        path.to_path_buf()
    }
}
