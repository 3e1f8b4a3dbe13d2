//! Operations: logging set-up, Prometheus metrics (requests by route and status, latency,
//! bytes in and out, uploads in progress), and the `/healthz`, `/readyz` and `/metrics`
//! endpoints.

use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::config::{Config, LogConfig, LogFormat};
use crate::storage::{BlobStore, MetadataStore};
use crate::web;

/// The name of the operation a response answered (`manifest_get`, `upload_patch`, ...), set by
/// handlers whose route pattern alone does not say it.
#[derive(Debug, Clone, Copy)]
pub struct Operation(pub &'static str);

pub fn init_logging(config: &LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests start several servers in one process) is harmless.
    let _ = match config.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// How often recorded histogram samples are folded into their buckets. The recorder keeps
/// every sample until then (or until a scrape), so without this a server nobody scrapes
/// would grow with every request.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// The process's Prometheus recorder, installed once, with its upkeep running. Every
/// histogram has buckets: a bucketed histogram is a fixed set of counters, where a summary
/// would keep samples.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed");
            }
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(METRICS_UPKEEP);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(err) = spawned {
                tracing::warn!(%err, "starting the metrics upkeep failed");
            }
            handle
        })
        .clone()
}

/// A request's method as a metrics label: the methods HTTP defines by name, any other as
/// `other`, so that made-up methods cannot add series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// Counts the bytes of a body as they pass, keeping its size hint (handlers rely on it).
struct CountedBody {
    inner: Body,
    counter: metrics::Counter,
}

impl HttpBody for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.counter.increment(data.len() as u64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

fn counted(body: Body, counter: metrics::Counter) -> Body {
    Body::new(CountedBody {
        inner: body,
        counter,
    })
}

/// Records every request: count and latency by route, method and status; bytes in and out.
/// Every label has a bounded set of values: routes are patterns or operation names (a path
/// no route matches is `unmatched`), methods [`method_label`], statuses three digits.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let (parts, body) = request.into_parts();
    let request = Request::from_parts(
        parts,
        counted(body, metrics::counter!("berth_http_received_bytes_total")),
    );
    let response = next.run(request).await;
    let route = match response.extensions().get::<Operation>() {
        Some(Operation(name)) => (*name).to_owned(),
        None => matched.unwrap_or_else(|| "unmatched".into()),
    };
    let status = response.status().as_u16().to_string();
    let labels = [
        ("route", route),
        ("method", method.to_owned()),
        ("status", status),
    ];
    metrics::counter!("berth_http_requests_total", &labels).increment(1);
    metrics::histogram!("berth_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    let (parts, body) = response.into_parts();
    Response::from_parts(
        parts,
        counted(body, metrics::counter!("berth_http_sent_bytes_total")),
    )
}

/// What `/readyz` checks and `/metrics` refreshes: the stores, or the upstream cluster when
/// the console is in front of one.
#[async_trait::async_trait]
pub trait Readiness: Send + Sync + 'static {
    /// Each part that is not ready, with why.
    async fn failures(&self) -> Vec<String>;
    /// Gauges read when `/metrics` is scraped.
    async fn refresh_gauges(&self) {}
}

/// The embedded stores.
pub struct StoreReadiness {
    pub metadata: Arc<dyn MetadataStore>,
    pub blobs: Arc<dyn BlobStore>,
}

#[async_trait::async_trait]
impl Readiness for StoreReadiness {
    async fn failures(&self) -> Vec<String> {
        [
            ("metadata", self.metadata.check().await),
            ("blobs", self.blobs.check().await),
        ]
        .into_iter()
        .filter_map(|(part, result)| result.err().map(|err| format!("{part}: {err}")))
        .collect()
    }

    async fn refresh_gauges(&self) {
        match self.metadata.count_uploads().await {
            Ok(count) => metrics::gauge!("berth_uploads_in_progress").set(count as f64),
            Err(err) => tracing::warn!(%err, "counting uploads for /metrics failed"),
        }
    }
}

#[derive(Clone)]
pub struct Health {
    pub parts: Arc<dyn Readiness>,
    pub metrics: PrometheusHandle,
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(health): State<Health>) -> Response {
    let failures = health.parts.failures().await;
    if failures.is_empty() {
        "ready\n".into_response()
    } else {
        tracing::warn!(?failures, "not ready");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready\n{}\n", failures.join("\n")),
        )
            .into_response()
    }
}

async fn metrics_endpoint(State(health): State<Health>) -> Response {
    health.parts.refresh_gauges().await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        health.metrics.render(),
    )
        .into_response()
}

/// What every request goes through: the edge (how it arrived, security headers), metrics,
/// tracing, and a panic answered with a 500 (which the edge's headers cover too).
///
/// Metrics need the matched route, so they wrap each route; the rest wraps the router once.
/// `Router::layer` wraps every route in another boxed service, and axum clones a route's whole
/// stack of boxes for each request: three more levels cost a manifest GET 14 allocations.
pub fn served(app: Router, config: &Config, address: std::net::SocketAddr) -> Router {
    let routed = app.layer(axum::middleware::from_fn(track_requests));
    let outer = tower::ServiceBuilder::new()
        .layer(web::EdgeLayer::new(web::Edge::new(config, address)))
        .map_response(axum::response::IntoResponse::into_response)
        .layer(CatchPanicLayer::new())
        .layer(TraceLayer::new_for_http())
        .service(routed);
    Router::new().fallback_service(outer)
}

/// What a replica serves while its shared storage does not answer yet: `/healthz` (alive),
/// `/readyz` as 503 with the reason, and 503 for everything else.
pub fn starting_router(waiting_for: Arc<std::sync::Mutex<String>>) -> Router {
    let not_ready = move || {
        let reason = waiting_for
            .lock()
            .map(|reason| reason.clone())
            .unwrap_or_default();
        async move {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
                format!("not ready\nstarting: {reason}\n"),
            )
                .into_response()
        }
    };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(not_ready.clone()))
        .fallback(not_ready)
}

pub fn router(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_endpoint))
        .with_state(health)
}
