//! The HTTP server of every service: `/healthz`, `/readyz`, `/metrics`, and
//! the service's own routes.

use axum::{
    Json, Router,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::readiness::Readiness;

/// The health, readiness and metrics routes merged with `routes`.
pub fn router(routes: Router, readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { (StatusCode::OK, "ok\n") }))
        .route("/readyz", get(move || ready(readiness.clone())))
        .route("/metrics", get(metrics))
        .merge(routes)
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then lets
/// requests in flight finish.
pub async fn serve(listener: TcpListener, app: Router, shutdown: CancellationToken) -> std::io::Result<()> {
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
}

async fn ready(readiness: Readiness) -> Response {
    let report = readiness.report().await;
    let status = if report.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(report)).into_response()
}

async fn metrics() -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], crate::metrics::render()).into_response()
}
