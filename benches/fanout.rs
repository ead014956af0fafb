//! `fanout`: the server's cost to get one message to N connected receivers, push against polls,
//! against the floor.
//!
//! The message is appended straight to the server's log (no POST), then timed until the last of
//! N receivers has read it: N Socket.IO WebSocket clients (`socketio`), N SSE streams (`sse`),
//! N held long polls answered (`longpoll`), or N cursor polls served, one per receiver, all sent
//! the moment the message is in the log (`poll`). Server and receivers share the 2-core machine
//! in one process, so this is wall time of the whole fan-out, client parsing included.
//! Throughput is deliveries per second.
//!
//! `floor` is the least any server can do: one pre-encoded 128-byte frame written to N plain
//! loopback TCP sockets by one task, timed until N reader tasks have read it. After the group,
//! each door's mean is printed as a ratio to the floor of the same run.

// Each bench target uses a different part of the shared module.
#[allow(dead_code)]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use common::{Plan, Receivers, bench_fleet, runtime};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::Notify;

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
        bench_floor(&mut group, &rt, n);
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

/// The floor's frame: what a WebSocket text frame of a chat message is about.
const FRAME_BYTES: usize = 128;

/// N plain loopback sockets: the server side to write to, and readers counting whole frames.
struct Floor {
    writers: Vec<TcpStream>,
    frames_read: Arc<AtomicU64>,
    progress: Arc<Notify>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Floor {
    async fn start(n: usize) -> Floor {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let frames_read = Arc::new(AtomicU64::new(0));
        let progress = Arc::new(Notify::new());
        let (mut writers, mut readers) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            let client = TcpStream::connect(addr).await.expect("connect");
            let (server, _) = listener.accept().await.expect("accept");
            server.set_nodelay(true).expect("nodelay");
            writers.push(server);
            let (frames_read, progress) = (frames_read.clone(), progress.clone());
            readers.push(tokio::spawn(async move {
                let mut client = client;
                let mut frame = [0u8; FRAME_BYTES];
                while client.read_exact(&mut frame).await.is_ok() {
                    frames_read.fetch_add(1, Relaxed);
                    progress.notify_one();
                }
            }));
        }
        Floor {
            writers,
            frames_read,
            progress,
            readers,
        }
    }

    /// `iters` frames, one at a time to every socket; the sum of their fan-out times.
    async fn deliver(&mut self, iters: u64) -> Duration {
        let frame = [b'x'; FRAME_BYTES];
        let n = self.writers.len() as u64;
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let target = self.frames_read.load(Relaxed) + n;
            let start = Instant::now();
            for w in &mut self.writers {
                w.write_all(&frame).await.expect("write");
            }
            while self.frames_read.load(Relaxed) < target {
                self.progress.notified().await;
            }
            total += start.elapsed();
        }
        total
    }

    fn stop(self) {
        drop(self.writers);
        for r in self.readers {
            r.abort();
        }
    }
}

fn bench_floor(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    n: usize,
) {
    let mut floor: Option<Floor> = None;
    group.bench_function(BenchmarkId::new("floor", n), |b| {
        let floor = floor.get_or_insert_with(|| rt.block_on(Floor::start(n)));
        b.iter_custom(|iters| rt.block_on(floor.deliver(iters)));
    });
    if let Some(floor) = floor {
        let _guard = rt.enter();
        floor.stop();
    }
}

/// Each door's mean fan-out time as a ratio to the floor's, read from criterion's own estimates
/// of this run (`target/criterion/fanout/…/new/estimates.json`); nothing when a case did not run.
fn print_ratios() {
    let dir = std::env::var_os("CRITERION_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(
                std::env::var_os("CARGO_TARGET_DIR").unwrap_or("target".into()),
            )
            .join("criterion")
        })
        .join("fanout");
    let mean_ns = |case: &str, n: usize| -> Option<f64> {
        let path = dir
            .join(case)
            .join(n.to_string())
            .join("new")
            .join("estimates.json");
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        json["mean"]["point_estimate"].as_f64()
    };
    for n in RECEIVERS {
        let Some(floor) = mean_ns("floor", n) else {
            continue;
        };
        let ratios: Vec<String> = ["socketio", "sse", "longpoll", "poll"]
            .iter()
            .filter_map(|door| Some(format!("{door} {:.2}×", mean_ns(door, n)? / floor)))
            .collect();
        println!(
            "fanout/{n}: floor {:.1} µs per message ({:.2} µs per delivery); {}",
            floor / 1e3,
            floor / 1e3 / n as f64,
            ratios.join(", ")
        );
    }
}

criterion_group! {
    name = benches;
    // 20,000 bootstrap resamples instead of 100,000: the same intervals to the digit shown,
    // a fraction of the analysis time on two cores.
    config = Criterion::default().nresamples(20_000);
    targets = fanout
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Only `cargo bench` (which passes `--bench`) measures; `--list` and `cargo test` runs
    // measure nothing, and older estimates on disk must not pass for this run's.
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--list") {
        print_ratios();
    }
}
