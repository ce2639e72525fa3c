//! Prometheus metrics (`GET /metrics`): the `metrics` facade with the Prometheus exporter.
//!
//! The recorder is process-wide (the facade has one global recorder), installed by the first
//! server a process builds; later servers in the same process (tests) share it.

use crate::state::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use metrics::{Counter, Histogram, counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::{LazyLock, OnceLock};
use std::time::{Duration, Instant};

pub const HTTP_REQUESTS: &str = "webchat_http_requests_total";
pub const HTTP_DURATION: &str = "webchat_http_request_duration_seconds";
pub const OPEN_SOCKETS: &str = "webchat_open_sockets";
pub const MESSAGES_STORED: &str = "webchat_messages_stored_total";
pub const DELIVERY_LATENCY: &str = "webchat_delivery_latency_seconds";
pub const APPEND_DURATION: &str = "webchat_append_duration_seconds";
pub const RESUMES: &str = "webchat_resumes_total";
pub const SLOW_CONSUMER_CLOSES: &str = "webchat_slow_consumer_closes_total";
pub const DB_POOL_IN_USE: &str = "webchat_db_pool_connections_in_use";
pub const DB_POOL_OPEN: &str = "webchat_db_pool_connections_open";
pub const DB_POOL_MAX: &str = "webchat_db_pool_connections_max";
pub const DB_POOL_WAITING: &str = "webchat_db_pool_waiting";
pub const BUS_CONNECTED: &str = "webchat_bus_connected";

/// Latency buckets in seconds, from 100 µs (a local fan-out) to 10 s.
const BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder once per process and returns its handle (`None` when another
/// recorder was installed first, e.g. by an embedding application).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .ok()?
                .install_recorder()
                .map_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
                .ok()?;
            describe();
            // Without the exporter's HTTP listener nothing else drains the histograms.
            let upkeep = handle.clone();
            let _ = std::thread::Builder::new().name("webchat-metrics".into()).spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            });
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(HTTP_REQUESTS, "HTTP requests by route, method and status.");
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "HTTP request latency by route and method.");
    describe_gauge!(OPEN_SOCKETS, "Open WebSocket connections on this node.");
    describe_counter!(MESSAGES_STORED, "Messages stored by this node (idempotent resends excluded).");
    describe_histogram!(
        DELIVERY_LATENCY,
        Unit::Seconds,
        "From a message's storage to its write on a socket, per delivery."
    );
    describe_histogram!(
        APPEND_DURATION,
        Unit::Seconds,
        "From a send's submission to the store's answer (the queue and the commit that makes it durable), per send."
    );
    describe_counter!(RESUMES, "Resumes by outcome: replayed (missed messages sent) or resync (too many).");
    describe_counter!(SLOW_CONSUMER_CLOSES, "Sockets closed with 4008 because they did not keep up.");
    describe_gauge!(DB_POOL_IN_USE, "Database connections checked out of the pool.");
    describe_gauge!(DB_POOL_OPEN, "Database connections open in the pool.");
    describe_gauge!(DB_POOL_MAX, "Size of the database pool.");
    describe_gauge!(DB_POOL_WAITING, "Callers waiting for a database connection.");
    describe_gauge!(
        BUS_CONNECTED,
        "1 when this node hears from the other nodes (or runs alone), 0 when cut off."
    );
}

/// Handles cached once: the delivery path records per socket write.
static DELIVERY: LazyLock<Histogram> = LazyLock::new(|| histogram!(DELIVERY_LATENCY));
static STORED: LazyLock<Counter> = LazyLock::new(|| counter!(MESSAGES_STORED));
static APPEND: LazyLock<Histogram> = LazyLock::new(|| histogram!(APPEND_DURATION));

/// A message was written to a socket; `stored_at_ms` is its timestamp (Unix ms).
pub fn delivered(stored_at_ms: i64) {
    let now_ms = chrono::Utc::now().timestamp_millis();
    #[expect(clippy::cast_precision_loss, reason = "milliseconds of latency fit an f64 exactly")]
    DELIVERY.record((now_ms - stored_at_ms).max(0) as f64 / 1000.0);
}

/// A send got the store's answer `elapsed` after it was submitted. Every delivery of a
/// message waits for this, so a slow disk shows here first.
pub fn appended(elapsed: Duration) {
    APPEND.record(elapsed.as_secs_f64());
}

pub fn message_stored() {
    STORED.increment(1);
}

pub fn resumed(outcome: &'static str) {
    counter!(RESUMES, "outcome" => outcome).increment(1);
}

pub fn slow_consumer_closed() {
    counter!(SLOW_CONSUMER_CLOSES).increment(1);
}

/// Counts every request by its route pattern (never the raw path: ids would explode the
/// number of series) and times it.
/// # Errors
/// Whatever the inner service returns.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    // Clients may send any method name; only the standard ones become labels.
    let method: &'static str = match *req.method() {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    };
    let res = next.call(req).await?;
    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16().to_string();
    counter!(HTTP_REQUESTS, "route" => route.clone(), "method" => method, "status" => status).increment(1);
    histogram!(HTTP_DURATION, "route" => route, "method" => method).record(start.elapsed().as_secs_f64());
    Ok(res)
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operations", summary = "Prometheus metrics",
    responses((status = 200, description = "Prometheus text format.", content_type = "text/plain", body = String)))]
pub async fn render(state: web::Data<AppState>) -> HttpResponse {
    let Some(handle) = HANDLE.get().and_then(Option::as_ref) else {
        return HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"detail": "Metrics are not enabled.", "code": "unavailable"}));
    };
    #[expect(clippy::cast_precision_loss, reason = "socket and connection counts fit an f64")]
    {
        gauge!(OPEN_SOCKETS).set(state.hub.open_sockets() as f64);
        let pool = state.readiness.pool();
        gauge!(DB_POOL_IN_USE).set(f64::from(pool.in_use));
        gauge!(DB_POOL_OPEN).set(f64::from(pool.open));
        gauge!(DB_POOL_MAX).set(f64::from(pool.max));
        gauge!(DB_POOL_WAITING).set(pool.waiting as f64);
    }
    let connected = !matches!(state.hub.bus_health(), webchat_domain::ports::BusHealth::Disconnected);
    gauge!(BUS_CONNECTED).set(if connected { 1.0 } else { 0.0 });
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(handle.render())
}
