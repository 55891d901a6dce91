//! The operations endpoint every service exposes: `/metrics` (Prometheus text format) and
//! `/health` (200 when ready, 503 otherwise).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Whether the service is ready to do its job; flipped by the service, read by `/health`.
#[derive(Debug, Clone, Default)]
pub struct Health(Arc<AtomicBool>);

impl Health {
    /// Marks the service ready (or not).
    pub fn set_ready(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    /// Whether the service said it is ready.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Why the operations endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The address is taken or not ours.
    #[error("metrics endpoint {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    /// A global metrics recorder was installed already.
    #[error("metrics recorder: {0}")]
    Recorder(String),
}

/// A running operations endpoint.
#[derive(Debug)]
pub struct OpsServer {
    /// The address it listens on (the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// Renders the current metrics (also what `/metrics` serves).
    pub metrics: PrometheusHandle,
    /// The server task; abort it to stop serving.
    pub task: JoinHandle<()>,
}

/// Histogram buckets for every metric named `*_seconds`: 0.5 ms to 5 min, so one set fits
/// write latencies, query latencies and batch phases alike.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5,
    0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Installs the global Prometheus recorder and serves `/metrics` and `/health` on `addr`.
///
/// Histograms named `*_seconds` are exported as Prometheus histograms (buckets, aggregatable
/// across instances); other histograms as summaries.
pub async fn serve(addr: SocketAddr, health: Health) -> Result<OpsServer, HttpError> {
    let metrics = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .map_err(|e| HttpError::Recorder(e.to_string()))?
        .install_recorder()
        .map_err(|e| HttpError::Recorder(e.to_string()))?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| HttpError::Bind { addr, source })?;
    let app = Router::new()
        .route("/metrics", get(render))
        .with_state(metrics.clone())
        .merge(Router::new().route("/health", get(healthy)).with_state(health));
    let task = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(%err, "operations endpoint stopped");
        }
    });
    tracing::info!(%addr, "serving /metrics and /health");
    Ok(OpsServer { addr, metrics, task })
}

async fn render(State(handle): State<PrometheusHandle>) -> String {
    handle.render()
}

async fn healthy(State(health): State<Health>) -> (StatusCode, &'static str) {
    if health.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get_path(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn serves_metrics_and_health() {
        let health = Health::default();
        let server = serve("127.0.0.1:0".parse().unwrap(), health.clone()).await.unwrap();
        metrics::counter!("stockflight_test_events_total").increment(3);
        metrics::histogram!("stockflight_test_latency_seconds").record(0.003);

        assert!(get_path(server.addr, "/health").await.starts_with("HTTP/1.1 503"));
        health.set_ready(true);
        assert!(get_path(server.addr, "/health").await.starts_with("HTTP/1.1 200"));

        let body = get_path(server.addr, "/metrics").await;
        assert!(body.contains("stockflight_test_events_total 3"), "{body}");
        assert!(
            body.contains("stockflight_test_latency_seconds_bucket{le=\"0.005\"} 1"),
            "{body}"
        );
        assert!(
            body.contains("stockflight_test_latency_seconds_bucket{le=\"0.002\"} 0"),
            "{body}"
        );
    }
}
