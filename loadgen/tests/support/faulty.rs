//! A fault-injecting chat server for tests: the chat API of the project's server (same routes,
//! same JSON), kept small and in memory, with faults switched on one by one. It counts exactly
//! what it injected, so a test can check that loadgen reports exactly those faults.
//!
//! Routes: `GET /messages` (whole list, `?since=ID`, `?since=ID&wait=DUR`), `POST /messages`
//! (JSON `{name, message}`, `201` with the stored `{id, name, message, ts}`), `GET /events`
//! (Server-Sent Events, `id:`/`data:`, `Last-Event-ID`), Socket.IO namespace `/` event `message`
//! (WebSocket and polling), `GET /healthz`. There is no `/metrics` (loadgen then reports the
//! server's usage as unavailable) and Socket.IO clients cannot send messages (loadgen posts).
//!
//! Nothing is random: every fault is chosen by position (the k-th message to a receiver, the
//! k-th POST, …), so the same order of events always gets the same faults. The counts in
//! [`FaultLog`] are of probe messages only (texts [`Probe::parse`] accepts), as loadgen ignores
//! other texts.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use pushpoll_wire::probe::Probe;
use serde::Deserialize;
use socketioxide::SocketIo;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::socket::Sid;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A message held back by `reorder_every` with no successor within this time is sent alone
/// (counted in `reorder_flushed`, not as reordered), so the end of a run loses nothing.
pub const REORDER_FLUSH: Duration = Duration::from_millis(250);

/// `hold_back_once` leaves a message out of an answer only when the poll arrived at least this
/// long after the message was stored: by then the sender has had its `201` for a long while (on
/// loopback it comes back within microseconds; the margin covers a busy scheduler), so the poll
/// was sent after the `201` came back, which is what makes the answer stale from the client's
/// side. A first answer sooner than that includes the message as usual
/// (counted in `hold_backs_skipped`).
pub const HOLD_BACK_MARGIN: Duration = Duration::from_millis(50);

/// Which faults to inject; all off by default.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// `(k, m)`: every m-th push receiver (Socket.IO sockets by connect order, SSE streams by
    /// open order, each counted from 1) is never sent its k-th, 2k-th, … message.
    pub drop_every: Option<(u64, u64)>,
    /// Every k-th message to each push receiver is sent twice, back to back.
    pub duplicate_every: Option<u64>,
    /// To each push receiver, every k-th message is held back and sent right after the next one
    /// (k, k+1 arrive as k+1, k). See [`REORDER_FLUSH`].
    pub reorder_every: Option<u64>,
    /// Every k-th `POST /messages` is answered `503` and not stored.
    pub fail_posts_every: Option<u64>,
    /// Every `GET /messages` answer that is not a long poll is computed when the request arrives
    /// and sent this much later (a slow answer carrying a snapshot of then).
    pub delay_polls: Option<Duration>,
    /// A probe whose id is a multiple of k is left out of the first `GET /messages?since=`
    /// answer that would include it, on each connection, and so is everything after it in that
    /// answer (a cursor must not pass it); the next answer includes it. See
    /// [`HOLD_BACK_MARGIN`]. Long polls are not touched.
    pub hold_back_once: Option<u64>,
    /// The i-th Socket.IO socket (connect order, from 1) is never sent any message.
    pub stall_socket: Option<u64>,
    /// `(i, n)`: the i-th Socket.IO socket is disconnected by the server when its n-th message
    /// is due, without being sent it. What it misses until it is back (that message and every
    /// one stored before its next socket joins) is reachable only by a catch-up request.
    pub kick_socket: Option<(u64, u64)>,
    /// Every Socket.IO message is sent after waiting this long per connected socket: a server
    /// whose latency grows with its sockets, so its capacity at a p99 target is known.
    pub delay_per_socket: Option<Duration>,
    /// Credentials every client must show, and a 429 after n requests ([`super::gate`]).
    pub gate: super::gate::Gate,
    /// Every SSE stream allocates this many bytes, writes every one of them (so each page is
    /// resident), and holds them until the stream ends: a server whose memory per connection
    /// is known.
    pub hold_per_stream: Option<usize>,
}

