//! Wiring: the store, the services and the HTTP server, built once and run.

use crate::config::{BusTarget, Config};
use actix_cors::Cors;
use actix_web::dev::{Server, ServerHandle};
use actix_web::http::header;
use actix_web::middleware::{Condition, NormalizePath, TrailingSlash, from_fn};
use actix_web::{App, HttpServer, web};
use rand::Rng as _;
use std::fs::File;
use std::net::TcpListener;
use std::sync::Arc;
use webchat_api::presence::ClusterPresenceReader;
use webchat_api::rate_limit::AuthLimiter;
use webchat_api::ws::hub::Cluster;
use webchat_api::ws::{Hub, HubSettings};
use webchat_api::{AppState, PoolSnapshot, Presence, Readiness};
use webchat_domain::model::Event;
use webchat_domain::ports::{EventSink, MessageBus, PresenceReader};
use webchat_domain::services::{AccountService, AuthSettings, RoomService};
use webchat_infrastructure::{
    BcryptHasher, DatabaseTarget, Db, DbOptions, JwtCodec, LocalBus, NatsBus, RandomIds, SystemClock,
};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Database(#[from] webchat_infrastructure::DbError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error(
        "another webchat process is using {0}: SQLite is single-process (use PostgreSQL for several nodes)"
    )]
    SqliteInUse(String),
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Other(String),
}

impl StartError {
    /// Exit code: 2 for a bad setting, 1 for anything the environment caused.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Listen { .. } | Self::SqliteInUse(_) | Self::Config(_) | Self::Other(_) => 2,
            Self::Database(_) => 1,
        }
    }
}

struct DbReadiness(Arc<Db>);

impl Readiness for DbReadiness {
    fn is_ready(&self) -> bool {
        self.0.is_ready()
    }

    fn pool(&self) -> PoolSnapshot {
        let s = self.0.pool_stats();
        PoolSnapshot { max: s.max, open: s.open, in_use: s.in_use, waiting: s.waiting }
    }
}

/// CORS for the configured origins. A browser's same-origin requests carry `Origin` too
/// (every POST does), so the server's own origin is always allowed: the built-in client
/// keeps working whatever the list says.
fn cors(origins: &[String]) -> Cors {
    let any = origins.iter().any(|o| o == "*");
    let origins: Vec<String> = origins.to_vec();
    let cors = Cors::default()
        .allowed_origin_fn(move |origin, head| {
            let Ok(origin) = origin.to_str() else { return false };
            if any || origins.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
                return true;
            }
            let host = head.headers().get(header::HOST).and_then(|h| h.to_str().ok());
            host.is_some_and(|h| {
                origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(h)
            })
        })
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .allowed_header(webchat_api::middleware::X_REQUEST_ID)
        .expose_headers([header::RETRY_AFTER, header::WWW_AUTHENTICATE])
        .expose_headers([webchat_api::middleware::X_REQUEST_ID])
        .max_age(3600);
    if any { cors.send_wildcard() } else { cors }
}

/// A built server, bound and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    hub: Arc<Hub>,
    /// Held for the life of the process: SQLite's single-process guard.
    _sqlite_lock: Option<File>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").field("port", &self.port).finish_non_exhaustive()
    }
}

