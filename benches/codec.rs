//! `codec`: the pure codecs of `pushpoll-wire` the load generator decodes with, on the exact bytes the chat server sends.
//!
//! Receive side (what every delivered message costs the generator):
//! - `socketio_decode`: one WebSocket text frame `42["message",{…}]` to a probe
//!   (Engine.IO packet, Socket.IO event, event name and argument, message JSON, probe);
//! - `polling_payload_decode/P`: an Engine.IO polling body of P such packets (0x1E-separated);
//! - `sse_chunk/P`: one chunk of P `id:`/`data:` events through the incremental SSE parser;
//! - `probe_parse`, `find_probes/P` (probes found in a raw poll answer of P messages).
//!
//! Send side: `probe_encode`, `socketio_encode` (`42["message",{…}]`), `polling_payload_encode/P`.

use std::hint::black_box;
use std::time::Duration;

use chat_server::MessageLog;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use loadgen::parts::Item;
use pushpoll_wire::engineio::{
    EioPacket, SioPacket, decode_packet, decode_payload, decode_sio, encode_payload,
    encode_sio_event, split_event_borrowed,
};
use pushpoll_wire::probe::{Probe, find_probes};
use pushpoll_wire::sse::SseParser;

/// Probe texts are padded to this size, as `loadgen run` does by default.
const PROBE_BYTES: usize = 100;
/// Messages per polling body, SSE chunk and poll answer in the batched cases.
const BATCHES: [usize; 2] = [1, 100];

fn probe(seq: u64) -> Probe {
    Probe {
        run_id: 0x1f2e_3d4c,
        sender: 3,
        seq,
        intended_ns: 98_765_432_100 + seq,
        sent_ns: 98_765_432_150 + seq,
    }
}

/// `count` probes stored in a chat server log: the message JSON objects every door sends.
fn stored_messages(count: usize) -> Vec<(u64, String)> {
    let log = MessageLog::new(count, 8192);
    let mut text = String::new();
    for seq in 0..count as u64 {
        text.clear();
        probe(seq).encode(PROBE_BYTES, &mut text);
        log.append("sender-3", &text).expect("a valid message");
    }
    let page = log.since(0, usize::MAX);
    page.messages
        .iter()
        .map(|m| (m.id(), m.json_str().to_owned()))
        .collect()
}

/// One Socket.IO `message` event as an Engine.IO message packet (`42[…]`).
fn sio_frame(json: &str) -> String {
    let mut out = String::new();
    encode_sio_event("/", "message", json, &mut out);
    out
}

/// Frame → probe, as a Socket.IO receiver handles every message. Returns None on any error.
fn decode_frame(frame: &str) -> Option<Probe> {
    packet_probe(decode_packet(frame).ok()?)
}

/// Engine.IO packet → probe: the part of the receive path both transports share.
fn packet_probe(packet: EioPacket<'_>) -> Option<Probe> {
    let EioPacket::Message(sio) = packet else {
        return None;
    };
    let SioPacket::Event { args, .. } = decode_sio(sio).ok()? else {
        return None;
    };
    let (name, arg) = split_event_borrowed(args).ok()?;
    if name != "message" {
        return None;
    }
    let item: Item<'_> = serde_json::from_str(arg).ok()?;
    Probe::parse(&item.message).ok()
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    group
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(40);
    group.throughput(Throughput::Elements(1));

    let mut text = String::with_capacity(PROBE_BYTES);
    group.bench_function("probe_encode", |b| {
        b.iter(|| {
            text.clear();
            black_box(probe(7)).encode(PROBE_BYTES, &mut text);
        })
    });
    probe(7).encode(PROBE_BYTES, &mut text);
    group.bench_function("probe_parse", |b| b.iter(|| Probe::parse(black_box(&text))));

    let messages = stored_messages(*BATCHES.iter().max().expect("non-empty"));
    let (_, json) = &messages[0];
    let frame = sio_frame(json);
    assert_eq!(decode_frame(&frame), Some(probe(0)), "the frame decodes");
    group.bench_function("socketio_decode", |b| {
        b.iter(|| decode_frame(black_box(&frame)))
    });
    let mut out = String::with_capacity(frame.len());
    group.bench_function("socketio_encode", |b| {
        b.iter(|| {
            out.clear();
            encode_sio_event("/", "message", black_box(json), &mut out);
        })
    });

    for batch in BATCHES {
        batched(&mut group, &messages[..batch]);
    }
    group.finish();
}

/// The cases that carry `batch.len()` messages at once.
fn batched(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    batch: &[(u64, String)],
) {
    let n = batch.len();
    group.throughput(Throughput::Elements(n as u64));

    let frames: Vec<String> = batch.iter().map(|(_, json)| sio_frame(json)).collect();
    let packets = || frames.iter().map(|f| EioPacket::Message(&f[1..]));
    let mut body = String::new();
    encode_payload(packets(), &mut body);
    group.bench_function(BenchmarkId::new("polling_payload_encode", n), |b| {
        b.iter(|| {
            body.clear();
            encode_payload(black_box(packets()), &mut body);
        })
    });
    let decode_body = |body: &str| {
        decode_payload(body)
            .filter_map(|p| packet_probe(p.ok()?))
            .count()
    };
    assert_eq!(decode_body(&body), n, "every packet of the body decodes");
    group.bench_function(BenchmarkId::new("polling_payload_decode", n), |b| {
        b.iter(|| decode_body(black_box(&body)))
    });

    let mut chunk = String::new();
    for (id, json) in batch {
        chunk.push_str(&format!("id: {id}\ndata: {json}\n\n"));
    }
    // Checked before the case, not after it: criterion skips the routine in `--list` mode and
    // for cases a filter leaves out, so a check placed after `bench_function` would fail there.
    let mut parser = SseParser::new();
    let mut sse_events = 0;
    parser
        .push(chunk.as_bytes(), |event| {
            sse_events += usize::from(!event.data.is_empty());
        })
        .expect("the server's events parse");
    assert_eq!(sse_events, n, "the SSE parser dispatches every event");
    group.bench_function(BenchmarkId::new("sse_chunk", n), |b| {
        b.iter(|| {
            parser
                .push(black_box(chunk.as_bytes()), |event| {
                    black_box(event.data);
                })
                .expect("the server's events parse")
        })
    });

    let list = format!(
        "[{}]",
        batch
            .iter()
            .map(|(_, json)| json.as_str())
            .collect::<Vec<_>>()
            .join(",")
    );
    group.bench_function(BenchmarkId::new("find_probes", n), |b| {
        b.iter(|| find_probes(black_box(&list)).filter(Result::is_ok).count())
    });
}

criterion_group! {
    name = benches;
    // 20,000 bootstrap resamples instead of 100,000: the same intervals to the digit shown,
    // a fraction of the analysis time on two cores.
    config = Criterion::default().nresamples(20_000);
    targets = codec
}
criterion_main!(benches);
