use super::*;
use proptest::prelude::*;

type Owned = (String, String, Option<String>);

fn collect(parser: &mut SseParser, chunks: &[&[u8]]) -> Result<Vec<Owned>, SseError> {
    let mut events = Vec::new();
    for chunk in chunks {
        parser.push(chunk, |e| {
            events.push((
                e.event.to_owned(),
                e.data.to_owned(),
                e.id.map(str::to_owned),
            ))
        })?;
    }
    Ok(events)
}

fn parse_whole(stream: &[u8]) -> Vec<Owned> {
    collect(&mut SseParser::new(), &[stream]).expect("small stream")
}

fn ev(event: &str, data: &str, id: Option<&str>) -> Owned {
    (event.to_owned(), data.to_owned(), id.map(str::to_owned))
}

/// Exercises every rule: BOM, comments, all line endings, ids, retry, multi-byte UTF-8.
const RICH: &[u8] = "\u{feff}: hello comment\r\nretry: 1500\n\
    data: {\"id\":1,\"message\":\"pp1 r=1 s=0 q=0 i=5 t=6 \"}\n\n\
    id: 7\revent: chat\r\ndata: first\rdata:second\r\ndata:  two spaces\n\r\
    data: héllo → ✓ 🦀\n\nevent: empty\n\nid\ndata\n\n"
    .as_bytes();

fn rich_events() -> Vec<Owned> {
    vec![
        ev(
            "message",
            "{\"id\":1,\"message\":\"pp1 r=1 s=0 q=0 i=5 t=6 \"}",
            None,
        ),
        ev("chat", "first\nsecond\n two spaces", Some("7")),
        ev("message", "héllo → ✓ 🦀", Some("7")),
        ev("message", "", None),
    ]
}

#[test]
fn parses_a_stream_with_every_feature() {
    let mut parser = SseParser::new();
    assert_eq!(collect(&mut parser, &[RICH]), Ok(rich_events()));
    assert_eq!(parser.retry_ms(), Some(1500));
    assert_eq!(
        parser.last_event_id(),
        None,
        "a bare `id` line resets the id"
    );
}

#[test]
fn every_split_position_gives_the_same_events() {
    for at in 0..=RICH.len() {
        let mut parser = SseParser::new();
        let events = collect(&mut parser, &[&RICH[..at], &RICH[at..]]);
        assert_eq!(events, Ok(rich_events()), "split at byte {at}");
    }
}

#[test]
fn byte_by_byte_gives_the_same_events() {
    let chunks: Vec<&[u8]> = RICH.chunks(1).collect();
    assert_eq!(collect(&mut SseParser::new(), &chunks), Ok(rich_events()));
}

#[test]
fn cr_at_chunk_end_pairs_with_lf_at_next_chunk_start() {
    let chunks: [&[u8]; 4] = [b"data: a\r", b"\ndata: b\r", b"\n", b"\r\n"];
    assert_eq!(
        collect(&mut SseParser::new(), &chunks),
        Ok(vec![ev("message", "a\nb", None)])
    );
    // A lone CR followed by a chunk not starting with LF still ends the line.
    let chunks: [&[u8]; 2] = [b"data: a\r", b"\r"];
    assert_eq!(
        collect(&mut SseParser::new(), &chunks),
        Ok(vec![ev("message", "a", None)])
    );
}

#[test]
fn ids_persist_and_ids_with_nul_are_ignored() {
    let stream = b"id: 1\ndata: a\n\ndata: b\n\nid: 2\0x\ndata: c\n\nid:\ndata: d\n\n";
    assert_eq!(
        parse_whole(stream),
        vec![
            ev("message", "a", Some("1")),
            ev("message", "b", Some("1")),
            ev("message", "c", Some("1")),
            ev("message", "d", None)
        ]
    );
}