/// Takes an exclusive lock beside the SQLite file so a second process cannot share it.
fn lock_sqlite(path: &str) -> Result<File, StartError> {
    let lock_path = format!("{path}.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StartError::Other(format!("cannot open {lock_path}: {e}")))?;
    file.try_lock().map_err(|_| StartError::SqliteInUse(path.to_owned()))?;
    Ok(file)
}

impl Application {
    /// Connects and migrates the database, wires the services and binds the listener.
    /// # Errors
    /// When the database, the secret or the address cannot be had.
    pub fn build(config: &Config) -> Result<Self, StartError> {
        if config.database_url.is_sqlite() && config.bus != BusTarget::Local {
            return Err(StartError::Config(
                "--bus nats://… needs PostgreSQL: SQLite is single-process (set DATABASE_URL=postgres://…)"
                    .into(),
            ));
        }
        let sqlite_lock = match &config.database_url {
            DatabaseTarget::Sqlite(path) => Some(lock_sqlite(path)?),
            DatabaseTarget::Postgres(_) => None,
        };
        let db = Arc::new(Db::connect(
            &config.database_url,
            DbOptions {
                pool_size: config.db_pool,
                // A cluster's presence is the store's: listings read it along (one read for
                // all the listings the reader thread answers together).
                listing_presence: (config.bus != BusTarget::Local)
                    .then_some(webchat_api::ws::hub::PRESENCE_TTL),
                ..DbOptions::default()
            },
        )?);
        let secret = match &config.jwt_secret {
            Some(s) => s.clone(),
            None => {
                tracing::warn!(
                    "JWT_SECRET is not set: signing tokens with a generated secret kept in the database"
                );
                db.setting_or_insert("jwt_secret", || {
                    let bytes: [u8; 32] = rand::rng().random();
                    bytes.iter().map(|b| format!("{b:02x}")).collect()
                })
                .map_err(|e| StartError::Other(format!("cannot read the JWT secret: {e}")))?
            }
        };
        let presence = Arc::new(Presence::default());
        let bus: Arc<dyn MessageBus> = match &config.bus {
            BusTarget::Local => Arc::new(LocalBus::default()),
            BusTarget::Nats(url) => {
                let service = db
                    .setting_or_insert("service_id", || uuid::Uuid::new_v4().simple().to_string())
                    .map_err(|e| StartError::Other(format!("cannot read the service id: {e}")))?;
                NatsBus::start(url, &service).map_err(StartError::Config)?
            }
        };
        let clock = Arc::new(SystemClock);
        let accounts = Arc::new(AccountService::new(
            db.clone(),
            db.clone(),
            Arc::new(BcryptHasher::new(config.bcrypt_cost).map_err(StartError::Other)?),
            Arc::new(JwtCodec::new(secret.as_bytes())),
            clock.clone(),
            Arc::new(RandomIds),
            bus.clone(),
            AuthSettings { access_ttl: config.access_ttl, refresh_ttl: config.refresh_ttl },
        ));
        accounts.warm_up().map_err(|e| StartError::Other(format!("cannot prepare password hashing: {e}")))?;
        // In a cluster, who is online is read from the presence table every node writes.
        let clustered = config.bus != BusTarget::Local;
        let cluster = clustered.then(|| Cluster {
            store: db.clone(),
            sessions: db.clone(),
            node: uuid::Uuid::new_v4(),
        });
        let reader: Arc<dyn PresenceReader> =
            if clustered { Arc::new(ClusterPresenceReader { store: db.clone() }) } else { presence.clone() };
        let rooms = Arc::new(RoomService::new(db.clone(), db.clone(), reader, clock, bus.clone()));
        let hub = Hub::new(
            rooms.clone(),
            bus.clone(),
            presence.clone(),
            cluster,
            HubSettings {
                socket_queue: usize::try_from(config.socket_queue).unwrap_or(1024),
                send_rate: config.send_rate,
                heartbeat: config.ws_heartbeat.to_std().unwrap_or(HubSettings::default().heartbeat),
            },
        );
        // The accounts first: a revoked session is forgotten before its sockets close.
        bus.attach(Arc::new(Sinks(vec![accounts.clone(), hub.clone()])));
        let state = AppState {
            accounts,
            rooms,
            presence,
            readiness: Arc::new(DbReadiness(db)),
            hub: hub.clone(),
            auth_limiter: AuthLimiter::per_minute(config.auth_rate).map(Arc::new),
            inline_reads: config.database_url.is_sqlite(),
        };
        webchat_api::metrics::install();
        let cors_origins = config.cors_origins.clone();

        let listener = listen(config.listen)
            .map_err(|source| StartError::Listen { addr: config.listen.to_string(), source })?;
        let port = listener.local_addr().map_err(|e| StartError::Other(e.to_string()))?.port();
        let data = web::Data::new(state);
        let mut server = HttpServer::new(move || {
            // Middleware runs outermost last: the request log sees every answer (CORS
            // refusals included), metrics see the matched route after path normalization.
            App::new()
                .app_data(data.clone())
                .configure(webchat_api::configure)
                .wrap(from_fn(webchat_api::metrics::track))
                .wrap(Condition::new(!cors_origins.is_empty(), cors(&cors_origins)))
                .wrap(NormalizePath::new(TrailingSlash::Trim))
                .wrap(from_fn(webchat_api::middleware::request_log))
        })
        .shutdown_timeout(10)
        // Chat frames are small and latency-bound: Nagle's algorithm would hold them back
        // up to a delayed-ACK period (tens of milliseconds).
        .tcp_nodelay(true)
        // Signals are ours: sockets must be closed with 1001 before the server drains.
        .disable_signals();
        if let Some(workers) = config.workers {
            server = server.workers(usize::from(workers));
        }
        // Blocking work is database calls (bounded by the pool) and bcrypt (bounded by the
        // cores): threads beyond about twice the pool only wait for a connection, yet each
        // one that a burst spawns keeps its stack and allocator arena (actix allows 512).
        let blocking = usize::try_from(config.db_pool).unwrap_or(16).saturating_mul(2).max(8);
        server = server.worker_max_blocking_threads(blocking);
        let server = server
            .listen(listener)
            .map_err(|source| StartError::Listen { addr: config.listen.to_string(), source })?
            .run();
        tracing::info!(port, "webchat listening");
        Ok(Self { port, server, hub, _sqlite_lock: sqlite_lock })
    }

    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server gracefully.
    #[must_use]
    pub fn handle(&self) -> AppHandle {
        AppHandle { server: self.server.handle(), hub: self.hub.clone() }
    }

    /// Serves until SIGINT/SIGTERM or [`AppHandle::stop`]: then closes every WebSocket with
    /// 1001 and gives in-flight requests 10 s.
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.handle();
        let _lock = self._sqlite_lock;
        let mut server = self.server;
        tokio::select! {
            result = &mut server => return result,
            () = shutdown_signal() => tracing::info!("shutting down"),
        }
        // The server future must keep running while it is told to stop.
        let ((), result) = tokio::join!(handle.stop(true), server);
        result
    }
}