/// What the server injected and served, counted as it happened.
#[derive(Debug, Default)]
pub struct FaultLog {
    /// (probe, receiver) pairs never sent because of `drop_every`.
    pub dropped: AtomicU64,
    /// Probes sent twice to a receiver.
    pub duplicated: AtomicU64,
    /// Pairs of probes sent to a receiver in swapped order.
    pub reordered: AtomicU64,
    /// Probes held back for reordering whose successor did not come in time: sent alone.
    pub reorder_flushed: AtomicU64,
    /// Probe POSTs answered 503 (not stored).
    pub failed_posts: AtomicU64,
    /// `GET /messages` answers delayed by `delay_polls`.
    pub delayed_polls: AtomicU64,
    /// Poll answers that left out a probe because of `hold_back_once`.
    pub stale_answers: AtomicU64,
    /// First answers to include a held-back candidate that came too soon to hold it back.
    pub hold_backs_skipped: AtomicU64,
    /// (probe, socket) pairs not sent to the stalled socket.
    pub stalled: AtomicU64,
    /// Messages stored.
    pub stored: AtomicU64,
    /// Probes stored after a later probe of the same sender: the sender's POSTs overtook each
    /// other (it is open-loop, so on a busy machine one can still be in flight at the next send
    /// instant). Not a fault of this server, but every receiver sees the inversion.
    pub arrived_out_of_order: AtomicU64,
    /// Socket.IO sockets connected and SSE streams opened.
    pub sockets: AtomicU64,
    pub sse_streams: AtomicU64,
    /// Emits socketioxide refused (a full or closed socket): messages lost without a fault.
    pub emit_errors: AtomicU64,
    /// Sockets disconnected by `kick_socket`.
    pub kicked: AtomicU64,
    /// Messages the kicked receiver could get only by catching up: ids after the last one it
    /// was sent, up to the cursor of the next socket to join (its reconnect).
    pub catchup_gap: AtomicU64,
}

/// A copy of [`FaultLog`] at one instant, to compare and print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultCounts {
    pub dropped: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub reorder_flushed: u64,
    pub failed_posts: u64,
    pub delayed_polls: u64,
    pub stale_answers: u64,
    pub hold_backs_skipped: u64,
    pub stalled: u64,
    pub stored: u64,
    pub arrived_out_of_order: u64,
    pub sockets: u64,
    pub sse_streams: u64,
    pub emit_errors: u64,
    pub kicked: u64,
    pub catchup_gap: u64,
}

