//! Entry points for the workspace's criterion benches (`benches/` at the root), built from the
//! generator's own pieces so a bench measures exactly the paths `loadgen run` uses: the same
//! strategy receivers, the same probe POST, the same recorder deciding what was delivered.
//!
//! A [`Fleet`] is N receivers connected to a server; [`Fleet::deliver`] sends one probe and
//! waits until every receiver has it, returning the recorder's own fan-out time (from the
//! probe's send instant to the last receiver's receive instant, both taken where they happen).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use chat_server::MessageLog;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::context::{Receiver, RunContext};
use crate::control::{self, ControlError};
use crate::net::{HttpConn, HttpError, TargetAddr};
use crate::recorder::{PostStatus, Recorder};
use crate::resources::{self, LimitError};
use crate::scenario::{PollMode, StrategySpec};
use crate::strategy::{PollConfig, Poller, Strategy, UnsupportedStrategy};
use pushpoll_wire::probe::Probe;

/// Probes one fleet can send (bounds the recorder's table: 24 bytes each).
pub const PROBE_CAPACITY: u64 = 200_000;
/// How long all receivers may take to connect, and one probe to reach all of them.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long stopped receivers get to return before they are aborted.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Probe texts are padded to this size, as `loadgen run` pads them by default.
const PROBE_BYTES: usize = 100;
/// The single sender of a fleet.
const SENDER: u32 = 0;
const SENDER_NAME: &str = "bench";

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Unsupported(#[from] UnsupportedStrategy),
    #[error(transparent)]
    Limit(#[from] LimitError),
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("only {connected} of {expected} receivers connected within {CONNECT_TIMEOUT:?}")]
    Connect { connected: u64, expected: u64 },
    #[error(
        "probe {seq} reached only {delivered} deliveries of {expected} within {DELIVERY_TIMEOUT:?}"
    )]
    Delivery {
        seq: u64,
        delivered: u64,
        expected: u64,
    },
    #[error("the message log refused the probe: {0}")]
    Append(#[from] chat_server::AppendError),
    #[error("this fleet sent its {PROBE_CAPACITY} probes; start a new one")]
    Exhausted,
}

/// How a probe enters the server.
#[derive(Debug, Clone, Copy)]
pub enum Entry<'a> {
    /// `POST /messages`, exactly as a `loadgen run` sender posts it.
    Post,
    /// Appended straight to the server's log: isolates the fan-out from the POST.
    Append(&'a MessageLog),
}

/// What the receivers run.
enum Kind {
    Strategy,
    /// Cursor pollers that poll once each time they are told to (`go` bumps).
    OnDemandPolls {
        go: watch::Sender<u64>,
    },
}

/// N receivers of one strategy on one server, and the connection probes are posted on.
pub struct Fleet {
    ctx: Arc<RunContext>,
    kind: Kind,
    receivers: Vec<JoinHandle<()>>,
    poster: HttpConn,
    next_seq: u64,
}

impl Fleet {
    /// Connects `count` receivers of `spec` (e.g. `"sse".parse()`) to the server at `addr`, and
    /// returns once every one of them is connected.
    pub async fn start(
        addr: SocketAddr,
        spec: &StrategySpec,
        count: usize,
    ) -> Result<Fleet, FleetError> {
        let ctx = context(addr, count)?;
        let caps = control::detect(&ctx.target, &ctx.counters.control_wire, spec.kind).await?;
        let strategy = Strategy::new(spec, &caps, 1)?;
        let receivers = (0..count)
            .map(|id| {
                let (strategy, rx) = (strategy.clone(), Receiver::new(id, ctx.clone()));
                tokio::spawn(async move { strategy.run(rx).await })
            })
            .collect();
        Fleet::ready(ctx, Kind::Strategy, receivers).await
    }

