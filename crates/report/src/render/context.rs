//! What was measured and where: the scenario, machine and tool lines that head every report.

use super::units;
use crate::results::Results;
use crate::scenario::Arrivals;
use crate::scenario::format_duration;

/// `(what, value)` pairs describing the scenario, machine and tool.
pub fn describe(results: &Results) -> Vec<(&'static str, String)> {
    let s = &results.scenario;
    let m = &results.machine;
    let started = std::time::UNIX_EPOCH + std::time::Duration::from_secs(results.started_unix);
    let mut machine = format!("{} cores", m.cores);
    if let Some(mem) = m.memory_bytes {
        machine.push_str(&format!(", {} memory", units::bytes(mem as f64)));
    }
    machine.push_str(&format!(", {}", m.os));
    if let Some(k) = &m.kernel {
        machine.push_str(&format!(" {k}"));
    }
    if let Some(cpu) = &m.cpu_model {
        machine.push_str(&format!(", {cpu}"));
    }
    let tool = format!(
        "{} {}{}",
        results.tool.name,
        results.tool.version,
        results
            .tool
            .git_commit
            .as_deref()
            .map(|c| format!(" (commit {c})"))
            .unwrap_or_default()
    );
    let mut lines = vec![
        (
            "load",
            format!(
                "{} receiving clients, {} senders posting {} messages/s in total ({}), payload ≥ {} B",
                units::thousands(s.clients.get() as i64),
                s.senders,
                units::number(s.rate),
                match s.arrivals {
                    Arrivals::Even => "evenly spaced",
                    Arrivals::Poisson => "Poisson arrivals",
                },
                s.payload_bytes
            ),
        ),
        (
            "timing",
            format!(
                "{} measured after {} warm-up, up to {} drain; clients connect at {}/s",
                format_duration(s.duration),
                format_duration(s.warmup),
                format_duration(s.drain),
                units::number(s.connect_rate)
            ),
        ),
        (
            "server",
            s.target.clone().unwrap_or_else(|| {
                "the project's chat-server, a fresh child process per run".into()
            }),
        ),
        ("machine", machine),
        ("tool", tool),
        (
            "started",
            humantime::format_rfc3339_seconds(started).to_string(),
        ),
    ];
    if results
        .runs
        .iter()
        .any(|r| r.traffic.wire == crate::results::Wire::Tls)
    {
        lines.push((
            "wire",
            "TLS: every byte figure is TLS records (handshakes, record headers, AEAD tags), \
             counted below the encryption"
                .into(),
        ));
    }
    lines
}
