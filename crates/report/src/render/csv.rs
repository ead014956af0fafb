//! `summary.csv`: one row per run with every column of the shared list, numbers in the unit
//! named by each header (`_ms`, `_bytes`, ratios as fractions).

use super::columns::{COLUMNS, STRATEGY};
use super::{Exporter, OutputFile, ReportError, ReportView};

pub struct CsvExporter;

impl Exporter for CsvExporter {
    fn render(&self, view: &ReportView<'_>) -> Result<Vec<OutputFile>, ReportError> {
        let mut w = ::csv::Writer::from_writer(Vec::new());
        let columns: Vec<_> = std::iter::once(&STRATEGY).chain(COLUMNS).collect();
        w.write_record(columns.iter().map(|c| c.key))?;
        for run in &view.runs {
            w.write_record(columns.iter().map(|c| c.raw(view, run)))?;
        }
        let bytes = w.into_inner().map_err(|e| ReportError::Write {
            path: "summary.csv".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        Ok(vec![OutputFile::new("summary.csv", bytes)])
    }
}
