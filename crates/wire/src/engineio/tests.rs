use super::*;
use proptest::prelude::*;

const OPEN: &str = r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
const CHAT_EVENT: &str = r#"42["message",{"id":1,"name":"a","message":"b","ts":1}]"#;

fn encoded(p: EioPacket<'_>) -> String {
    let mut s = String::new();
    encode_packet(&p, &mut s);
    s
}

#[test]
fn decodes_every_engineio_packet_type() {
    let cases = [
        ("0{}", EioPacket::Open("{}")),
        ("1", EioPacket::Close),
        ("2", EioPacket::Ping("")),
        ("2probe", EioPacket::Ping("probe")),
        ("3", EioPacket::Pong("")),
        ("3probe", EioPacket::Pong("probe")),
        ("4hello", EioPacket::Message("hello")),
        ("4", EioPacket::Message("")),
        ("5", EioPacket::Upgrade),
        ("6", EioPacket::Noop),
    ];
    for (wire, packet) in cases {
        assert_eq!(decode_packet(wire), Ok(packet), "{wire}");
        assert_eq!(encoded(packet), wire);
    }
}

#[test]
fn rejects_bad_engineio_packets() {
    assert_eq!(decode_packet(""), Err(CodecError::Empty));
    assert_eq!(decode_packet("7"), Err(CodecError::UnknownEioType('7')));
    assert_eq!(decode_packet("é"), Err(CodecError::UnknownEioType('é')));
    assert_eq!(decode_packet("bAQID"), Err(CodecError::BinaryUnsupported));
    assert_eq!(decode_packet("1x"), Err(CodecError::TrailingData("close")));
    assert_eq!(
        decode_packet("5x"),
        Err(CodecError::TrailingData("upgrade"))
    );
    assert_eq!(decode_packet("6x"), Err(CodecError::TrailingData("noop")));
}

#[test]
fn parses_a_real_open_packet() {
    let Ok(EioPacket::Open(json)) = decode_packet(OPEN) else {
        panic!("not an open packet")
    };
    let info = parse_open(json).expect("valid handshake");
    assert_eq!(info.sid, "lv_VI97HAXpY6yYWAAAC");
    assert_eq!(info.upgrades, ["websocket"]);
    assert_eq!(
        (info.ping_interval, info.ping_timeout, info.max_payload),
        (25000, 20000, Some(1_000_000))
    );
}