impl FaultLog {
    pub fn counts(&self) -> FaultCounts {
        FaultCounts {
            dropped: self.dropped.load(Relaxed),
            duplicated: self.duplicated.load(Relaxed),
            reordered: self.reordered.load(Relaxed),
            reorder_flushed: self.reorder_flushed.load(Relaxed),
            failed_posts: self.failed_posts.load(Relaxed),
            delayed_polls: self.delayed_polls.load(Relaxed),
            stale_answers: self.stale_answers.load(Relaxed),
            hold_backs_skipped: self.hold_backs_skipped.load(Relaxed),
            stalled: self.stalled.load(Relaxed),
            stored: self.stored.load(Relaxed),
            arrived_out_of_order: self.arrived_out_of_order.load(Relaxed),
            sockets: self.sockets.load(Relaxed),
            sse_streams: self.sse_streams.load(Relaxed),
            emit_errors: self.emit_errors.load(Relaxed),
            kicked: self.kicked.load(Relaxed),
            catchup_gap: self.catchup_gap.load(Relaxed),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}

/// The running server; dropping it stops it.
pub struct FaultyServer {
    addr: SocketAddr,
    log: Arc<FaultLog>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl FaultyServer {
    /// Serves on 127.0.0.1 (an ephemeral port) with these faults.
    pub async fn start(faults: Faults) -> FaultyServer {
        let log = Arc::new(FaultLog::default());
        let stop = CancellationToken::new();
        let gate = faults.gate.clone();
        let app = App(Arc::new(Inner {
            faults,
            log: log.clone(),
            messages: Mutex::new(Vec::new()),
            latest: watch::Sender::new(0),
            posts: AtomicU64::new(0),
            sockets_seen: AtomicU64::new(0),
            streams_seen: AtomicU64::new(0),
            joining: Mutex::new(HashMap::new()),
            kicked_last_sent: Arc::new(Mutex::new(None)),
            live_sockets: Arc::new(AtomicU64::new(0)),
            poll_conns: Mutex::new(HashMap::new()),
            highest_seq: Mutex::new(HashMap::new()),
            stop: stop.clone(),
        }));
        let (layer, io) = SocketIo::builder().build_layer();
        let on_join = {
            let app = app.clone();
            let gate = gate.clone();
            move |socket: SocketRef, TryData(auth): TryData<serde_json::Value>| {
                let app = app.clone();
                let gate = gate.clone();
                async move {
                    gate.admit_socket(auth.ok().as_ref())?;
                    app.socket_joining(socket.id);
                    Ok::<(), super::gate::Refused>(())
                }
            }
        };
        let on_connect = {
            let app = app.clone();
            move |socket: SocketRef| {
                let app = app.clone();
                async move { app.serve_socket(socket).await }
            }
        };
        io.ns("/", on_connect.with(on_join));
        let router = Router::new()
            .route("/messages", get(get_messages).post(post_message))
            .route("/events", get(events))
            .route("/healthz", get(healthz))
            .with_state(app)
            .layer(layer);
        let router = gate.wrap(router);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let listener = listener.tap_io(|tcp: &mut TcpStream| {
            // As the project's server does; without it small writes can wait for an ACK.
            let _ = tcp.set_nodelay(true);
        });
        let serve = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stop.clone().cancelled_owned());
        let task = tokio::spawn(async move {
            let _ = serve.await;
        });
        FaultyServer {
            addr,
            log,
            stop,
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, for `--target`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn log(&self) -> &Arc<FaultLog> {
        &self.log
    }

    pub fn counts(&self) -> FaultCounts {
        self.log.counts()
    }
}

impl Drop for FaultyServer {
    fn drop(&mut self) {
        self.stop.cancel();
        self.task.abort();
    }
}

/// One stored message.
#[derive(Debug)]
struct Stored {
    id: u64,
    /// `{"id","name","message","ts"}`, as sent everywhere.
    value: serde_json::Value,
    json: String,
    probe: bool,
    stored_at: Instant,
}

#[derive(Clone)]
struct App(Arc<Inner>);

impl std::ops::Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

struct Inner {
    faults: Faults,
    log: Arc<FaultLog>,
    /// Message `id` is at index `id - 1`.
    messages: Mutex<Vec<Arc<Stored>>>,
    /// The latest id, to wake long polls, SSE streams and sockets.
    latest: watch::Sender<u64>,
    posts: AtomicU64,
    sockets_seen: AtomicU64,
    streams_seen: AtomicU64,
    /// Sockets between the connect middleware and the handler: (connect order, start cursor).
    joining: Mutex<HashMap<Sid, (u64, u64)>>,
    /// After a kick: the id of the last message the kicked socket was sent.
    kicked_last_sent: Arc<Mutex<Option<u64>>>,
    /// Sockets connected now (for `delay_per_socket`).
    live_sockets: Arc<AtomicU64>,
    /// Per poll connection (peer address): the highest hold-back candidate already decided.
    poll_conns: Mutex<HashMap<SocketAddr, u64>>,
    /// Per sender: the highest probe sequence number stored so far.
    highest_seq: Mutex<HashMap<u32, u64>>,
    stop: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    fn store(&self, name: &str, message: &str) -> Arc<Stored> {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut messages = lock(&self.messages);
        if let Ok(p) = Probe::parse(message) {
            let mut highest = lock(&self.highest_seq);
            let top = highest.entry(p.sender).or_insert(p.seq);
            if p.seq < *top {
                bump(&self.log.arrived_out_of_order);
            }
            *top = (*top).max(p.seq);
        }
        let id = messages.len() as u64 + 1;
        let value = serde_json::json!({"id": id, "name": name, "message": message, "ts": ts});
        let stored = Arc::new(Stored {
            id,
            json: value.to_string(),
            value,
            probe: Probe::parse(message).is_ok(),
            stored_at: Instant::now(),
        });
        messages.push(stored.clone());
        // Under the lock, so the signalled id only grows.
        self.latest.send_replace(id);
        bump(&self.log.stored);
        stored
    }

    fn latest_id(&self) -> u64 {
        *self.latest.borrow()
    }

    /// Messages with an id above `cursor`, oldest first.
    fn since(&self, cursor: u64) -> Vec<Arc<Stored>> {
        let messages = lock(&self.messages);
        let from = usize::try_from(cursor).unwrap_or(usize::MAX);
        messages.get(from..).map(<[_]>::to_vec).unwrap_or_default()
    }

    /// A new push receiver's fault plan; `socket` for Socket.IO (stalls apply to sockets only).
    fn feed(&self, index: u64, socket: bool) -> Feed {
        Feed {
            log: self.log.clone(),
            n: 0,
            drop_k: self
                .faults
                .drop_every
                .filter(|&(_, m)| every(Some(m), index))
                .map(|(k, _)| k),
            duplicate_k: self.faults.duplicate_every,
            reorder_k: self.faults.reorder_every,
            stalled: socket && self.faults.stall_socket == Some(index),
            kick_at: self
                .faults
                .kick_socket
                .filter(|&(i, _)| socket && i == index)
                .map(|(_, n)| n),
            kicked_before: None,
            held: None,
        }
    }

    /// Applies `hold_back_once` to one poll answer of connection `peer`, made at `at`.
    fn hold_back(&self, k: u64, peer: SocketAddr, page: &mut Vec<Arc<Stored>>, at: Instant) {
        let mut conns = lock(&self.poll_conns);
        let decided = conns.entry(peer).or_insert(0);
        for (pos, m) in page.iter().enumerate() {
            if !m.probe || !every(Some(k), m.id) || m.id <= *decided {
                continue;
            }
            *decided = m.id;
            if at >= m.stored_at + HOLD_BACK_MARGIN {
                page.truncate(pos);
                bump(&self.log.stale_answers);
                return;
            }
            bump(&self.log.hold_backs_skipped);
        }
    }
}

/// What one push receiver (socket or SSE stream) is sent, faults applied.
struct Feed {
    log: Arc<FaultLog>,
    /// Messages offered so far (the position of the current one, from 1).
    n: u64,
    drop_k: Option<u64>,
    duplicate_k: Option<u64>,
    reorder_k: Option<u64>,
    stalled: bool,
    /// Disconnect instead of sending the n-th message (`kick_socket`).
    kick_at: Option<u64>,
    /// Set when the kick is due: the id of the message that was not sent.
    kicked_before: Option<u64>,
    /// A message held back by `reorder_every`, and when to give up waiting for its successor.
    held: Option<(Arc<Stored>, Instant)>,
}

/// Is position `n` (from 1) one of every k-th?
fn every(k: Option<u64>, n: u64) -> bool {
    k.is_some_and(|k| k > 0 && n.is_multiple_of(k))
}

impl Feed {
    /// Message `m` is due to this receiver: appends what to send now to `out`.
    fn offer(&mut self, m: Arc<Stored>, out: &mut Vec<Arc<Stored>>) {
        self.n += 1;
        if self.kicked_before.is_some() {
            return;
        }
        if self.kick_at == Some(self.n) {
            self.kicked_before = Some(m.id);
            return;
        }
        if self.stalled {
            if m.probe {
                bump(&self.log.stalled);
            }
            return;
        }
        if every(self.drop_k, self.n) {
            if m.probe {
                bump(&self.log.dropped);
            }
            return;
        }
        if let Some((held, _)) = self.held.take() {
            if held.probe && m.probe {
                bump(&self.log.reordered);
            }
            out.push(m);
            out.push(held);
            return;
        }
        if every(self.reorder_k, self.n) {
            self.held = Some((m, Instant::now() + REORDER_FLUSH));
            return;
        }
        if every(self.duplicate_k, self.n) {
            if m.probe {
                bump(&self.log.duplicated);
            }
            out.push(m.clone());
        }
        out.push(m);
    }

    fn flush_at(&self) -> Option<Instant> {
        self.held.as_ref().map(|(_, at)| *at)
    }

    fn flush(&mut self, out: &mut Vec<Arc<Stored>>) {
        if let Some((m, _)) = self.held.take() {
            if m.probe {
                bump(&self.log.reorder_flushed);
            }
            out.push(m);
        }
    }
}

/// Follows the log for one push receiver, from `cursor`.
struct Follower {
    app: App,
    feed: Feed,
    cursor: u64,
    latest: watch::Receiver<u64>,
}

impl Follower {
    fn new(app: App, feed: Feed, cursor: u64) -> Self {
        let latest = app.latest.subscribe();
        Follower {
            app,
            feed,
            cursor,
            latest,
        }
    }

    /// The next messages to send (faults applied); `None` once the server stops.
    async fn next(&mut self) -> Option<Vec<Arc<Stored>>> {
        loop {
            let mut out = Vec::new();
            self.latest.borrow_and_update();
            for m in self.app.since(self.cursor) {
                self.cursor = m.id;
                self.feed.offer(m, &mut out);
            }
            // A kick is acted on at once, even with nothing to send.
            if !out.is_empty() || self.feed.kicked_before.is_some() {
                return Some(out);
            }
            let flush_at = self.feed.flush_at();
            let far = Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                changed = self.latest.changed() => changed.ok()?,
                () = tokio::time::sleep_until(flush_at.unwrap_or(far)), if flush_at.is_some() => {
                    self.feed.flush(&mut out);
                    return Some(out);
                }
                () = self.app.stop.cancelled() => return None,
            }
        }
    }
}

impl App {
    /// Connect middleware: runs before socketioxide acknowledges the connect, so no message
    /// stored after the client saw the acknowledgement can be missed.
    fn socket_joining(&self, sid: Sid) {
        let index = self.sockets_seen.fetch_add(1, Relaxed) + 1;
        let cursor = self.latest_id();
        // The first socket to join after a kick is the kicked receiver coming back (the only
        // reconnect in a kick test): it is sent what is stored from `cursor` on.
        if let Some(last_sent) = lock(&self.kicked_last_sent).take() {
            self.log
                .catchup_gap
                .store(cursor.saturating_sub(last_sent), Relaxed);
        }
        lock(&self.joining).insert(sid, (index, cursor));
    }

    async fn serve_socket(self, socket: SocketRef) {
        let Some((index, cursor)) = lock(&self.joining).remove(&socket.id) else {
            return;
        };
        bump(&self.log.sockets);
        let live = self.live_sockets.clone();
        live.fetch_add(1, Relaxed);
        socket.on_disconnect(move || async move {
            live.fetch_sub(1, Relaxed);
        });
        let delay_per_socket = self.faults.delay_per_socket;
        let live = self.live_sockets.clone();
        let feed = self.feed(index, true);
        let log = self.log.clone();
        let kicked_last_sent = self.kicked_last_sent.clone();
        let mut follower = Follower::new(self, feed, cursor);
        while let Some(batch) = follower.next().await {
            if let Some(d) = delay_per_socket {
                let sockets = u32::try_from(live.load(Relaxed)).unwrap_or(u32::MAX);
                tokio::time::sleep(d * sockets).await;
            }
            for m in batch {
                if socket.emit("message", &m.value).is_err() {
                    bump(&log.emit_errors);
                }
            }
            if let Some(unsent) = follower.feed.kicked_before {
                *lock(&kicked_last_sent) = Some(unsent - 1);
                bump(&log.kicked);
                let _ = socket.disconnect();
                return;
            }
            if !socket.connected() {
                return;
            }
        }
    }
}

#[derive(Deserialize)]
struct NewMessage {
    name: String,
    message: String,
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

async fn post_message(State(app): State<App>, body: Bytes) -> Response {
    let Ok(new) = serde_json::from_slice::<NewMessage>(&body) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            r#"{"error":"expected {\"name\", \"message\"}"}"#.into(),
        );
    };
    let n = app.posts.fetch_add(1, Relaxed) + 1;
    if every(app.faults.fail_posts_every, n) {
        if Probe::parse(&new.message).is_ok() {
            bump(&app.log.failed_posts);
        }
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"error":"injected fault: not stored"}"#.into(),
        );
    }
    let stored = app.store(&new.name, &new.message);
    json_response(StatusCode::CREATED, stored.json.clone())
}

