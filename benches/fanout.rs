//! `fanout`: the server's cost to get one message to N connected receivers, push against polls.
//!
//! The message is appended straight to the server's log (no POST), then timed until the last of
//! N receivers has read it: N Socket.IO WebSocket clients (`socketio`), N SSE streams (`sse`),
//! N held long polls answered (`longpoll`), or N cursor polls served, one per receiver, all sent
//! the moment the message is in the log (`poll`). Server and receivers share the 2-core machine
//! in one process, so this is wall time of the whole fan-out, client parsing included.
//! Throughput is deliveries per second.

// Each bench target uses a different part of the shared module.
#[allow(dead_code)]
mod common;

use std::time::Duration;

use common::{Plan, Receivers, bench_fleet, runtime};
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};

const RECEIVERS: [usize; 2] = [100, 1_000];

fn fanout(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("fanout");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let kinds = [
        (
            "socketio",
            Receivers::Strategy("socketio".parse().expect("a strategy")),
        ),
        (
            "sse",
            Receivers::Strategy("sse".parse().expect("a strategy")),
        ),
        (
            "longpoll",
            Receivers::Strategy("longpoll".parse().expect("a strategy")),
        ),
        ("poll", Receivers::OnDemandPolls),
    ];
    let plan = Plan {
        post: false,
        spread: None,
    };
    for n in RECEIVERS {
        group.throughput(Throughput::Elements(n as u64));
        for (name, receivers) in &kinds {
            bench_fleet(
                &mut group,
                &rt,
                BenchmarkId::new(*name, n),
                receivers,
                n,
                plan,
            );
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    // 20,000 bootstrap resamples instead of 100,000: the same intervals to the digit shown,
    // a fraction of the analysis time on two cores.
    config = Criterion::default().nresamples(20_000);
    targets = fanout
}
criterion_main!(benches);
