//! A hand-built `Results` with real histograms, shaped like a sweep on a small machine:
//! polling latency d + Uniform(0, T), push latency a few milliseconds.

use std::time::Duration;

use loadgen::results::*;
use loadgen::scenario::{Scenario, StrategySpec};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const CLIENTS: usize = 200;
pub const RATE: f64 = 10.0;
pub const SECONDS: f64 = 20.0;

pub fn scenario() -> Scenario {
    Scenario {
        clients: std::num::NonZeroUsize::new(CLIENTS).expect("nonzero"),
        rate: RATE,
        duration: Duration::from_secs_f64(SECONDS),
        warmup: Duration::from_secs(3),
        ..loadgen::cli::default_scenario()
    }
}

pub fn results() -> Results {
    let specs = [
        "poll@100ms",
        "poll@500ms",
        "poll@1s",
        "poll@5s",
        "longpoll",
        "sse",
        "socketio",
        "socketio-polling",
    ];
    Results {
        schema_version: SCHEMA_VERSION,
        tool: ToolInfo {
            name: "loadgen".into(),
            version: "0.1.0".into(),
            git_commit: Some("abc1234".into()),
        },
        machine: Machine {
            cores: 2,
            memory_bytes: Some(8_000_000_000),
            os: "linux".into(),
            kernel: Some("6.1".into()),
            cpu_model: Some("Test CPU".into()),
        },
        scenario: scenario(),
        started_unix: 1_764_000_000,
        runs: specs
            .iter()
            .enumerate()
            .map(|(i, s)| run(s.parse().expect("valid spec"), i as u64))
            .collect(),
    }
}

/// One run whose numbers follow the model, with a little noise.
pub fn run(spec: StrategySpec, seed: u64) -> RunResult {
    let mut rng = StdRng::seed_from_u64(seed);
    let deliveries = (CLIENTS as f64 * RATE * SECONDS) as u64;
    let mut h = new_latency_histogram();
    let t_us = spec.interval.map(|t| t.as_secs_f64() * 1e6);
    for _ in 0..deliveries {
        let exp = -rng.random::<f64>().max(1e-9).ln();
        let us = match t_us {
            Some(t) => 800.0 + 400.0 * exp + rng.random::<f64>() * t,
            None => 400.0 + 1500.0 * exp,
        };
        h.record(us as u64).expect("in range");
    }
    let stats = LatencyStats::from_histogram(&h);
    let enc = EncodedHistogram::encode(&h).expect("encodes");
    let requests = match t_us {
        Some(t) => (CLIENTS as f64 * SECONDS * 1e6 / t) as u64,
        None if spec.kind == loadgen::scenario::StrategyKind::Longpoll => deliveries,
        None => 0,
    };
    let empty = t_us.map_or(0, |t| (requests as f64 * (-RATE * t / 1e6).exp()) as u64);
    let bytes_down = requests * 350 + deliveries * if spec.kind.is_push() { 90 } else { 150 };
    let saturated = spec.label() == "poll@100ms";
    let mut warnings = Vec::new();
    if saturated {
        warnings.push(Warning::GeneratorSaturated {
            cpu_percent: 190.0,
            cores: 2,
        });
    }
    RunResult {
        label: spec.label(),
        target: "spawned".into(),
        outcome: if spec.label() == "socketio-polling" {
            Outcome::Interrupted
        } else {
            Outcome::Completed
        },
        timings: Timings {
            measure_ms: SECONDS * 1000.0,
            ..Timings::default()
        },
        clients: ClientCounts {
            planned: CLIENTS as u64,
            connected: CLIENTS as u64,
            failed: 0,
        },
        latency: LatencyResult {
            corrected: stats.clone(),
            uncorrected: stats.clone(),
            fanout: stats,
            histogram_corrected: enc.clone(),
            histogram_uncorrected: enc.clone(),
            histogram_fanout: enc,
            probes: (RATE * SECONDS) as u64,
            intervals: Vec::new(),
        },
        delivery: Delivery {
            probes_sent: (RATE * SECONDS) as u64,
            probes_failed: 0,
            expected: deliveries,
            delivered: deliveries,
            ..Delivery::default()
        },
        traffic: Traffic {
            requests: Requests {
                receiver_requests: requests,
                empty_polls: empty,
                ..Requests::default()
            },
            bytes_up: requests * 300,
            bytes_down,
            receiver_bytes: requests * 300 + bytes_down,
            connections_opened: CLIENTS as u64,
            deliveries,
            measured: TrafficWindow {
                seconds: SECONDS,
                receiver_requests: requests,
                empty_polls: empty,
                receiver_bytes_up: requests * 300,
                receiver_bytes_down: bytes_down,
                deliveries,
            },
            wire: Default::default(),
        },
        schedule: ScheduleStats::default(),
        resources: Resources {
            generator: ProcessUsage::default(),
            server: Some(ProcessUsage {
                cpu_seconds: 0.5 + requests as f64 * 2e-5,
                cpu_percent: (0.5 + requests as f64 * 2e-5) / SECONDS * 100.0,
                peak_rss_bytes: 20_000_000 + seed * 1_000_000,
            }),
            server_source: "proc".into(),
            server_memory: None,
        },
        generator_error: Default::default(),
        polls: None,
        outages: Default::default(),
        nodes: None,
        saturated,
        warnings,
        strategy: spec,
    }
}
