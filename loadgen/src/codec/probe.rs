//! Probe messages: the chat text a sender posts, carrying who sent it and when.
#![allow(dead_code)] // skeleton: filled in next commit

/// One probe: run id, sender, sequence, intended and actual send instant (ns since run start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub run_id: u32,
    pub sender: u32,
    pub seq: u64,
    pub intended_ns: u64,
    pub sent_ns: u64,
}

/// Why a text is not a probe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("not a probe message (ordinary chat text)")]
    NotAProbe,
    #[error("malformed probe message: {0}")]
    Malformed(&'static str),
}

impl Probe {
    /// Appends this probe's text, padded with '.' to at least `min_bytes`.
    pub fn encode(&self, min_bytes: usize, out: &mut String) {
        let _ = (min_bytes, out);
    }

    /// Parses a whole message text.
    pub fn parse(text: &str) -> Result<Probe, ProbeError> {
        let _ = text;
        Err(ProbeError::NotAProbe)
    }
}

/// Every probe inside any text, found by its magic prefix.
pub fn find_probes(raw: &str) -> impl Iterator<Item = Result<Probe, ProbeError>> + '_ {
    let _ = raw;
    std::iter::empty()
}
