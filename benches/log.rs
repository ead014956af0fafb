//! `log`: the server's message log, the structure every door reads.
//!
//! - `append`: validate, stamp, serialize and store one chat message (log full, so every append
//!   also evicts the oldest, as on a busy server);
//! - `since_newest/H`: the cursor poll's lookup, `since(latest − 1)` in a log holding H messages;
//! - `since_all/H`: the tutorial's whole-list lookup, `since(0)`, H messages;
//! - `page_json/P`: turning a page of P messages into the JSON array a poll answer carries
//!   (`Page::json_array`, the server's real serialization path).

use std::hint::black_box;
use std::time::Duration;

use chat_server::MessageLog;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pushpoll_wire::probe::Probe;

/// A realistic chat message: a load generator probe padded to 100 bytes.
fn probe_text() -> String {
    let probe = Probe {
        run_id: 0x1f2e_3d4c,
        sender: 3,
        seq: 123_456,
        intended_ns: 98_765_432_100,
        sent_ns: 98_765_432_150,
    };
    let mut text = String::new();
    probe.encode(100, &mut text);
    text
}
const HISTORY_SIZES: [usize; 3] = [100, 1_000, 10_000];

/// A log of capacity `size` filled to the brim.
fn full_log(size: usize) -> MessageLog {
    let log = MessageLog::new(size, 8192);
    let text = probe_text();
    for _ in 0..size {
        log.append("sender-3", &text).expect("a valid message");
    }
    log
}

fn log(c: &mut Criterion) {
    let mut group = c.benchmark_group("log");
    group
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(40);

    let log = full_log(10_000);
    let text = probe_text();
    group.throughput(Throughput::Elements(1));
    group.bench_function("append", |b| {
        b.iter(|| log.append(black_box("sender-3"), black_box(&text)))
    });

    for size in HISTORY_SIZES {
        let log = full_log(size);
        let newest = log.latest_id();
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("since_newest", size), &newest, |b, &id| {
            b.iter(|| log.since(black_box(id - 1), usize::MAX))
        });
        group.throughput(Throughput::Elements(size as u64));
        group.bench_function(BenchmarkId::new("since_all", size), |b| {
            b.iter(|| log.since(black_box(0), usize::MAX))
        });
    }

    for page_size in [1, 100, 1_000, 10_000] {
        let page = full_log(page_size).since(0, usize::MAX);
        assert_eq!(
            page.messages.len(),
            page_size,
            "the page holds every message"
        );
        group.throughput(Throughput::Elements(page_size as u64));
        group.bench_function(BenchmarkId::new("page_json", page_size), |b| {
            b.iter(|| black_box(&page).json_array())
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    // 20,000 bootstrap resamples instead of 100,000: the same intervals to the digit shown,
    // a fraction of the analysis time on two cores.
    config = Criterion::default().nresamples(20_000);
    targets = log
}
criterion_main!(benches);