#[test]
fn open_without_max_payload_and_bad_open() {
    let info =
        parse_open(r#"{"sid":"x","upgrades":[],"pingInterval":1,"pingTimeout":2}"#).expect("valid");
    assert_eq!(info.max_payload, None);
    assert!(
        matches!(parse_open(r#"{"sid":"x"}"#), Err(CodecError::BadOpen(m)) if m.contains("upgrades"))
    );
    assert!(matches!(
        parse_open("not json"),
        Err(CodecError::BadOpen(_))
    ));
}

#[test]
fn decodes_and_encodes_a_polling_payload() {
    let body = format!("4hello\u{1e}2\u{1e}{CHAT_EVENT}");
    let packets: Vec<_> = decode_payload(&body).collect();
    assert_eq!(
        packets,
        vec![
            Ok(EioPacket::Message("hello")),
            Ok(EioPacket::Ping("")),
            Ok(EioPacket::Message(&CHAT_EVENT[1..]))
        ]
    );
    let mut out = String::new();
    encode_payload(packets.into_iter().flatten(), &mut out);
    assert_eq!(out, body);
}

#[test]
fn payload_edge_cases() {
    assert_eq!(decode_payload("").count(), 0);
    assert_eq!(
        decode_payload("6").collect::<Vec<_>>(),
        vec![Ok(EioPacket::Noop)]
    );
    assert_eq!(
        decode_payload("2\u{1e}").collect::<Vec<_>>(),
        vec![Ok(EioPacket::Ping("")), Err(CodecError::Empty)]
    );
    let mut out = String::new();
    encode_payload([], &mut out);
    assert_eq!(out, "");
}

#[test]
fn decodes_socketio_connect_forms() {
    assert_eq!(
        decode_sio("0"),
        Ok(SioPacket::Connect {
            nsp: "/",
            data: None
        })
    );
    assert_eq!(
        decode_sio(r#"0{"sid":"wZX3oN0bSVIhsaknAAAI"}"#),
        Ok(SioPacket::Connect {
            nsp: "/",
            data: Some(r#"{"sid":"wZX3oN0bSVIhsaknAAAI"}"#)
        })
    );
    assert_eq!(
        decode_sio("0/admin,"),
        Ok(SioPacket::Connect {
            nsp: "/admin",
            data: None
        })
    );
    assert_eq!(
        decode_sio(r#"0/admin,{"sid":"x"}"#),
        Ok(SioPacket::Connect {
            nsp: "/admin",
            data: Some(r#"{"sid":"x"}"#)
        })
    );
    assert_eq!(decode_sio("0[1]"), Err(CodecError::BadData("CONNECT")));
    assert_eq!(decode_sio("0{bad"), Err(CodecError::BadData("CONNECT")));
}

#[test]
fn decodes_socketio_events_and_acks() {
    let Ok(EioPacket::Message(sio)) = decode_packet(CHAT_EVENT) else {
        panic!("not a message")
    };
    assert_eq!(
        decode_sio(sio),
        Ok(SioPacket::Event {
            nsp: "/",
            ack: None,
            args: &CHAT_EVENT[2..]
        })
    );
    assert_eq!(
        decode_sio(r#"212["x"]"#),
        Ok(SioPacket::Event {
            nsp: "/",
            ack: Some(12),
            args: r#"["x"]"#
        })
    );
    assert_eq!(
        decode_sio(r#"2/chat,7["x",1]"#),
        Ok(SioPacket::Event {
            nsp: "/chat",
            ack: Some(7),
            args: r#"["x",1]"#
        })
    );
    assert_eq!(
        decode_sio(r#"35[]"#),
        Ok(SioPacket::Ack {
            nsp: "/",
            ack: 5,
            args: "[]"
        })
    );
    assert_eq!(
        decode_sio(r#"3/a,0["ok"]"#),
        Ok(SioPacket::Ack {
            nsp: "/a",
            ack: 0,
            args: r#"["ok"]"#
        })
    );
    assert_eq!(decode_sio("3[]"), Err(CodecError::MissingAckId));
    assert_eq!(decode_sio("2"), Err(CodecError::BadData("EVENT")));
    assert_eq!(decode_sio(r#"2{"a":1}"#), Err(CodecError::BadData("EVENT")));
    assert_eq!(
        decode_sio(r#"299999999999999999999["x"]"#),
        Err(CodecError::BadAckId)
    );
}

#[test]
fn decodes_socketio_disconnect_and_connect_error() {
    assert_eq!(decode_sio("1"), Ok(SioPacket::Disconnect { nsp: "/" }));
    assert_eq!(
        decode_sio("1/admin,"),
        Ok(SioPacket::Disconnect { nsp: "/admin" })
    );
    assert_eq!(
        decode_sio("1/admin"),
        Ok(SioPacket::Disconnect { nsp: "/admin" })
    );
    assert_eq!(
        decode_sio("1x"),
        Err(CodecError::TrailingData("Socket.IO DISCONNECT"))
    );
    assert_eq!(
        decode_sio(r#"4{"message":"Not authorized"}"#),
        Ok(SioPacket::ConnectError {
            nsp: "/",
            data: r#"{"message":"Not authorized"}"#
        })
    );
    assert_eq!(
        decode_sio(r#"4/admin,"Invalid namespace""#),
        Ok(SioPacket::ConnectError {
            nsp: "/admin",
            data: r#""Invalid namespace""#
        })
    );
    assert_eq!(decode_sio("4"), Err(CodecError::BadData("CONNECT_ERROR")));
}

#[test]
fn rejects_binary_and_unknown_socketio_packets() {
    assert_eq!(
        decode_sio(r#"51-["x",{"_placeholder":true,"num":0}]"#),
        Err(CodecError::BinaryUnsupported)
    );
    assert_eq!(decode_sio("61-0[]"), Err(CodecError::BinaryUnsupported));
    assert_eq!(decode_sio("7"), Err(CodecError::UnknownSioType('7')));
    assert_eq!(decode_sio("é"), Err(CodecError::UnknownSioType('é')));
    assert_eq!(decode_sio(""), Err(CodecError::Empty));
}

#[test]
fn encodes_socketio_connect_and_events() {
    let mut out = String::new();
    encode_sio_connect("/", &mut out);
    assert_eq!(out, "40");
    out.clear();
    encode_sio_connect("/admin", &mut out);
    assert_eq!(out, "40/admin,");
    out.clear();
    encode_sio_event(
        "/",
        "message",
        r#"{"id":1,"name":"a","message":"b","ts":1}"#,
        &mut out,
    );
    assert_eq!(out, CHAT_EVENT);
    out.clear();
    encode_sio_event("/chat", "ping", "", &mut out);
    assert_eq!(out, r#"42/chat,["ping"]"#);
    out.clear();
    encode_sio_event("/", "say \"hi\"\n", "1", &mut out);
    assert_eq!(out, r#"42["say \"hi\"\n",1]"#);
}

#[test]
fn splits_event_name_and_first_argument() {
    let args = &CHAT_EVENT[2..];
    let (name, arg) = split_event(args).expect("valid event");
    assert_eq!(name, "message");
    assert_eq!(arg, r#"{"id":1,"name":"a","message":"b","ts":1}"#);
    assert_eq!(
        split_event(r#"[ "n" , [1,"]"] , 2 ]"#),
        Ok(("n".to_owned(), r#"[1,"]"]"#))
    );
    assert_eq!(split_event(r#"["n",12]"#), Ok(("n".to_owned(), "12")));
    assert_eq!(split_event(r#"["n"]"#), Ok(("n".to_owned(), "")));
    assert_eq!(
        split_event(r#"["a\"b","x"]"#),
        Ok(("a\"b".to_owned(), r#""x""#))
    );
    let (borrowed, _) = split_event_borrowed(args).expect("valid event");
    assert!(
        matches!(borrowed, Cow::Borrowed("message")),
        "no allocation for plain names"
    );
}

#[test]
fn rejects_bad_event_arguments() {
    for bad in [
        "",
        "[]",
        "[1,2]",
        r#"{"a":1}"#,
        r#"["n""#,
        r#"["n",{"a":1}"#,
        r#"["n",{"a":1},]"#,
        r#"["n",{"a":}]"#,
        r#"["n" 1]"#,
        r#"["n",1]x"#,
        r#"["n",tru]"#,
    ] {
        assert!(
            matches!(split_event(bad), Err(CodecError::BadEvent(_))),
            "{bad:?}"
        );
    }
}

fn any_eio_packet() -> impl Strategy<Value = (u8, String)> {
    (0u8..7, "\\PC*").prop_map(|(kind, data)| {
        let data = data.replace(RECORD_SEPARATOR, "");
        (
            kind,
            if matches!(kind, 1 | 5 | 6) {
                String::new()
            } else {
                data
            },
        )
    })
}

fn as_packet(kind: u8, data: &str) -> EioPacket<'_> {
    match kind {
        0 => EioPacket::Open(data),
        1 => EioPacket::Close,
        2 => EioPacket::Ping(data),
        3 => EioPacket::Pong(data),
        4 => EioPacket::Message(data),
        5 => EioPacket::Upgrade,
        _ => EioPacket::Noop,
    }
}

proptest! {
    #[test]
    fn prop_any_bytes_decode_or_reject(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let s = String::from_utf8_lossy(&bytes);
        let _ = decode_packet(&s);
        let _ = decode_payload(&s).count();
        let _ = decode_sio(&s);
        let _ = split_event(&s);
        let _ = parse_open(&s);
    }

    #[test]
    fn prop_socketio_like_text_never_panics(s in "[0-6]{1,2}(/[a-z]{0,3},?)?[0-9]{0,21}(\\[\"[a-zé\\\\\"]{0,4}\"(,[\\[\\]{}0-9\",:a-z ]{0,12})*\\]?)?") {
        if let Ok(SioPacket::Event { args, .. } | SioPacket::Ack { args, .. }) = decode_sio(&s) {
            let _ = split_event(args);
        }
    }

    #[test]
    fn prop_packet_round_trip((kind, data) in any_eio_packet()) {
        let packet = as_packet(kind, &data);
        let wire = encoded(packet);
        prop_assert_eq!(decode_packet(&wire), Ok(packet));
    }

    #[test]
    fn prop_payload_round_trip(packets in proptest::collection::vec(any_eio_packet(), 1..8)) {
        let packets: Vec<_> = packets.iter().map(|(k, d)| as_packet(*k, d)).collect();
        let mut body = String::new();
        encode_payload(packets.iter().copied(), &mut body);
        let decoded: Result<Vec<_>, _> = decode_payload(&body).collect();
        prop_assert_eq!(decoded, Ok(packets));
    }

    #[test]
    fn prop_event_round_trip(
        nsp in "(/|/[a-z]{1,5})",
        name in "\\PC{0,12}",
        arg in proptest::option::of(any::<(i32, String, bool)>()),
    ) {
        let arg_json = arg.as_ref().map(|a| serde_json::to_string(a).expect("tuples serialize")).unwrap_or_default();
        let mut wire = String::new();
        encode_sio_event(&nsp, &name, &arg_json, &mut wire);
        let Ok(EioPacket::Message(sio)) = decode_packet(&wire) else { panic!("not a message: {wire}") };
        let Ok(SioPacket::Event { nsp: got_nsp, ack: None, args }) = decode_sio(sio) else { panic!("not an event: {wire}") };
        prop_assert_eq!(got_nsp, nsp.as_str());
        prop_assert_eq!(split_event(args), Ok((name, arg_json.as_str())));
    }
}