#[derive(Deserialize)]
struct ListQuery {
    since: Option<u64>,
    wait: Option<String>,
}

/// `30`, `30s`, `500ms` (a bare number is seconds).
fn parse_wait(text: &str) -> Option<Duration> {
    text.parse::<u64>()
        .map(Duration::from_secs)
        .ok()
        .or_else(|| humantime::parse_duration(text).ok())
}

fn list(page: &[Arc<Stored>]) -> Response {
    let mut body = String::from("[");
    for (i, m) in page.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&m.json);
    }
    body.push(']');
    json_response(StatusCode::OK, body)
}

async fn get_messages(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<ListQuery>,
) -> Response {
    let since = q.since.unwrap_or(0);
    if let Some(wait) = q.wait {
        let Some(wait) = parse_wait(&wait) else {
            return json_response(StatusCode::BAD_REQUEST, r#"{"error":"bad wait"}"#.into());
        };
        let mut latest = app.latest.subscribe();
        if since == *latest.borrow_and_update() && !wait.is_zero() {
            tokio::select! {
                _ = latest.wait_for(|&id| id > since) => {}
                () = tokio::time::sleep(wait) => {}
                () = app.stop.cancelled() => {}
            }
        }
        return list(&app.since(since));
    }
    let at = Instant::now();
    let mut page = app.since(since);
    if let (Some(k), Some(_)) = (app.faults.hold_back_once, q.since) {
        app.hold_back(k, peer, &mut page, at);
    }
    if let Some(delay) = app.faults.delay_polls {
        bump(&app.log.delayed_polls);
        tokio::time::sleep(delay).await;
    }
    list(&page)
}

#[derive(Deserialize)]
struct EventsQuery {
    since: Option<u64>,
}

async fn events(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Response {
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok()?.trim().parse().ok());
    let cursor = last_event_id.or(q.since).unwrap_or_else(|| app.latest_id());
    let index = app.streams_seen.fetch_add(1, Relaxed) + 1;
    bump(&app.log.sse_streams);
    let feed = app.feed(index, false);
    let held: Option<Vec<u8>> = app
        .faults
        .hold_per_stream
        .map(|n| std::hint::black_box(vec![1; n]));
    let follower = Follower::new(app, feed, cursor);
    // The first chunk goes out at once, so the client sees the stream open.
    let greeting = futures_util::stream::once(async {
        Ok::<_, Infallible>(Bytes::from_static(b"retry: 1000\n\n"))
    });
    // The held bytes travel with the stream's state and are freed when the stream ends.
    let events = futures_util::stream::unfold((follower, held), |(mut f, held)| async move {
        let batch = f.next().await?;
        let mut chunk = String::new();
        for m in &batch {
            chunk.push_str(&format!("id: {}\ndata: {}\n\n", m.id, m.json));
        }
        Some((Ok(Bytes::from(chunk)), (f, held)))
    });
    let body = Body::from_stream(futures_util::StreamExt::chain(greeting, events));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

async fn healthz() -> Response {
    json_response(StatusCode::OK, r#"{"status":"ok"}"#.into())
}
