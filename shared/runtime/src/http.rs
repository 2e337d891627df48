//! The HTTP server of every service: `/healthz`, `/readyz`, `/metrics`, and
//! the service's own routes.
//!
//! `/healthz` (liveness) answers 503 only once the process can no longer
//! make progress: a consumer or background task died (see
//! [`liveness`](crate::liveness)). `/readyz` answers 503 while a dependency
//! is away (see [`readiness`](crate::readiness)).

use axum::{
    Json, Router,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{liveness::Liveness, readiness::Readiness};

/// The health, readiness and metrics routes merged with `routes`.
pub fn router(routes: Router, readiness: Readiness, liveness: Liveness) -> Router {
    Router::new()
        .route("/healthz", get(move || healthy(liveness.clone())))
        .route("/readyz", get(move || ready(readiness.clone())))
        .route("/metrics", get(metrics))
        .merge(routes)
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then lets
/// requests in flight finish.
pub async fn serve(listener: TcpListener, app: Router, shutdown: CancellationToken) -> std::io::Result<()> {
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
}

async fn healthy(liveness: Liveness) -> Response {
    let dead = liveness.report();
    if dead.is_empty() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", dead.join("\n"))).into_response()
    }
}

async fn ready(readiness: Readiness) -> Response {
    let report = readiness.report().await;
    let status = if report.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(report)).into_response()
}

async fn metrics() -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], crate::metrics::render()).into_response()
}
