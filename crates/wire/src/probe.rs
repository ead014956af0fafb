//! Probe messages: the chat text a sender posts, carrying who sent it and when.
//!
//! A probe is ordinary chat text, so the generator works against any server that stores and echoes
//! `{name, message}`. Its wire form is
//!
//! ```text
//! pp1 r=<run id, lowercase hex> s=<sender> q=<seq> i=<intended ns> t=<sent ns> ......
//! ```
//!
//! with decimal numbers, one space after every field (the last one too) and `.` padding up to the
//! requested size. The fields come in a fixed order, so parsing is a single left-to-right pass
//! without allocation. The alphabet (`a-z`, digits, space, `=`, `.`) never needs escaping in JSON,
//! HTML or SSE, which is what lets [`find_probes`] find probes in any raw response text without
//! parsing it first.

use std::fmt::Write as _;

/// The magic prefix that starts every probe (version 1 of the format).
pub const MAGIC: &str = "pp1 r=";

/// The longest probe header [`Probe::encode`] can write, before padding.
pub const MAX_HEADER_BYTES: usize = MAGIC.len() + 8 + 3 + 10 + 3 * (3 + 20) + 1;

/// The byte that pads a probe to its requested size.
pub const PAD: char = '.';

/// One probe: run id, sender, sequence, intended and actual send instant (ns since run start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Identifies the run, so probes left over from an earlier run on the same server are ignored.
    pub run_id: u32,
    /// Index of the sender that posted it.
    pub sender: u32,
    /// Per-sender sequence number, from 0.
    pub seq: u64,
    /// When the open-loop schedule wanted it sent (the coordinated-omission-free origin).
    pub intended_ns: u64,
    /// When the sender actually started the request.
    pub sent_ns: u64,
}

/// Why a text is not a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// Ordinary chat text, not written by a load generator.
    #[error("not a probe message (ordinary chat text)")]
    NotAProbe,
    /// Starts like a probe but is damaged: the server or a proxy altered the message text.
    #[error("malformed probe message ({0}); is the server altering message texts?")]
    Malformed(&'static str),
}

impl Probe {
    /// Appends this probe's text to `out`, padded with [`PAD`] so that the appended text is at
    /// least `min_bytes` long.
    pub fn encode(&self, min_bytes: usize, out: &mut String) {
        let start = out.len();
        // Writing into a String cannot fail.
        let _ = write!(
            out,
            "{MAGIC}{:x} s={} q={} i={} t={} ",
            self.run_id, self.sender, self.seq, self.intended_ns, self.sent_ns
        );
        let written = out.len() - start;
        out.extend(std::iter::repeat_n(PAD, min_bytes.saturating_sub(written)));
    }

    /// Parses a whole message text: a probe header followed by nothing but padding.
    pub fn parse(text: &str) -> Result<Probe, ProbeError> {
        if !text.starts_with(MAGIC) {
            return Err(ProbeError::NotAProbe);
        }
        let (probe, used) = parse_header(&text.as_bytes()[MAGIC.len()..])?;
        let rest = &text.as_bytes()[MAGIC.len() + used..];
        if rest.iter().all(|&b| b == PAD as u8) {
            Ok(probe)
        } else {
            Err(ProbeError::Malformed(
                "unexpected text after the probe fields",
            ))
        }
    }
}

/// Every probe inside any text (a JSON array, an SSE data line, a Socket.IO frame), found by the
/// magic prefix without parsing the surrounding format. Text without the prefix yields nothing; a
/// damaged probe yields one [`ProbeError::Malformed`] and the search goes on after its prefix.
pub fn find_probes(raw: &str) -> impl Iterator<Item = Result<Probe, ProbeError>> + '_ {
    let mut rest = raw;
    std::iter::from_fn(move || {
        let at = rest.find(MAGIC)?;
        let after_magic = &rest[at + MAGIC.len()..];
        match parse_header(after_magic.as_bytes()) {
            Ok((probe, used)) => {
                rest = &after_magic[used..];
                Some(Ok(probe))
            }
            Err(e) => {
                rest = after_magic;
                Some(Err(e))
            }
        }
    })
}

