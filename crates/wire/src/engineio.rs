//! Engine.IO v4 packets and payloads, Socket.IO v5 packets: the client side of the wire.
//!
//! Engine.IO packets are a type digit and data: open `0{json}`, close `1`, ping `2`, pong `3`,
//! message `4…`, upgrade `5`, noop `6`. A polling body joins several packets with the byte 0x1E.
//! A Socket.IO packet travels inside an Engine.IO message:
//! `<type>[<attachments>-][/<nsp>,][<ack id>][<json>]`.
//!
//! Decoders borrow from their input and never allocate; encoders append to a caller's buffer.
//! socketioxide's own packet crates are written for the server side (its Engine.IO parser rejects
//! the open packet, its session ids must be 16 characters where Node's are 20, and its Socket.IO
//! parser rejects CONNECT_ERROR), so the client has its own.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;

/// The byte that separates packets in an Engine.IO polling payload.
pub const RECORD_SEPARATOR: char = '\u{1e}';

/// Why a packet could not be decoded. Every variant means the peer does not speak Engine.IO v4 /
/// Socket.IO v5 as this client does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("empty Engine.IO / Socket.IO packet")]
    Empty,
    #[error("unknown Engine.IO packet type {0:?}; is the target an Engine.IO v4 server?")]
    UnknownEioType(char),
    #[error("unknown Socket.IO packet type {0:?}; is the target a Socket.IO v5 server?")]
    UnknownSioType(char),
    #[error("binary Engine.IO / Socket.IO packets are not supported by this client")]
    BinaryUnsupported,
    #[error("unexpected data after a {0} packet")]
    TrailingData(&'static str),
    #[error("Engine.IO open packet is not valid handshake JSON: {0}")]
    BadOpen(String),
    #[error("Socket.IO ack id is not a number below 2^64")]
    BadAckId,
    #[error("Socket.IO ACK packet without an ack id")]
    MissingAckId,
    #[error("Socket.IO {0} packet has no valid JSON data")]
    BadData(&'static str),
    #[error("Socket.IO event arguments are not a JSON array starting with the event name: {0}")]
    BadEvent(String),
}

/// One Engine.IO packet, borrowing its data from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EioPacket<'a> {
    /// Handshake JSON, see [`parse_open`].
    Open(&'a str),
    Close,
    /// Heartbeat (`""`) or upgrade probe (`"probe"`).
    Ping(&'a str),
    Pong(&'a str),
    Message(&'a str),
    Upgrade,
    Noop,
}

/// Decodes one Engine.IO text packet (a WebSocket text frame, or one record of a polling body).
pub fn decode_packet(s: &str) -> Result<EioPacket<'_>, CodecError> {
    let (kind, data) = split_type(s)?;
    let no_data = |packet, name| {
        if data.is_empty() {
            Ok(packet)
        } else {
            Err(CodecError::TrailingData(name))
        }
    };
    match kind {
        b'0' => Ok(EioPacket::Open(data)),
        b'1' => no_data(EioPacket::Close, "close"),
        b'2' => Ok(EioPacket::Ping(data)),
        b'3' => Ok(EioPacket::Pong(data)),
        b'4' => Ok(EioPacket::Message(data)),
        b'5' => no_data(EioPacket::Upgrade, "upgrade"),
        b'6' => no_data(EioPacket::Noop, "noop"),
        b'b' => Err(CodecError::BinaryUnsupported),
        _ => Err(CodecError::UnknownEioType(first_char(s))),
    }
}

/// Appends one Engine.IO packet to `out`.
pub fn encode_packet(p: &EioPacket<'_>, out: &mut String) {
    let (kind, data) = match *p {
        EioPacket::Open(d) => ('0', d),
        EioPacket::Close => ('1', ""),
        EioPacket::Ping(d) => ('2', d),
        EioPacket::Pong(d) => ('3', d),
        EioPacket::Message(d) => ('4', d),
        EioPacket::Upgrade => ('5', ""),
        EioPacket::Noop => ('6', ""),
    };
    out.push(kind);
    out.push_str(data);
}

/// Decodes a polling body: packets separated by 0x1E. An empty body holds no packets.
pub fn decode_payload(body: &str) -> impl Iterator<Item = Result<EioPacket<'_>, CodecError>> {
    (!body.is_empty())
        .then(|| body.split(RECORD_SEPARATOR))
        .into_iter()
        .flatten()
        .map(decode_packet)
}

/// Appends a polling body: the packets joined by 0x1E.
pub fn encode_payload<'a>(packets: impl IntoIterator<Item = EioPacket<'a>>, out: &mut String) {
    for (i, p) in packets.into_iter().enumerate() {
        if i > 0 {
            out.push(RECORD_SEPARATOR);
        }
        encode_packet(&p, out);
    }
}

/// The handshake data of an Engine.IO open packet (intervals in milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenInfo {
    pub sid: String,
    pub upgrades: Vec<String>,
    pub ping_interval: u64,
    pub ping_timeout: u64,
    /// Largest polling body the server accepts; absent on older servers.
    #[serde(default)]
    pub max_payload: Option<u64>,
}

