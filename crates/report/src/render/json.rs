//! `results.json`: the stored results themselves (µs, bytes, seconds; see the README).

use super::{Exporter, OutputFile, ReportError, ReportView};

pub struct JsonExporter;

impl Exporter for JsonExporter {
    fn render(&self, view: &ReportView<'_>) -> Result<Vec<OutputFile>, ReportError> {
        let json = serde_json::to_vec_pretty(view.results).map_err(|e| ReportError::Write {
            path: "results.json".into(),
            source: std::io::Error::other(e),
        })?;
        Ok(vec![OutputFile::new("results.json", json)])
    }
}