/// Stops a running [`Application`].
#[derive(Clone)]
pub struct AppHandle {
    server: ServerHandle,
    hub: Arc<Hub>,
}

impl std::fmt::Debug for AppHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppHandle")
    }
}

impl AppHandle {
    /// Closes every WebSocket with 1001, then stops the server (gracefully: in-flight
    /// requests finish, at most 10 s).
    pub async fn stop(&self, graceful: bool) {
        self.hub.close_all(webchat_api::ws::hub::close::SHUTDOWN);
        // Let the sockets' tasks write their close frames before the workers stop.
        for _ in 0..50 {
            if self.hub.open_sockets() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // The closed sockets' presence changes run on the hub's thread: let them finish, so
        // the other nodes hear these users went offline now, not when the rows expire.
        let hub = self.hub.clone();
        let _ = tokio::task::spawn_blocking(move || hub.flush(std::time::Duration::from_secs(2))).await;
        self.server.stop(graceful).await;
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Hands each event the bus delivers to every part of this node that needs it.
struct Sinks(Vec<Arc<dyn EventSink>>);

impl EventSink for Sinks {
    fn deliver(&self, event: &Event) {
        for sink in &self.0 {
            sink.deliver(event);
        }
    }
}

/// Connections the kernel may hold accepted before the server takes them: actix-web's own
/// default. `std`'s `TcpListener::bind` asks for 128, which a burst of 256 connects (W5)
/// overflowed; each dropped SYN then cost its client a one-second retry.
const LISTEN_BACKLOG: i32 = 1024;

fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std does: a restarted server can bind while old connections linger in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}
