//! The service: axum routes over SQLite (the source of truth) with a redcluster cache in
//! front, every request under a deadline, and what it did counted for `/metrics`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use redcluster::{Cache, Client, ErrorKind, Origin};
use serde::Deserialize;

use crate::db::{Db, User};
use crate::metrics::Metrics;

/// How the service uses the cache.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Every request's deadline for the cluster; past it the handler serves from SQLite.
    pub deadline: Duration,
    /// Serve GETs through the cache (false: SQLite only, for comparison).
    pub cache: bool,
    /// Read a user from its primary for a short while after this process wrote it.
    pub read_your_writes: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            deadline: Duration::from_millis(250),
            cache: true,
            read_your_writes: true,
        }
    }
}

/// Shared state of every handler.
pub struct App {
    pub client: Client,
    pub cache: Cache<User>,
    pub db: Db,
    pub settings: Settings,
    pub metrics: Metrics,
    /// The newest version of each user this process has written: a cached copy older than
    /// it (a replica behind, or a write lost in a failover) is not served. Bounded by the
    /// number of users.
    floor: Mutex<HashMap<u64, u64>>,
}

impl App {
    /// The service over `client` and `db`.
    pub fn new(client: Client, db: Db, settings: Settings) -> Arc<App> {
        prometheus();
        let cache = client
            .cache::<User>("users")
            .ttl(Duration::from_secs(30 * 60))
            .ttl_jitter(0.1)
            .read_your_writes(settings.read_your_writes);
        Arc::new(App {
            client,
            cache,
            db,
            settings,
            metrics: Metrics::default(),
            floor: Mutex::new(HashMap::new()),
        })
    }

    fn floor_of(&self, id: u64) -> u64 {
        let floor = self.floor.lock().unwrap_or_else(|e| e.into_inner());
        floor.get(&id).copied().unwrap_or(0)
    }

    fn raise_floor(&self, id: u64, version: u64) {
        let mut floor = self.floor.lock().unwrap_or_else(|e| e.into_inner());
        let v = floor.entry(id).or_insert(0);
        *v = (*v).max(version);
    }
}

/// The routes: `GET /users/{id}`, `PUT /users/{id}`, `GET /health`, `GET /metrics`.
pub fn routes(app: Arc<App>) -> Router {
    Router::new()
        .route("/users/{id}", get(get_user).put(put_user))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(app)
}

/// Serve `app` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, app: Arc<App>) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Small responses: without TCP_NODELAY, Nagle and delayed ACKs add ~40 ms to each.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, routes(app)).await
}

/// Bind `listen` (port 0 for a free one) and serve in a background task.
pub async fn start(
    listen: &str,
    app: Arc<App>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    Ok((addr, tokio::spawn(serve(listener, app))))
}

/// A failed request, mapped to an HTTP status. `?` on a `redcluster::Error` or a SQLite
/// error lands here.
pub enum AppError {
    Cluster(redcluster::Error),
    Database(rusqlite::Error),
}

impl From<redcluster::Error> for AppError {
    fn from(e: redcluster::Error) -> Self {
        AppError::Cluster(e)
    }
}