    /// Connects `count` cursor pollers (the `poll` strategy's requests) that poll only when
    /// [`Fleet::deliver`] tells them to: N polls served for one message, without a schedule.
    pub async fn start_on_demand_polls(
        addr: SocketAddr,
        count: usize,
    ) -> Result<Fleet, FleetError> {
        let ctx = context(addr, count)?;
        let caps = control::detect(
            &ctx.target,
            &ctx.counters.control_wire,
            crate::scenario::StrategyKind::Poll,
        )
        .await?;
        let config = PollConfig {
            interval: Duration::from_secs(1),
            mode: PollMode::Cursor,
            etag: false,
            start_id: caps.last_id,
            seed: 1,
        };
        let (go, _) = watch::channel(0);
        let receivers = (0..count)
            .map(|id| {
                let rx = Receiver::new(id, ctx.clone());
                tokio::spawn(poll_on_demand(
                    Poller::new(&config, &rx),
                    rx,
                    go.subscribe(),
                ))
            })
            .collect();
        Fleet::ready(ctx, Kind::OnDemandPolls { go }, receivers).await
    }

    async fn ready(
        ctx: Arc<RunContext>,
        kind: Kind,
        receivers: Vec<JoinHandle<()>>,
    ) -> Result<Fleet, FleetError> {
        let expected = receivers.len() as u64;
        let mut fleet = Fleet {
            poster: HttpConn::new(ctx.target.clone(), ctx.counters.sender_wire.clone()),
            ctx,
            kind,
            receivers,
            next_seq: 0,
        };
        let connected = fleet.wait_connected(expected).await;
        if connected < expected {
            fleet.stop().await;
            return Err(FleetError::Connect {
                connected,
                expected,
            });
        }
        // Every probe from now on is measured and owed to every receiver.
        let now = Instant::now();
        let recorder = &fleet.ctx.recorder;
        recorder.set_window(recorder.epoch(), now + Duration::from_secs(365 * 24 * 3600));
        if let Err(e) = fleet.poster.open().await {
            fleet.stop().await;
            return Err(e.into());
        }
        Ok(fleet)
    }

    async fn wait_connected(&self, expected: u64) -> u64 {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        loop {
            let progress = self.ctx.connect_progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            let connected = self.ctx.counters.connected.load(Relaxed);
            if connected + self.ctx.connect_failed.load(Relaxed) >= expected {
                return connected;
            }
            if tokio::time::timeout_at(deadline, progress).await.is_err() {
                return self.ctx.counters.connected.load(Relaxed);
            }
        }
    }

    /// Receivers in this fleet.
    pub fn len(&self) -> usize {
        self.receivers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.receivers.is_empty()
    }

    /// Sends one probe through `entry` and waits until every receiver has it. Returns the
    /// fan-out time: from just before the probe entered the server (for on-demand pollers: and
    /// they were told to poll) to the instant the last receiver read it.
    pub async fn deliver(&mut self, entry: Entry<'_>) -> Result<Duration, FleetError> {
        let seq = self.next_seq;
        if seq >= PROBE_CAPACITY {
            return Err(FleetError::Exhausted);
        }
        self.next_seq += 1;
        let recorder = &self.ctx.recorder;
        let ticket = recorder.begin_send(SENDER, seq, Instant::now());
        let probe = Probe {
            run_id: recorder.run_id(),
            sender: SENDER,
            seq,
            intended_ns: ticket.intended_ns,
            sent_ns: ticket.sent_ns,
        };
        let mut text = String::with_capacity(PROBE_BYTES);
        probe.encode(PROBE_BYTES, &mut text);
        let entered = match entry {
            Entry::Post => crate::sender::post(&mut self.poster, &self.ctx, SENDER_NAME, &text)
                .await
                .map_err(FleetError::from),
            Entry::Append(log) => log
                .append(SENDER_NAME, &text)
                .map(|_| ())
                .map_err(FleetError::from),
        };
        let status = if entered.is_ok() {
            PostStatus::Accepted
        } else {
            PostStatus::Failed
        };
        recorder.end_send(SENDER, seq, status, Instant::now());
        entered?;
        if let Kind::OnDemandPolls { go } = &self.kind {
            go.send_modify(|n| *n += 1);
        }
        self.wait_delivered(seq).await.map(Duration::from_nanos)
    }

