//! Prometheus metrics: one registry per server (no globals), handles resolved up front so hot
//! paths only touch atomics.

use std::sync::{Arc, OnceLock};

use prometheus::process_collector::ProcessCollector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The routes requests are counted under (label `route`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    MessagesGet,
    MessagesPost,
    Events,
    SocketIo,
    SocketIoJs,
    Page,
    Metrics,
    Healthz,
    Other,
}

impl Route {
    pub const ALL: [Route; 9] = [
        Route::MessagesGet,
        Route::MessagesPost,
        Route::Events,
        Route::SocketIo,
        Route::SocketIoJs,
        Route::Page,
        Route::Metrics,
        Route::Healthz,
        Route::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Route::MessagesGet => "GET /messages",
            Route::MessagesPost => "POST /messages",
            Route::Events => "GET /events",
            Route::SocketIo => "/socket.io/",
            Route::SocketIoJs => "GET /socket.io/socket.io.js",
            Route::Page => "GET /",
            Route::Metrics => "GET /metrics",
            Route::Healthz => "GET /healthz",
            Route::Other => "other",
        }
    }
}

/// Status codes whose counters are cached after first use (so `/metrics` lists only statuses that
/// occurred); others are looked up each time.
const COMMON_STATUSES: [u16; 11] = [101, 200, 201, 304, 400, 404, 405, 413, 415, 422, 500];

/// Counters for one route.
#[derive(Clone, Debug)]
pub struct RouteMetrics {
    route: Route,
    requests: IntCounterVec,
    by_status: Arc<[OnceLock<IntCounter>; COMMON_STATUSES.len()]>,
    pub request_body_bytes: IntCounter,
    pub response_body_bytes: IntCounter,
}

impl RouteMetrics {
    fn resolve(&self, status: u16) -> IntCounter {
        self.requests
            .with_label_values(&[self.route.label(), &status.to_string()])
    }

    pub fn count_status(&self, status: u16) {
        match COMMON_STATUSES.iter().position(|&s| s == status) {
            Some(i) => self.by_status[i].get_or_init(|| self.resolve(status)).inc(),
            None => self.resolve(status).inc(),
        }
    }
}

/// Every metric the server exports. Cheap to clone (all handles are `Arc`s inside).
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    routes: Arc<[RouteMetrics]>,
    pub tcp_connections_accepted: IntCounter,
    pub tcp_bytes_received: IntCounter,
    pub tcp_bytes_sent: IntCounter,
    pub sockets_connected: IntGaugeVec,
    pub broadcasts: IntCounter,
    pub socket_messages_sent: IntCounter,
    pub socket_send_overflows: IntCounter,
    pub socket_overflow_disconnects: IntCounter,
    pub socket_events_rejected: IntCounter,
    pub messages_stored_http: IntCounter,
    pub messages_stored_socketio: IntCounter,
    pub log_messages: IntGauge,
    pub log_latest_id: IntGauge,
    pub long_polls_waiting: IntGauge,
    pub sse_streams: IntGauge,
    pub socket_malformed_disconnects: IntCounter,
    /// `pushpoll_sse_streams_dropped_total{reason="slow"}`.
    pub sse_streams_dropped_slow: IntCounter,
    pub tcp_connections_open: IntGauge,
    pub over_limit_reserve: IntCounter,
    pub over_limit_closed: IntCounter,
    pub header_timeouts: IntCounter,
    pub idle_timeouts: IntCounter,
    pub body_timeouts: IntCounter,
    /// The shared log of a cluster (`--redis`); all zero without it.
    pub broker: BrokerMetrics,
}

