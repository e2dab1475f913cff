//! `findemo dashboard`: an HTTP server (axum) in the binary. It serves the pages in
//! `assets/` (compiled in: no CDN, no Node, works offline) and a JSON API over the
//! stack's ClickHouse, PostgreSQL and Kafka Connect:
//!
//! - `live.rs`: one refresher per server reads the overview and the pipeline's state
//!   on a fixed cadence into a shared snapshot, streamed to every open page as
//!   server-sent events, so N tabs cost the services what one does;
//! - `buckets.rs`: the overview's totals and live charts, kept up to date by
//!   recomputing only the minutes that changed;
//! - `analytics.rs`: searchable, paginated transactions, merchants and accounts, and
//!   one transaction's change history from bronze;
//! - `sqlpad.rs`: the SQL pad, run read-only by ClickHouse itself.

mod analytics;
mod buckets;
pub(crate) mod live;
mod sqlpad;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::sync::watch;

use crate::clients::clickhouse::{ChError, ClickHouse};
use crate::config::Config;
use crate::endpoints::Endpoints;

/// What every request handler shares.
pub struct App {
    pub config: Config,
    pub endpoints: Endpoints,
    pub ch: ClickHouse,
    /// The newest overview and pipeline snapshots, as JSON text ("" until the first).
    overview: watch::Receiver<Arc<str>>,
    pipeline: watch::Receiver<Arc<str>>,
    /// Transactions per status and per recent second, as of the last overview.
    index: watch::Receiver<Arc<buckets::CountIndex>>,
}

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error(
        "cannot listen on {addr}: {source}\n\
         Is another program (or another `findemo dashboard`) using port {port}? \
         Pick another with `--port N` or `dashboard.port` in demo.yaml."
    )]
    Bind {
        addr: SocketAddr,
        port: u16,
        source: std::io::Error,
    },
    #[error("the dashboard server stopped: {0}")]
    Serve(std::io::Error),
}

/// An API error: HTTP status and a message the page shows as it is.
pub struct ApiError {
    status: StatusCode,
    message: String,
    position: Option<usize>,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            position: None,
        }
    }
}

impl From<ChError> for ApiError {
    fn from(err: ChError) -> ApiError {
        let status = match err {
            ChError::Connect { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError {
            status,
            message: err.to_string(),
            position: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message, "position": self.position });
        (self.status, Json(body)).into_response()
    }
}

/// Listens on `addr` and serves until `shutdown` resolves.
pub async fn serve(
    config: Config,
    endpoints: Endpoints,
    addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), DashboardError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| DashboardError::Bind {
            addr,
            port: addr.port(),
            source,
        })?;
    let local = listener.local_addr().map_err(DashboardError::Serve)?;
    let ch = ClickHouse::new(&endpoints.clickhouse);
    let live = live::start(&config, &endpoints, &ch);
    let refreshers = live.refreshers;
    let app = Arc::new(App {
        config,
        endpoints,
        ch,
        overview: live.overview,
        pipeline: live.pipeline,
        index: live.index,
    });
    on_listening(local);
    let result = axum::serve(listener, router(app))
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Ends the refreshers, which ends every open event stream with them.
            refreshers.abort();
        })
        .await;
    result.map_err(DashboardError::Serve)
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/app.js", get(script))
        .route("/assets/style.css", get(style))
        .route("/api/live", get(live::stream))
        .route("/api/overview", get(live::overview))
        .route("/api/pipeline", get(live::pipeline))
        .route("/api/verify", post(verify))
        .route("/api/transactions", get(analytics::transactions))
        .route("/api/merchants", get(analytics::merchants))
        .route("/api/accounts", get(analytics::accounts))
        .route("/api/tx/{id}", get(analytics::history))
        .route("/api/sql", post(sqlpad::run))
        .fallback(not_found)
        .with_state(app)
}

/// A page's files, with a policy that lets them load nothing from elsewhere.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                 connect-src 'self'; frame-ancestors 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    asset(
        "text/html; charset=utf-8",
        include_str!("../../assets/index.html"),
    )
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/app.js"),
    )
}

async fn style() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/style.css"),
    )
}

async fn not_found() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: "no such page".into(),
        position: None,
    }
}

/// The same reconciliation as `findemo verify`, once (no waiting).
async fn verify(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let pg = crate::clients::postgres::connect(&app.endpoints.postgres)
        .await
        .map_err(|e| ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: e.to_string(),
            position: None,
        })?;
    let report = crate::commands::verify::compare(
        &pg,
        &app.ch,
        &app.config.stack,
        std::time::Instant::now(),
    )
    .await
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Json(report).into_response())
}
