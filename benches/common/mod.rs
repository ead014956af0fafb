//! What the end-to-end benches share: an in-process chat server on 127.0.0.1:0 with a fleet of
//! the load generator's receivers, set up once per benchmark and torn down after it.

use std::time::Duration;

use chat_server::{Config, RunningServer};
use criterion::BenchmarkGroup;
use criterion::measurement::WallTime;
use loadgen::bench_support::{Entry, Fleet, FleetError};
use loadgen::scenario::StrategySpec;
use tokio::runtime::Runtime;

/// The runtime both the server and the receivers run on (one worker per core).
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime can be built")
}

/// Who receives.
#[derive(Debug, Clone)]
pub enum Receivers {
    /// A strategy as `loadgen run` runs it (`poll@10ms`, `sse`, `socketio`, …).
    Strategy(StrategySpec),
    /// Cursor pollers that each poll once per message, when told to.
    OnDemandPolls,
}

/// How each timed delivery goes.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// `true`: `POST /messages`; `false`: appended to the server's log (fan-out only).
    pub post: bool,
    /// Poll strategies: an untimed pause before each message, spread over `[0, interval)`, so
    /// messages land at every phase of the poll schedule instead of right after a poll.
    pub spread: Option<Duration>,
}

/// A server and its receivers.
pub struct Bed {
    server: RunningServer,
    fleet: Fleet,
    sent: u64,
}

impl Bed {
    pub async fn start(receivers: &Receivers, count: usize) -> Result<Bed, FleetError> {
        let config = Config {
            addr: "127.0.0.1:0".parse().expect("a valid socket address"),
            ..Config::default()
        };
        let server = chat_server::spawn(config)
            .await
            .expect("the chat server starts on an ephemeral loopback port");
        let fleet = match receivers {
            Receivers::Strategy(spec) => Fleet::start(server.addr(), spec, count).await,
            Receivers::OnDemandPolls => Fleet::start_on_demand_polls(server.addr(), count).await,
        };
        match fleet {
            Ok(fleet) => Ok(Bed {
                server,
                fleet,
                sent: 0,
            }),
            Err(e) => {
                server.shutdown().await.ok();
                Err(e)
            }
        }
    }

    /// `iters` deliveries, one message at a time; the sum of their fan-out times.
    pub async fn deliver(&mut self, iters: u64, plan: Plan) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            if let Some(interval) = plan.spread {
                tokio::time::sleep(interval.mul_f64(spread_fraction(self.sent))).await;
            }
            self.sent += 1;
            let entry = if plan.post {
                Entry::Post
            } else {
                Entry::Append(self.server.log())
            };
            total += self
                .fleet
                .deliver(entry)
                .await
                .expect("every receiver gets every message");
        }
        total
    }

    pub async fn stop(self) {
        self.fleet.stop().await;
        self.server
            .shutdown()
            .await
            .expect("the chat server shuts down cleanly");
    }
}

/// The `i`-th point of a golden-ratio sequence in [0, 1): evenly spread and reproducible.
fn spread_fraction(i: u64) -> f64 {
    const GOLDEN: f64 = 0.618_033_988_749_894_9;
    (i as f64 * GOLDEN).fract()
}

/// Benchmarks `count` receivers of one kind as `id`. The server and receivers are set up only
/// if criterion runs this benchmark (filters skip it otherwise), once, and torn down after it.
pub fn bench_fleet(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    id: criterion::BenchmarkId,
    receivers: &Receivers,
    count: usize,
    plan: Plan,
) {
    let mut bed: Option<Bed> = None;
    group.bench_function(id, |b| {
        let bed = bed.get_or_insert_with(|| {
            rt.block_on(Bed::start(receivers, count))
                .expect("every receiver connects")
        });
        b.iter_custom(|iters| rt.block_on(bed.deliver(iters, plan)));
    });
    if let Some(bed) = bed {
        rt.block_on(bed.stop());
    }
}
