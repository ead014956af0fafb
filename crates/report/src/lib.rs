//! pushpoll's results and reports, with no runtime or network code in them, so results can be
//! rendered and merged anywhere:
//!
//! - [`scenario`]: the load a run applies (clients, rate, phases, strategy specs such as
//!   `poll@1s`, access and safety settings), as written into `results.json`.
//! - [`results`]: the schema of `results.json` (one [`results::RunResult`] per strategy);
//!   [`nodes`]: each node's share when a run spread its clients over several servers.
//! - [`bootstrap`]: percentile confidence intervals resampled over probes.
//! - [`render`]: every report format rendered from results (JSON, Markdown, CSV, `.hgrm`, SVG
//!   charts, self-contained HTML) and the side-by-side merge of several results files.

pub mod bootstrap;
pub mod nodes;
pub mod render;
pub mod results;
pub mod scenario;