/// What the shared log (`crate::broker`) costs and how it fares.
#[derive(Clone, Debug)]
pub struct BrokerMetrics {
    /// 1 while the follower holds a connection to Redis, else 0.
    pub up: IntGauge,
    /// From the instant a node sent a message to Redis to the instant this node read it back.
    pub append_to_seen: Histogram,
    pub bytes_to_redis: IntCounter,
    pub bytes_from_redis: IntCounter,
    pub reconnects: IntCounter,
    pub appends: IntCounter,
    pub append_failures: IntCounter,
    pub followed: IntCounter,
    pub duplicates: IntCounter,
    pub gap_messages: IntCounter,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let reg = Registering(&registry);
        let requests = reg.counter_vec(
            "pushpoll_http_requests_total",
            "HTTP requests answered, by route and status",
            &["route", "status"],
        )?;
        let req_bytes = reg.counter_vec(
            "pushpoll_http_request_body_bytes_total",
            "HTTP request body bytes read, by route",
            &["route"],
        )?;
        let resp_bytes = reg.counter_vec(
            "pushpoll_http_response_body_bytes_total",
            "HTTP response body bytes written, by route (streams count as they flow)",
            &["route"],
        )?;
        let routes = Route::ALL
            .iter()
            .map(|&route| RouteMetrics {
                route,
                requests: requests.clone(),
                by_status: Arc::new(std::array::from_fn(|_| OnceLock::new())),
                request_body_bytes: req_bytes.with_label_values(&[route.label()]),
                response_body_bytes: resp_bytes.with_label_values(&[route.label()]),
            })
            .collect();
        let stored = reg.counter_vec(
            "pushpoll_messages_stored_total",
            "Messages appended to the log, by the door they came in through",
            &["door"],
        )?;
        let sse_dropped = reg.counter_vec(
            "pushpoll_sse_streams_dropped_total",
            "SSE streams ended by the server, by reason (slow: the client did not read)",
            &["reason"],
        )?;
        let over_limit = reg.counter_vec(
            "pushpoll_tcp_connections_over_limit_total",
            "Connections accepted beyond --max-connections: `reserve` got 503 (or /healthz, \
             /metrics), `closed` were closed at once",
            &["outcome"],
        )?;
        let timeouts = reg.counter_vec(
            "pushpoll_http_timeouts_total",
            "Connections closed by --header-timeout or --idle-timeout, request bodies cut by \
             --body-timeout",
            &["kind"],
        )?;
        registry.register(Box::new(ProcessCollector::for_self()))?;
        let broker = BrokerMetrics::new(&reg)?;
        Ok(Metrics {
            broker,
            tcp_connections_open: reg.gauge(
                "pushpoll_tcp_connections_open",
                "TCP connections open (WebSockets and the over-limit reserve included)",
            )?,
            over_limit_reserve: over_limit.with_label_values(&["reserve"]),
            over_limit_closed: over_limit.with_label_values(&["closed"]),
            header_timeouts: timeouts.with_label_values(&["header"]),
            idle_timeouts: timeouts.with_label_values(&["idle"]),
            body_timeouts: timeouts.with_label_values(&["body"]),
            routes,
            tcp_connections_accepted: reg
                .counter("pushpoll_tcp_connections_accepted_total", "TCP connections accepted")?,
            tcp_bytes_received: reg.counter(
                "pushpoll_tcp_bytes_received_total",
                "Bytes read from all accepted TCP connections (headers, bodies, WebSocket frames)",
            )?,
            tcp_bytes_sent: reg.counter(
                "pushpoll_tcp_bytes_sent_total",
                "Bytes written to all accepted TCP connections (headers, bodies, WebSocket frames)",
            )?,
            sockets_connected: reg.gauge_vec(
                "pushpoll_sockets_connected",
                "Socket.IO sockets connected, by current transport",
                &["transport"],
            )?,
            broadcasts: reg.counter(
                "pushpoll_broadcasts_total",
                "Messages broadcast to all Socket.IO sockets",
            )?,
            socket_messages_sent: reg.counter(
                "pushpoll_socket_messages_sent_total",
                "Message events queued to individual Socket.IO sockets",
            )?,
            socket_send_overflows: reg.counter(
                "pushpoll_socket_send_overflows_total",
                "Message events not queued because a socket's send queue was full (--socket-buffer)",
            )?,
            socket_overflow_disconnects: reg.counter(
                "pushpoll_socket_overflow_disconnects_total",
                "Sockets disconnected by the server after their send queue overflowed",
            )?,
            socket_events_rejected: reg.counter(
                "pushpoll_socket_events_rejected_total",
                "Socket.IO `message` events ignored because their payload was malformed",
            )?,
            messages_stored_http: stored.with_label_values(&["http"]),
            messages_stored_socketio: stored.with_label_values(&["socketio"]),
            log_messages: reg.gauge("pushpoll_log_messages", "Messages retained in the log")?,
            log_latest_id: reg.gauge("pushpoll_log_latest_id", "Id of the newest message")?,
            long_polls_waiting: reg
                .gauge("pushpoll_long_polls_waiting", "Long polls currently waiting for a message")?,
            sse_streams: reg.gauge("pushpoll_sse_streams", "Open Server-Sent Events streams")?,
            socket_malformed_disconnects: reg.counter(
                "pushpoll_socket_malformed_disconnects_total",
                "Sockets disconnected for sending too many malformed `message` events (--max-malformed-per-sec)",
            )?,
            sse_streams_dropped_slow: sse_dropped.with_label_values(&["slow"]),
            registry,
        })
    }

    pub fn route(&self, route: Route) -> &RouteMetrics {
        let i = Route::ALL
            .iter()
            .position(|&r| r == route)
            .expect("Route::ALL lists every route");
        &self.routes[i]
    }

    /// Everything in the Prometheus text exposition format.
    pub fn render(&self) -> Result<Vec<u8>, prometheus::Error> {
        let mut out = Vec::with_capacity(8192);
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        Ok(out)
    }
}