impl From<rusqlite::Error> for AppError {
    fn from(e: rusqlite::Error) -> Self {
        AppError::Database(e)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match &self {
            AppError::Cluster(e) => match e.kind() {
                // The cluster is unreachable or slow: try again later.
                ErrorKind::Io
                | ErrorKind::Timeout
                | ErrorKind::ClusterDown
                | ErrorKind::TooManyRedirects
                | ErrorKind::MaybeApplied
                | ErrorKind::Closed => StatusCode::SERVICE_UNAVAILABLE,
                // The cluster answered, with an error of its own.
                ErrorKind::Server | ErrorKind::CrossSlot => StatusCode::BAD_GATEWAY,
                // Our bug or our data: a value that does not decode, a loader that failed.
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            AppError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let text = match self {
            AppError::Cluster(e) => e.to_string(),
            AppError::Database(e) => e.to_string(),
        };
        (status, text).into_response()
    }
}

/// A user (or 404) with its `x-cache` header.
fn user_response(user: Option<User>, x_cache: &'static str) -> Response {
    let mut r = match user {
        Some(u) => axum::Json(u).into_response(),
        None => (StatusCode::NOT_FOUND, "no such user").into_response(),
    };
    r.headers_mut()
        .insert("x-cache", HeaderValue::from_static(x_cache));
    r
}

async fn get_user(State(app): State<Arc<App>>, Path(id): Path<u64>) -> Result<Response, AppError> {
    let started = Instant::now();
    let r = get_user_inner(&app, id).await;
    app.metrics.request("get_user", &r, started.elapsed());
    r
}

async fn get_user_inner(app: &App, id: u64) -> Result<Response, AppError> {
    if !app.settings.cache {
        return Ok(user_response(app.db.get(id)?, "off"));
    }
    let load = app
        .cache
        .get_or_load_origin(id, || async { app.db.get(id) });
    let (user, origin) = match tokio::time::timeout(app.settings.deadline, load).await {
        Ok(Ok(found)) => found,
        // SQLite itself failed: nothing to fall back on.
        Ok(Err(e)) if e.kind() == ErrorKind::Load => return Err(e.into()),
        // The cluster failed or missed the deadline: serve from the source of truth.
        Ok(Err(_)) | Err(_) => {
            app.metrics.fallbacks.fetch_add(1, Ordering::Relaxed);
            return Ok(user_response(app.db.get(id)?, "bypass"));
        }
    };
    // Older than what this process wrote (a replica behind, a write lost in a failover):
    // serve the database's and repair the entry.
    if user.as_ref().map_or(0, |u| u.version) < app.floor_of(id) {
        app.metrics.stale_repairs.fetch_add(1, Ordering::Relaxed);
        let fresh = app.db.get(id)?;
        if let Some(u) = &fresh {
            let _ = tokio::time::timeout(app.settings.deadline, app.cache.put(id, u)).await;
        }
        return Ok(user_response(fresh, "stale"));
    }
    let x_cache = match origin {
        Origin::Cache => "hit",
        _ => "miss",
    };
    Ok(user_response(user, x_cache))
}

/// The body of `PUT /users/{id}`.
#[derive(Deserialize)]
struct NewName {
    name: String,
}

async fn put_user(
    State(app): State<Arc<App>>,
    Path(id): Path<u64>,
    axum::Json(body): axum::Json<NewName>,
) -> Result<Response, AppError> {
    let started = Instant::now();
    let r = put_user_inner(&app, id, &body.name).await;
    app.metrics.request("put_user", &r, started.elapsed());
    r
}

async fn put_user_inner(app: &App, id: u64, name: &str) -> Result<Response, AppError> {
    let user = app.db.put_name(id, name)?;
    app.raise_floor(id, user.version);
    if app.settings.cache {
        // Update rather than evict: the next GET is a hit. A failure leaves an older entry
        // behind, which the floor keeps from being served.
        match tokio::time::timeout(app.settings.deadline, app.cache.put(id, &user)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => {
                app.metrics
                    .cache_write_failures
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok(axum::Json(user).into_response())
}

async fn health(State(app): State<Arc<App>>) -> Result<Response, AppError> {
    match tokio::time::timeout(app.settings.deadline, app.client.ping()).await {
        Ok(r) => {
            r?;
            Ok((StatusCode::OK, "ok").into_response())
        }
        Err(_) => Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            "cluster did not answer in time",
        )
            .into_response()),
    }
}

/// The `metrics` facade's recorder (redcluster's request, error, redirect, reconnect and
/// cache counters, latency per command), installed once per process.
pub fn prometheus() -> Option<&'static metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .set_buckets(&[
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0,
                ])
                .ok()?
                .install_recorder()
                .ok()
        })
        .as_ref()
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let mut text = app.metrics.render(&app);
    if let Some(handle) = prometheus() {
        handle.run_upkeep();
        text.push_str(&handle.render());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Counted for `/metrics`: the service's own figures beside the cache's and the client's.
pub fn app_figures(app: &App) -> Vec<(&'static str, &'static str, u64)> {
    let c = app.cache.stats();
    let s = app.client.stats();
    vec![
        (
            "webservice_db_reads_total",
            "SQLite reads (loads and bypasses)",
            app.db.reads(),
        ),
        (
            "webservice_cache_hits_total",
            "cache lookups that found an entry",
            c.hits,
        ),
        (
            "webservice_cache_misses_total",
            "cache lookups that found none",
            c.misses,
        ),
        (
            "webservice_cache_loads_total",
            "loader runs (one per single flight)",
            c.loads,
        ),
        (
            "webservice_cache_load_errors_total",
            "loader runs that failed",
            c.load_errors,
        ),
        (
            "redcluster_moved_total",
            "MOVED redirects followed",
            s.moved,
        ),
        ("redcluster_ask_total", "ASK redirects followed", s.ask),
        ("redcluster_retries_total", "requests retried", s.retries),
        (
            "redcluster_refreshes_total",
            "topology refreshes",
            s.topology_refreshes,
        ),
        ("redcluster_reconnects_total", "reconnects", s.reconnects),
        (
            "redcluster_timeouts_total",
            "requests past their deadline",
            s.timeouts,
        ),
    ]
}
