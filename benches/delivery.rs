//! `delivery`: end to end on loopback, in one process. One message is posted (`POST /messages`,
//! as a `loadgen run` sender posts it) and timed until all K receivers have it, for every
//! strategy the load generator has and K in {1, 10, 100}. The time is the recorder's own: from
//! the instant the POST starts to the instant the last receiver read the message.
//!
//! Pollers run on their schedule (random phase per receiver); before each message the bench
//! waits an untimed pause spread over one interval, so messages arrive at every point of the
//! poll cycle (otherwise each would land right after the poll that delivered the last one).

// Each bench target uses a different part of the shared module.
#[allow(dead_code)]
mod common;

use std::time::Duration;

use common::{Plan, Receivers, bench_fleet, runtime};
use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use loadgen::scenario::StrategySpec;

const RECEIVERS: [usize; 3] = [1, 10, 100];
const STRATEGIES: [&str; 6] = [
    "poll@10ms",
    "poll@50ms",
    "longpoll",
    "sse",
    "socketio",
    "socketio-polling",
];

fn delivery(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("delivery");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for name in STRATEGIES {
        let spec: StrategySpec = name.parse().expect("a valid strategy");
        let plan = Plan {
            post: true,
            spread: spec.interval,
        };
        for k in RECEIVERS {
            let receivers = Receivers::Strategy(spec.clone());
            bench_fleet(
                &mut group,
                &rt,
                BenchmarkId::new(name, k),
                &receivers,
                k,
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
    targets = delivery
}
criterion_main!(benches);
