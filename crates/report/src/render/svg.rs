//! `chart-*.svg`: each chart of `report.html` as a file of its own, for READMEs and slides.

use super::{Exporter, OutputFile, ReportError, ReportView, charts};

pub struct SvgExporter;

impl Exporter for SvgExporter {
    fn render(&self, view: &ReportView<'_>) -> Result<Vec<OutputFile>, ReportError> {
        Ok(charts::all(view)?
            .into_iter()
            .map(|c| OutputFile::new(format!("chart-{}.svg", c.id), c.svg))
            .collect())
    }
}
