//! Engine.IO v4 packets and payloads, Socket.IO v5 packets.
#![allow(dead_code)] // skeleton: filled in next commit

use serde::Deserialize;

/// Why a packet could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("empty packet")]
    Empty,
}

/// One Engine.IO packet, borrowing its data from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EioPacket<'a> {
    Open(&'a str),
    Close,
    Ping(&'a str),
    Pong(&'a str),
    Message(&'a str),
    Upgrade,
    Noop,
}

pub fn decode_packet(s: &str) -> Result<EioPacket<'_>, CodecError> {
    let _ = s;
    Err(CodecError::Empty)
}

pub fn encode_packet(p: &EioPacket<'_>, out: &mut String) {
    let _ = (p, out);
}

pub fn decode_payload(body: &str) -> impl Iterator<Item = Result<EioPacket<'_>, CodecError>> {
    body.split('\u{1e}').map(decode_packet)
}

pub fn encode_payload<'a>(packets: impl IntoIterator<Item = EioPacket<'a>>, out: &mut String) {
    let _ = (packets.into_iter(), out);
}

/// The handshake data of an Engine.IO open packet.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenInfo {
    pub sid: String,
    pub upgrades: Vec<String>,
    pub ping_interval: u64,
    pub ping_timeout: u64,
    pub max_payload: Option<u64>,
}

pub fn parse_open(json: &str) -> Result<OpenInfo, CodecError> {
    let _ = json;
    Err(CodecError::Empty)
}

/// One Socket.IO packet, borrowing from the Engine.IO message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SioPacket<'a> {
    Connect {
        nsp: &'a str,
        data: Option<&'a str>,
    },
    Disconnect {
        nsp: &'a str,
    },
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
    ConnectError {
        nsp: &'a str,
        data: &'a str,
    },
}

pub fn decode_sio(s: &str) -> Result<SioPacket<'_>, CodecError> {
    let _ = s;
    Err(CodecError::Empty)
}

pub fn encode_sio_connect(nsp: &str, out: &mut String) {
    let _ = (nsp, out);
}

pub fn encode_sio_event(nsp: &str, event: &str, arg_json: &str, out: &mut String) {
    let _ = (nsp, event, arg_json, out);
}

pub fn split_event(args: &str) -> Result<(String, &str), CodecError> {
    let _ = args;
    Err(CodecError::Empty)
}