    async fn wait_delivered(&self, seq: u64) -> Result<u64, FleetError> {
        let recorder = &self.ctx.recorder;
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        loop {
            let progress = recorder.fanout_progress();
            tokio::pin!(progress);
            progress.as_mut().enable();
            if let Some(ns) = recorder.fanout_ns(SENDER, seq) {
                return Ok(ns);
            }
            if tokio::time::timeout_at(deadline, progress).await.is_err() {
                let d = recorder.delivery(&self.ctx.counters);
                return Err(FleetError::Delivery {
                    seq,
                    delivered: d.delivered,
                    expected: self.len() as u64,
                });
            }
        }
    }

    /// Tells every receiver to stop and waits for them (aborting any still running after a
    /// grace period), so their connections are closed before the server shuts down.
    pub async fn stop(self) {
        self.ctx.stop_receivers.cancel();
        let deadline = Instant::now() + STOP_GRACE;
        for mut handle in self.receivers {
            if tokio::time::timeout_at(deadline, &mut handle)
                .await
                .is_err()
            {
                handle.abort();
            }
        }
    }
}

/// A run context for `receivers` receivers and one sender on the server at `addr`.
fn context(addr: SocketAddr, receivers: usize) -> Result<Arc<RunContext>, FleetError> {
    resources::ensure_fd_limit(receivers as u64, 2, 1)?;
    let target = Arc::new(TargetAddr::new(addr, &addr.to_string())?);
    let capacity = usize::try_from(PROBE_CAPACITY).expect("the probe capacity fits in usize");
    let recorder = Recorder::new(Instant::now(), rand::random(), 1, capacity);
    Ok(Arc::new(RunContext::new(
        target,
        recorder,
        CancellationToken::new(),
    )))
}

/// One poll each time `go` changes, until stopped.
async fn poll_on_demand(mut poller: Poller, mut rx: Receiver, mut go: watch::Receiver<u64>) {
    if let Err(e) = poller.open().await {
        rx.connect_failed(e.kind());
        return;
    }
    rx.connected();
    let stop = rx.stopped().clone();
    loop {
        tokio::select! {
            changed = go.changed() => if changed.is_err() { return },
            _ = stop.cancelled() => return,
        }
        poller.poll_once(&mut rx).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn server() -> chat_server::RunningServer {
        let config = chat_server::Config {
            addr: "127.0.0.1:0".parse().expect("valid addr"),
            ..chat_server::Config::default()
        };
        chat_server::spawn(config).await.expect("server starts")
    }

    #[tokio::test]
    async fn every_strategy_delivers_each_probe_to_every_receiver() {
        let server = server().await;
        for spec in [
            "poll@20ms",
            "longpoll",
            "sse",
            "socketio",
            "socketio-polling",
        ] {
            let spec: StrategySpec = spec.parse().expect("a valid strategy");
            let mut fleet = Fleet::start(server.addr(), &spec, 3)
                .await
                .expect("fleet connects");
            for entry in [Entry::Post, Entry::Append(server.log())] {
                let took = fleet.deliver(entry).await.expect("delivered");
                assert!(took > Duration::ZERO, "{spec:?}: a delivery takes time");
            }
            let c = &fleet.ctx.counters;
            assert_eq!(
                c.deliveries.load(Relaxed),
                6,
                "{spec:?}: 2 probes × 3 receivers"
            );
            assert_eq!(c.duplicates.load(Relaxed), 0, "{spec:?}");
            fleet.stop().await;
        }
        server.shutdown().await.expect("clean shutdown");
    }

    #[tokio::test]
    async fn on_demand_pollers_poll_once_per_probe() {
        let server = server().await;
        let mut fleet = Fleet::start_on_demand_polls(server.addr(), 4)
            .await
            .expect("fleet connects");
        for _ in 0..3 {
            fleet
                .deliver(Entry::Append(server.log()))
                .await
                .expect("delivered");
        }
        let c = &fleet.ctx.counters;
        assert_eq!(
            c.receiver_requests.load(Relaxed),
            12,
            "3 probes × 4 pollers, one poll each"
        );
        assert_eq!(c.deliveries.load(Relaxed), 12);
        fleet.stop().await;
        server.shutdown().await.expect("clean shutdown");
    }
}