#[test]
fn events_without_data_are_not_dispatched_and_reset_the_type() {
    assert_eq!(
        parse_whole(b"event: x\n\ndata: y\n\n"),
        vec![ev("message", "y", None)]
    );
    assert_eq!(parse_whole(b"\n\n\n: only comments\n\n"), vec![]);
}

#[test]
fn unterminated_event_is_not_dispatched() {
    assert_eq!(
        parse_whole(b"data: a\n\ndata: b\n"),
        vec![ev("message", "a", None)]
    );
    assert_eq!(parse_whole(b"data: a"), vec![]);
}

#[test]
fn retry_must_be_digits_only() {
    let mut parser = SseParser::new();
    collect(
        &mut parser,
        &[b"retry: 10\nretry: 2x\nretry: -1\nretry:\nretry: 99999999999999999999999\n"],
    )
    .expect("small");
    assert_eq!(parser.retry_ms(), Some(10));
}

#[test]
fn bom_is_dropped_only_at_stream_start() {
    assert_eq!(
        parse_whole("data: a\n\n\u{feff}data: b\n\n".as_bytes()),
        vec![ev("message", "a", None)]
    );
    let chunks: [&[u8]; 3] = [b"\xEF", b"\xBB", b"\xBFdata: a\n\n"];
    assert_eq!(
        collect(&mut SseParser::new(), &chunks),
        Ok(vec![ev("message", "a", None)])
    );
}

#[test]
fn invalid_utf8_becomes_replacement_characters() {
    assert_eq!(
        parse_whole(b"data: a\xFFb\n\n"),
        vec![ev("message", "a\u{fffd}b", None)]
    );
}

#[test]
fn oversized_event_is_an_error_and_the_parser_stays_failed() {
    let limit = SseError::EventTooLarge { limit: 16 };
    let mut parser = SseParser::with_max_event_bytes(16);
    assert_eq!(
        collect(&mut parser, &[b"data: 0123456789\n\n"]),
        Ok(vec![ev("message", "0123456789", None)])
    );
    assert_eq!(
        collect(&mut parser, &[b"data: 0123456789\ndata: 0123456789\n"]),
        Err(limit)
    );
    assert_eq!(
        collect(&mut parser, &[b"data: a\n\n"]),
        Err(limit),
        "stays failed"
    );
}

#[test]
fn an_endless_line_is_bounded() {
    let mut parser = SseParser::with_max_event_bytes(1000);
    let chunk = [b'x'; 100];
    let pushed = (0..100)
        .map(|_| parser.push(&chunk, |_| {}))
        .position(|r| r.is_err());
    assert_eq!(
        pushed,
        Some(10),
        "fails once the buffered line passes the limit"
    );
}

fn chunked(stream: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([stream.len()]) {
        pieces.push(stream[start..cut].to_vec());
        start = cut;
    }
    pieces
}

proptest! {
    #[test]
    fn prop_any_bytes_in_any_chunks_never_panic_and_chunking_does_not_matter(
        stream in proptest::collection::vec(
            prop_oneof![
                Just(b'\n'), Just(b'\r'), Just(b':'), Just(b' '), Just(0xEFu8), Just(0xBBu8), Just(0xBFu8),
                Just(b'd'), Just(b'a'), Just(b't'), Just(b'i'), Just(b'e'), any::<u8>(),
            ],
            0..300,
        ),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let whole = collect(&mut SseParser::new(), &[&stream]);
        let pieces = chunked(&stream, &cuts);
        let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        prop_assert_eq!(collect(&mut SseParser::new(), &refs), whole);
    }

    #[test]
    fn prop_data_round_trips(lines in proptest::collection::vec("[^\r\n]{0,20}", 1..5), ending in prop_oneof![Just("\n"), Just("\r"), Just("\r\n")]) {
        let mut stream = String::new();
        for line in &lines {
            stream.push_str("data: ");
            stream.push_str(line);
            stream.push_str(ending);
        }
        stream.push_str(ending);
        prop_assert_eq!(parse_whole(stream.as_bytes()), vec![ev("message", &lines.join("\n"), None)]);
    }
}
