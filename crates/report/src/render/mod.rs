//! Reports rendered from [`Results`]: one [`Exporter`] per format, one file per exporter
//! (`json`, `markdown`, `csv`, `hgrm`, `html`, `svg`), as in hyperfine's `export/`.
//!
//! Every exporter reads the same [`ReportView`]: the stored results plus the views derived at
//! render time (the polling model, ratios to push, bytes per delivered message). Nothing derived is
//! stored in `results.json`. [`write_all`] rewrites every file, so a sweep can call it after each
//! run and a crash leaves a complete folder of what was measured so far.

pub mod charts;
pub mod columns;
pub mod context;
pub mod csv;
pub mod findings;
pub mod hgrm;
pub mod html;
pub mod json;
pub mod markdown;
pub mod merge;
pub mod svg;
pub mod units;
pub mod view;

use std::path::{Path, PathBuf};

use crate::results::{HistogramCodecError, Results, ResultsFileError};
pub use view::{ReportView, RunView};

/// Why a report could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "run `{label}`: stored latency histogram is unreadable ({source}); re-run that strategy"
    )]
    Histogram {
        label: String,
        source: HistogramCodecError,
    },
    #[error(transparent)]
    Results(#[from] ResultsFileError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("chart `{chart}` could not be drawn: {detail}")]
    Chart { chart: &'static str, detail: String },
    #[error("CSV export failed: {0}")]
    Csv(#[from] ::csv::Error),
    #[error("{0}")]
    Merge(String),
}

/// One output file: its name inside the report folder and its bytes.
#[derive(Debug, Clone)]
pub struct OutputFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

impl OutputFile {
    pub fn new(name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        OutputFile {
            name: name.into(),
            bytes: bytes.into(),
        }
    }
}

/// One report format. Most produce one file; `.hgrm` produces one per run.
pub trait Exporter {
    fn render(&self, view: &ReportView<'_>) -> Result<Vec<OutputFile>, ReportError>;
}

/// Every exporter, in the order their files are written (`results.json` first).
pub fn exporters() -> Vec<Box<dyn Exporter>> {
    vec![
        Box::new(json::JsonExporter),
        Box::new(markdown::MarkdownExporter),
        Box::new(csv::CsvExporter),
        Box::new(hgrm::HgrmExporter),
        Box::new(html::HtmlExporter),
        Box::new(svg::SvgExporter),
    ]
}

/// Renders every format from `results` into `dir` (created if needed) and returns the paths
/// written. Each file goes through a temporary name and a rename, so readers never see half a file.
pub fn write_all(results: &Results, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let view = ReportView::new(results)?;
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for exporter in exporters() {
        for file in exporter.render(&view)? {
            written.push(write_atomically(dir, &file)?);
        }
    }
    Ok(written)
}

fn write_atomically(dir: &Path, file: &OutputFile) -> Result<PathBuf, ReportError> {
    let path = dir.join(&file.name);
    let tmp = dir.join(format!(".{}.tmp", file.name));
    let fail = |source| ReportError::Write {
        path: path.clone(),
        source,
    };
    std::fs::write(&tmp, &file.bytes).map_err(fail)?;
    std::fs::rename(&tmp, &path).map_err(fail)?;
    Ok(path)
}

/// A run label made safe for a file name (`A:poll@1s` → `A_poll@1s`).
pub fn file_stem(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@') {
                c
            } else {
                '_'
            }
        })
        .collect()
}