/// Parses the JSON of an [`EioPacket::Open`].
pub fn parse_open(json: &str) -> Result<OpenInfo, CodecError> {
    serde_json::from_str(json).map_err(|e| CodecError::BadOpen(e.to_string()))
}

/// One Socket.IO packet, borrowing from the Engine.IO message text. `nsp` is `"/"` when the
/// packet names no namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SioPacket<'a> {
    /// Sent by the client to join; answered by the server with `data` = `{"sid":…}`.
    Connect {
        nsp: &'a str,
        data: Option<&'a str>,
    },
    Disconnect {
        nsp: &'a str,
    },
    /// `args` is the JSON array text `["name", arg, …]`, see [`split_event`].
    Event {
        nsp: &'a str,
        ack: Option<u64>,
        args: &'a str,
    },
    Ack {
        nsp: &'a str,
        ack: u64,
        args: &'a str,
    },
    /// The server refused the namespace; `data` is its JSON reason.
    ConnectError {
        nsp: &'a str,
        data: &'a str,
    },
}

/// Decodes the Socket.IO packet carried by an [`EioPacket::Message`] (the text after the `4`).
///
/// Event and ack arguments are checked to be a JSON array only by their brackets, so the receive
/// hot path reads each message once; [`split_event`] validates what it extracts.
pub fn decode_sio(s: &str) -> Result<SioPacket<'_>, CodecError> {
    let (kind, rest) = split_type(s)?;
    match kind {
        b'0'..=b'4' => {}
        b'5' | b'6' => return Err(CodecError::BinaryUnsupported),
        _ => return Err(CodecError::UnknownSioType(first_char(s))),
    }
    let (nsp, data) = split_nsp(rest);
    match kind {
        b'0' if data.is_empty() => Ok(SioPacket::Connect { nsp, data: None }),
        b'0' => Ok(SioPacket::Connect {
            nsp,
            data: Some(json_object(data, "CONNECT")?),
        }),
        b'1' if data.is_empty() => Ok(SioPacket::Disconnect { nsp }),
        b'1' => Err(CodecError::TrailingData("Socket.IO DISCONNECT")),
        b'2' => {
            let (ack, args) = split_ack(data)?;
            Ok(SioPacket::Event {
                nsp,
                ack,
                args: json_array(args, "EVENT")?,
            })
        }
        b'3' => {
            let (ack, args) = split_ack(data)?;
            let ack = ack.ok_or(CodecError::MissingAckId)?;
            Ok(SioPacket::Ack {
                nsp,
                ack,
                args: json_array(args, "ACK")?,
            })
        }
        _ => Ok(SioPacket::ConnectError {
            nsp,
            data: json_value(data, "CONNECT_ERROR")?,
        }),
    }
}

/// Appends the Engine.IO message that joins namespace `nsp`: `40` or `40/admin,`.
pub fn encode_sio_connect(nsp: &str, out: &mut String) {
    out.push_str("40");
    push_nsp(nsp, out);
}

/// Appends the Engine.IO message carrying a Socket.IO event: `42["message",{…}]`.
/// `arg_json` must be one JSON value (it is not checked); an empty `arg_json` sends no argument.
pub fn encode_sio_event(nsp: &str, event: &str, arg_json: &str, out: &mut String) {
    out.push_str("42");
    push_nsp(nsp, out);
    out.push('[');
    push_json_string(event, out);
    if !arg_json.is_empty() {
        out.push(',');
        out.push_str(arg_json);
    }
    out.push(']');
}

/// Splits event arguments `["name", first, …]` into the event name and the raw JSON text of the
/// first argument (`""` when the event has none). Later arguments are checked but not returned.
pub fn split_event(args: &str) -> Result<(String, &str), CodecError> {
    let (name, first) = event_parts(args)?;
    Ok((name.into_owned(), first))
}