/// Parses the fields after [`MAGIC`]; returns the probe and the bytes used, trailing space included.
fn parse_header(b: &[u8]) -> Result<(Probe, usize), ProbeError> {
    let mut cur = Cursor { b, pos: 0 };
    let run_id = cur.hex_u32()?;
    cur.tag(b" s=")?;
    let sender = cur.dec(u64::from(u32::MAX), "sender")? as u32;
    cur.tag(b" q=")?;
    let seq = cur.dec(u64::MAX, "sequence")?;
    cur.tag(b" i=")?;
    let intended_ns = cur.dec(u64::MAX, "intended send time")?;
    cur.tag(b" t=")?;
    let sent_ns = cur.dec(u64::MAX, "send time")?;
    cur.tag(b" ")?;
    let probe = Probe {
        run_id,
        sender,
        seq,
        intended_ns,
        sent_ns,
    };
    Ok((probe, cur.pos))
}

/// A left-to-right reader over the probe fields.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn tag(&mut self, tag: &[u8]) -> Result<(), ProbeError> {
        if self.b[self.pos..].starts_with(tag) {
            self.pos += tag.len();
            Ok(())
        } else {
            Err(ProbeError::Malformed("fields missing or out of order"))
        }
    }

    fn hex_u32(&mut self) -> Result<u32, ProbeError> {
        let digits = self.b[self.pos..]
            .iter()
            .take_while(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            .count();
        if digits == 0 || digits > 8 {
            return Err(ProbeError::Malformed(
                "run id is not 1 to 8 lowercase hex digits",
            ));
        }
        let text = &self.b[self.pos..self.pos + digits];
        self.pos += digits;
        Ok(text.iter().fold(0u32, |acc, &d| {
            let v = if d.is_ascii_digit() {
                d - b'0'
            } else {
                d - b'a' + 10
            };
            (acc << 4) | u32::from(v)
        }))
    }

    fn dec(&mut self, max: u64, what: &'static str) -> Result<u64, ProbeError> {
        let digits = self.b[self.pos..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            return Err(ProbeError::Malformed(what));
        }
        let text = &self.b[self.pos..self.pos + digits];
        self.pos += digits;
        text.iter()
            .try_fold(0u64, |acc, &d| {
                acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            })
            .filter(|&v| v <= max)
            .ok_or(ProbeError::Malformed(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Probe {
        Probe {
            run_id: 0xdead_beef,
            sender: 3,
            seq: 42,
            intended_ns: 1_000_000,
            sent_ns: 1_000_250,
        }
    }

    fn encoded(p: &Probe, min: usize) -> String {
        let mut s = String::new();
        p.encode(min, &mut s);
        s
    }

    #[test]
    fn encodes_the_documented_format() {
        assert_eq!(
            encoded(&sample(), 0),
            "pp1 r=deadbeef s=3 q=42 i=1000000 t=1000250 "
        );
    }

    #[test]
    fn pads_to_the_minimum_size_and_round_trips() {
        for min in [0, 10, 44, 45, 46, 100, 4096] {
            let text = encoded(&sample(), min);
            assert_eq!(text.len(), min.max(44), "min {min}");
            assert_eq!(Probe::parse(&text), Ok(sample()), "min {min}");
        }
    }

    #[test]
    fn encode_appends_to_existing_text() {
        let mut s = String::from("{\"message\":\"");
        sample().encode(60, &mut s);
        assert_eq!(s.len(), 12 + 60);
        assert_eq!(Probe::parse(&s[12..]), Ok(sample()));
    }

    #[test]
    fn extreme_values_round_trip_within_the_header_bound() {
        let p = Probe {
            run_id: u32::MAX,
            sender: u32::MAX,
            seq: u64::MAX,
            intended_ns: u64::MAX,
            sent_ns: u64::MAX,
        };
        let text = encoded(&p, 0);
        assert_eq!(text.len(), MAX_HEADER_BYTES);
        assert_eq!(Probe::parse(&text), Ok(p));
        let zero = Probe {
            run_id: 0,
            sender: 0,
            seq: 0,
            intended_ns: 0,
            sent_ns: 0,
        };
        assert_eq!(Probe::parse(&encoded(&zero, 0)), Ok(zero));
    }

    #[test]
    fn ordinary_chat_is_not_a_probe() {
        for text in ["", "hello", "pp1", "pp1 hello", " pp1 r=1 s=1 q=1 i=1 t=1 "] {
            assert_eq!(Probe::parse(text), Err(ProbeError::NotAProbe), "{text:?}");
        }
    }

    #[test]
    fn damaged_probes_are_malformed() {
        for text in [
            "pp1 r=",
            "pp1 r=1 s=1 q=1 i=1 t=1",  // trailing space cut off
            "pp1 r=1 s=1 q=1 t=1 i=1 ", // out of order
            "pp1 r=ABC s=1 q=1 i=1 t=1 ",
            "pp1 r=123456789 s=1 q=1 i=1 t=1 ",
            "pp1 r=1 s=4294967296 q=1 i=1 t=1 ",
            "pp1 r=1 s=1 q=18446744073709551616 i=1 t=1 ",
            "pp1 r=1 s=-1 q=1 i=1 t=1 ",
            "pp1 r=1 s=1 q=1 i=1 t=1 ..x",
        ] {
            assert!(
                matches!(Probe::parse(text), Err(ProbeError::Malformed(_))),
                "{text:?}"
            );
        }
    }

    #[test]
    fn finds_probes_in_a_json_message_list() {
        let a = encoded(&sample(), 64);
        let b = encoded(
            &Probe {
                seq: 43,
                ..sample()
            },
            0,
        );
        let json = format!(
            r#"[{{"id":1,"name":"x","message":"{a}","ts":1}},{{"id":2,"name":"y","message":"hi","ts":2}},{{"id":3,"name":"x","message":"{b}","ts":3}}]"#
        );
        let found: Vec<_> = find_probes(&json).collect();
        assert_eq!(
            found,
            vec![
                Ok(sample()),
                Ok(Probe {
                    seq: 43,
                    ..sample()
                })
            ]
        );
    }

    #[test]
    fn finds_probes_in_sse_and_socketio_frames() {
        let p = encoded(&sample(), 80);
        let sse = format!(
            "id: 7\nevent: message\ndata: {{\"id\":7,\"name\":\"s0\",\"message\":\"{p}\"}}\n\n"
        );
        let sio = format!(r#"42["message",{{"id":7,"name":"s0","message":"{p}","ts":1}}]"#);
        for raw in [sse, sio] {
            assert_eq!(
                find_probes(&raw).collect::<Vec<_>>(),
                vec![Ok(sample())],
                "{raw}"
            );
        }
    }

    #[test]
    fn find_reports_damage_and_keeps_searching() {
        let good = encoded(&sample(), 0);
        let raw = format!("pp1 r=zz {good} chatter pp1 r=1 s=");
        let found: Vec<_> = find_probes(&raw).collect();
        assert_eq!(found.len(), 3);
        assert!(matches!(found[0], Err(ProbeError::Malformed(_))));
        assert_eq!(found[1], Ok(sample()));
        assert!(matches!(found[2], Err(ProbeError::Malformed(_))));
        assert_eq!(find_probes("no probes here").count(), 0);
    }

    #[test]
    fn probe_text_is_json_safe() {
        let text = encoded(&sample(), 200);
        let json = serde_json::to_string(&text).expect("a String always serializes");
        assert_eq!(json, format!("\"{text}\""), "nothing escaped");
    }

    fn any_probe() -> impl Strategy<Value = Probe> {
        (
            any::<u32>(),
            any::<u32>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
        )
            .prop_map(|(run_id, sender, seq, intended_ns, sent_ns)| Probe {
                run_id,
                sender,
                seq,
                intended_ns,
                sent_ns,
            })
    }

    proptest! {
        #[test]
        fn prop_round_trip(p in any_probe(), min in 0usize..300) {
            let text = encoded(&p, min);
            prop_assert!(text.len() >= min);
            prop_assert_eq!(Probe::parse(&text), Ok(p));
            prop_assert_eq!(find_probes(&text).collect::<Vec<_>>(), vec![Ok(p)]);
        }

        #[test]
        fn prop_any_text_is_parsed_or_rejected(s in "\\PC*") {
            let _ = Probe::parse(&s);
            prop_assert!(find_probes(&s).count() <= s.len());
        }

        #[test]
        fn prop_probe_like_text_never_panics(s in "pp1 r=[0-9a-fA-F]{0,10}( [sqit]=[0-9-]{0,22}){0,6} ?[. x]{0,3}") {
            let _ = Probe::parse(&s);
            let _ = find_probes(&s).count();
        }
    }
}