impl BrokerMetrics {
    fn new(reg: &Registering<'_>) -> Result<Self, prometheus::Error> {
        let bytes = reg.counter_vec(
            "pushpoll_broker_bytes_total",
            "Bytes of Redis commands sent and replies read (RESP; AUTH and SELECT on connect excluded)",
            &["direction"],
        )?;
        let append_to_seen = Histogram::with_opts(
            HistogramOpts::new(
                "pushpoll_broker_append_to_seen_seconds",
                "From a node sending a message to Redis to this node reading it from the stream \
                 (wall clocks: exact on one machine, clock offset included across machines)",
            )
            .buckets(vec![
                0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )?;
        reg.0.register(Box::new(append_to_seen.clone()))?;
        Ok(BrokerMetrics {
            up: reg.gauge(
                "pushpoll_broker_up",
                "1 while this node follows the Redis stream, 0 while it cannot reach Redis",
            )?,
            append_to_seen,
            bytes_to_redis: bytes.with_label_values(&["to_redis"]),
            bytes_from_redis: bytes.with_label_values(&["from_redis"]),
            reconnects: reg.counter(
                "pushpoll_broker_reconnects_total",
                "Connections to Redis opened again after one was lost (follower and writer)",
            )?,
            appends: reg.counter(
                "pushpoll_broker_appends_total",
                "Messages this node stored in the Redis stream",
            )?,
            append_failures: reg.counter(
                "pushpoll_broker_append_failures_total",
                "Messages this node could not store in Redis (POST answered 503; Socket.IO \
                 events dropped)",
            )?,
            followed: reg.counter(
                "pushpoll_broker_messages_followed_total",
                "Messages read from the Redis stream into this node's log",
            )?,
            duplicates: reg.counter(
                "pushpoll_broker_duplicates_ignored_total",
                "Messages read from the stream again (after a reconnect) and ignored",
            )?,
            gap_messages: reg.counter(
                "pushpoll_broker_gap_messages_total",
                "Ids this node never received because Redis lost them first (a Redis restart \
                 without persistence); readers are told through `missed`",
            )?,
        })
    }
}

/// Creates metrics and registers them in one step.
struct Registering<'a>(&'a Registry);

impl Registering<'_> {
    fn counter(&self, name: &str, help: &str) -> Result<IntCounter, prometheus::Error> {
        let c = IntCounter::with_opts(Opts::new(name, help))?;
        self.0.register(Box::new(c.clone()))?;
        Ok(c)
    }

    fn gauge(&self, name: &str, help: &str) -> Result<IntGauge, prometheus::Error> {
        let g = IntGauge::with_opts(Opts::new(name, help))?;
        self.0.register(Box::new(g.clone()))?;
        Ok(g)
    }

    fn counter_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<IntCounterVec, prometheus::Error> {
        let c = IntCounterVec::new(Opts::new(name, help), labels)?;
        self.0.register(Box::new(c.clone()))?;
        Ok(c)
    }

    fn gauge_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<IntGaugeVec, prometheus::Error> {
        let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
        self.0.register(Box::new(g.clone()))?;
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_lists_the_documented_names() {
        let m = Metrics::new().expect("metrics register");
        m.route(Route::MessagesGet).count_status(200);
        m.route(Route::MessagesGet).count_status(418);
        let text = String::from_utf8(m.render().expect("renders")).expect("utf8");
        for name in [
            "pushpoll_tcp_bytes_received_total",
            "pushpoll_tcp_bytes_sent_total",
            "pushpoll_socket_send_overflows_total",
            "pushpoll_socket_malformed_disconnects_total",
            "pushpoll_sse_streams_dropped_total{reason=\"slow\"} 0",
            "pushpoll_log_messages",
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
        assert!(
            text.contains(r#"pushpoll_http_requests_total{route="GET /messages",status="418"} 1"#)
        );
        assert!(
            text.contains(r#"pushpoll_http_requests_total{route="GET /messages",status="200"} 1"#)
        );
    }
}

/// Increments a gauge now and decrements it when dropped (also when a request is abandoned).
#[derive(Debug)]
pub struct GaugeGuard(IntGauge);

impl GaugeGuard {
    pub fn new(gauge: &IntGauge) -> Self {
        gauge.inc();
        GaugeGuard(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