/// [`split_event`] without allocating for names that contain no JSON escape.
pub fn split_event_borrowed(args: &str) -> Result<(Cow<'_, str>, &str), CodecError> {
    event_parts(args)
}

/// The event name and the first argument's raw text, after checking the whole array.
fn event_parts(args: &str) -> Result<(Cow<'_, str>, &str), CodecError> {
    let bad = |what: &str| CodecError::BadEvent(what.to_owned());
    let inner = args
        .trim_start()
        .strip_prefix('[')
        .ok_or_else(|| bad("no '['"))?;
    let (name, after_name) = next_json_value::<JsonStr<'_>>(inner).map_err(|e| bad(&e))?;
    let after_name = after_name.trim_start();
    let (first, mut rest) = match after_name.strip_prefix(',') {
        Some(tail) => next_json_value::<IgnoredAny>(tail)
            .map_err(|e| bad(&e))
            .map(|(_, r)| {
                let first = &tail[..tail.len() - r.len()];
                (first.trim(), r)
            })?,
        None => ("", after_name),
    };
    // Check the remaining arguments so that a truncated frame is an error, not a partial event.
    loop {
        rest = rest.trim_start();
        if let Some(tail) = rest.strip_prefix(']') {
            return if tail.trim().is_empty() {
                Ok((name.0, first))
            } else {
                Err(bad("text after ']'"))
            };
        }
        let tail = rest
            .strip_prefix(',')
            .ok_or_else(|| bad("expected ',' or ']'"))?;
        rest = next_json_value::<IgnoredAny>(tail).map_err(|e| bad(&e))?.1;
    }
}

/// A JSON string that borrows from the input unless it contains escapes.
struct JsonStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for JsonStr<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = JsonStr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("the event name as a JSON string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(JsonStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(JsonStr(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(Visit)
    }
}

/// Reads one JSON value from the start of `s` (leading whitespace allowed); returns it and the rest.
fn next_json_value<'a, T: Deserialize<'a>>(s: &'a str) -> Result<(T, &'a str), String> {
    let mut stream = serde_json::Deserializer::from_str(s).into_iter::<T>();
    match stream.next() {
        Some(Ok(value)) => Ok((value, &s[stream.byte_offset()..])),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("missing value".to_owned()),
    }
}

/// Splits the type byte from the rest. A non-ASCII first byte leaves an empty rest; every decoder
/// rejects it as an unknown type.
fn split_type(s: &str) -> Result<(u8, &str), CodecError> {
    let kind = *s.as_bytes().first().ok_or(CodecError::Empty)?;
    Ok((kind, s.get(1..).unwrap_or("")))
}

fn first_char(s: &str) -> char {
    s.chars().next().unwrap_or('\0')
}

/// A namespace starts with '/' and runs to the first ',' (or the end, as socket.io-parser reads it).
fn split_nsp(s: &str) -> (&str, &str) {
    if !s.starts_with('/') {
        return ("/", s);
    }
    match s.find(',') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    }
}

fn split_ack(s: &str) -> Result<(Option<u64>, &str), CodecError> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Ok((None, s));
    }
    let ack = s[..digits].parse().map_err(|_| CodecError::BadAckId)?;
    Ok((Some(ack), &s[digits..]))
}

fn json_array<'a>(s: &'a str, what: &'static str) -> Result<&'a str, CodecError> {
    if s.starts_with('[') && s.ends_with(']') {
        Ok(s)
    } else {
        Err(CodecError::BadData(what))
    }
}

/// CONNECT / CONNECT_ERROR data is rare, so it is fully validated.
fn json_value<'a>(s: &'a str, what: &'static str) -> Result<&'a str, CodecError> {
    serde_json::from_str::<IgnoredAny>(s)
        .map(|_| s)
        .map_err(|_| CodecError::BadData(what))
}

fn json_object<'a>(s: &'a str, what: &'static str) -> Result<&'a str, CodecError> {
    if s.starts_with('{') {
        json_value(s, what)
    } else {
        Err(CodecError::BadData(what))
    }
}

fn push_nsp(nsp: &str, out: &mut String) {
    if !nsp.is_empty() && nsp != "/" {
        if !nsp.starts_with('/') {
            out.push('/');
        }
        out.push_str(nsp);
        out.push(',');
    }
}

/// Event names are nearly always plain; only escape-needing names go through serde_json.
fn push_json_string(s: &str, out: &mut String) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        // Serializing a str to JSON cannot fail.
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests;
