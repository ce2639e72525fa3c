//! The diesel store: one implementation of every repository port for PostgreSQL and
//! SQLite, through diesel's `MultiConnection`.
//!
//! Reads take a pooled connection; writes run in a transaction. SQLite allows one writer
//! at a time, so there writes also take a process-wide lock: a deferred SQLite transaction
//! that reads and then writes would otherwise fail with `SQLITE_BUSY` instead of waiting.

mod group_commit;
mod in_ids;
mod members;
mod messages;
mod pg_batch;
mod pg_list;
mod presence;
mod recent;
mod rooms;
mod schema;
mod sessions;
mod settings;
mod users;

use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::R2D2Connection;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use group_commit::GroupCommit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use webchat_domain::model::{Appended, Listing, NewMessage, RoomId, RoomListQuery, UserId};
use webchat_domain::ports::StoreResult;
use webchat_domain::{StoreError, UniqueField};

/// Appender threads on PostgreSQL (each room always uses the same one).
const PG_APPEND_LANES: usize = 4;
/// The most messages one commit takes.
const MAX_APPEND_BATCH: usize = 256;
/// Room listings answered in one round trip at most (each lists at most 200 rooms).
const MAX_LIST_BATCH: usize = 64;

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// A connection to either backend. Queries written once against it run on both.
#[derive(diesel::MultiConnection)]
#[expect(missing_debug_implementations, reason = "diesel's connections have no Debug")]
pub enum DbConnection {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

/// Which database to use, parsed from `DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    Postgres(String),
    /// A file path (`sqlite://PATH` or a bare path).
    Sqlite(String),
}

impl DatabaseTarget {
    /// `postgres://…` and `postgresql://…` select PostgreSQL; `sqlite://PATH`, `sqlite:PATH`
    /// or a bare path select SQLite.
    /// # Errors
    /// When the URL is empty or names another scheme.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        if path.is_empty() {
            return Err("the database URL is empty".into());
        }
        if path.contains("://") {
            return Err(format!("unsupported database URL {path:?}: use postgres://… or sqlite://PATH"));
        }
        Ok(Self::Sqlite(path.to_owned()))
    }

    #[must_use]
    pub fn is_sqlite(&self) -> bool {
        matches!(self, Self::Sqlite(_))
    }
}

/// Tuning of the store.
#[derive(Debug, Clone, Copy)]
pub struct DbOptions {
    pub pool_size: u32,
    pub connect_timeout: Duration,
    /// Who is online (presence rows seen within this long) is read along with room listings
    /// on PostgreSQL ([`webchat_domain::model::Listing::online`]): for the nodes of a cluster,
    /// whose presence is the store's. `None` on a single node, whose presence is in memory.
    pub listing_presence: Option<Duration>,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self { pool_size: 16, connect_timeout: Duration::from_secs(5), listing_presence: None }
    }
}

/// Why the store could not start.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("database migration failed: {0}")]
    Migrate(String),
}

#[derive(Debug)]
struct Manager {
    target: DatabaseTarget,
}

/// A pooled connection and when it last answered.
struct Pooled {
    conn: DbConnection,
    answered: Instant,
}

impl std::ops::Deref for Pooled {
    type Target = DbConnection;

    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

/// Bytes of heap all of SQLite's connections in this process may use together before their
/// page caches recycle their least recently used pages instead of growing (SQLite's soft
/// heap limit, process-wide). Without it every pooled connection's cache (2 MiB by
/// default) filled on its own as the tables grew, so the process grew with the pool's size
/// and the tables; pages that leave the cache are read again from the OS's file cache.
/// Schemas and cached statements count against the budget too. 4 MiB: the soak's RSS is
/// flat after its first minute, W6 within the noise (docs/benchmarks.md).
pub(super) const SQLITE_HEAP_BUDGET: u64 = 4 << 20;

/// A connection that answered this recently is taken from the pool without a ping: a
/// `SELECT 1` per checkout was a round trip per request and per batch. One that died
/// meanwhile fails its query, which answers 503 once and drops it (`has_broken`).
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

impl r2d2::ManageConnection for Manager {
    type Connection = Pooled;
    type Error = diesel::ConnectionError;

    fn connect(&self) -> Result<Pooled, Self::Error> {
        let conn = match &self.target {
            DatabaseTarget::Postgres(url) => PgConnection::establish(url).map(DbConnection::Pg),
            DatabaseTarget::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(path)?;
                conn.batch_execute(&format!(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                     PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
                     PRAGMA soft_heap_limit = {SQLITE_HEAP_BUDGET};"
                ))
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
                Ok(DbConnection::Sqlite(conn))
            }
        }?;
        Ok(Pooled { conn, answered: Instant::now() })
    }

    fn is_valid(&self, conn: &mut Pooled) -> Result<(), Self::Error> {
        if conn.answered.elapsed() < PING_WHEN_IDLE_FOR {
            return Ok(());
        }
        conn.conn.ping().map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
        conn.answered = Instant::now();
        Ok(())
    }

    fn has_broken(&self, conn: &mut Pooled) -> bool {
        conn.conn.is_broken()
    }
}

/// A snapshot of the connection pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub max: u32,
    pub open: u32,
    pub in_use: u32,
    pub waiting: usize,
}

/// The queue of room listings to the reader thread: each a viewer and its query.
type ListLane = GroupCommit<(UserId, RoomListQuery), StoreResult<Listing>>;

/// The store. Implements every repository port of the domain.
pub struct Db {
    core: Arc<Core>,
    /// Appends committed together by the appender threads (see [`group_commit`]); a room
    /// always goes to the same lane, so its outcomes leave in `seq` order.
    lanes: Vec<Arc<GroupCommit<NewMessage, StoreResult<Appended>>>>,
    /// On PostgreSQL, room listings answered together by the reader thread (see
    /// [`pg_list`]); SQLite answers each on the caller's thread.
    list_lane: Option<Arc<ListLane>>,
}

/// The pool, the SQLite write lock and the memories of the store: what callers, the
/// appender threads and the reader thread share.
struct Core {
    pool: r2d2::Pool<Manager>,
    /// Callers waiting for a pooled connection now (r2d2 does not count them).
    waiting: AtomicUsize,
    /// `Some` on SQLite: serializes writers (see the module docs).
    write_lock: Option<Mutex<()>>,
    /// The last messages of rooms listed moments ago (see [`recent`]).
    recent: recent::RecentMessages,
    /// Rooms' member lists, each filed under its `members_rev` (see [`members`]).
    members: members::RoomMembers,
    /// [`DbOptions::listing_presence`].
    listing_presence: Option<Duration>,
}

impl Drop for Db {
    fn drop(&mut self) {
        // The appenders commit what is queued, then end and release the pool; the reader
        // answers what is queued.
        for lane in &self.lanes {
            lane.close();
        }
        if let Some(lane) = &self.list_lane {
            lane.close();
        }
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("sqlite", &self.core.write_lock.is_some()).finish_non_exhaustive()
    }
}

/// An error inside a transaction: the database's, or one of ours that aborts it.
#[derive(Debug)]
enum TxError {
    Db(DieselError),
    Store(StoreError),
}

impl From<DieselError> for TxError {
    fn from(e: DieselError) -> Self {
        Self::Db(e)
    }
}

impl Db {
    /// Connects, runs the migrations and builds the pool.
    /// # Errors
    /// When the database cannot be reached or migrated.
    pub fn connect(target: &DatabaseTarget, options: DbOptions) -> Result<Self, DbError> {
        Self::migrate(target)?;
        let sqlite = target.is_sqlite();
        let pool = r2d2::Pool::builder()
            .max_size(options.pool_size)
            .min_idle(Some(1))
            .connection_timeout(options.connect_timeout)
            .build(Manager { target: target.clone() })
            .map_err(|e| DbError::Connect(e.to_string()))?;
        let core = Arc::new(Core {
            pool,
            waiting: AtomicUsize::new(0),
            write_lock: sqlite.then(|| Mutex::new(())),
            recent: recent::RecentMessages::default(),
            members: members::RoomMembers::default(),
            listing_presence: options.listing_presence,
        });
        // SQLite has one writer at a time: a second lane would only wait for the lock. On
        // PostgreSQL, lanes of different rooms commit side by side, each batch a few round
        // trips that the others overlap.
        let lane_count = if sqlite { 1 } else { PG_APPEND_LANES };
        let mut lanes: Vec<Arc<GroupCommit<NewMessage, StoreResult<Appended>>>> =
            Vec::with_capacity(lane_count);
        for i in 0..lane_count {
            let store = Arc::clone(&core);
            let lane = GroupCommit::start(
                &format!("webchat-append-{i}"),
                MAX_APPEND_BATCH,
                move |batch: Vec<NewMessage>| store.append_batch(&batch),
                || Err(StoreError::Internal("the batch of this append panicked".into())),
            )
            .map_err(|e| {
                // No `Db` will close the appenders that did start.
                for lane in &lanes {
                    lane.close();
                }
                DbError::Connect(format!("cannot start an appender thread: {e}"))
            })?;
            lanes.push(lane);
        }
        // A listing of rooms on PostgreSQL is one round trip that a pooled thread would sleep
        // through; the reader thread answers every listing queued meanwhile in one.
        let list_lane = if sqlite {
            None
        } else {
            let store = Arc::clone(&core);
            Some(
                GroupCommit::start(
                    "webchat-list",
                    MAX_LIST_BATCH,
                    move |batch: Vec<(UserId, RoomListQuery)>| store.list_batch(&batch),
                    || Err(StoreError::Internal("the batch of this listing panicked".into())),
                )
                .map_err(|e| {
                    // No `Db` will close the appenders that did start.
                    for lane in &lanes {
                        lane.close();
                    }
                    DbError::Connect(format!("cannot start the reader thread: {e}"))
                })?,
            )
        };
        Ok(Self { core, lanes, list_lane })
    }

    fn migrate(target: &DatabaseTarget) -> Result<(), DbError> {
        let connect = |e: diesel::ConnectionError| DbError::Connect(e.to_string());
        let migrate = |e: Box<dyn std::error::Error + Send + Sync>| DbError::Migrate(e.to_string());
        match target {
            DatabaseTarget::Postgres(url) => {
                let mut c = PgConnection::establish(url).map_err(connect)?;
                // Nodes starting together must not race on the migrations.
                let lock = |c: &mut PgConnection, sql: &str| {
                    diesel::sql_query(sql).execute(c).map(|_| ()).map_err(|e| DbError::Migrate(e.to_string()))
                };
                lock(&mut c, "SELECT pg_advisory_lock(7413370001)")?;
                let result = c.run_pending_migrations(PG_MIGRATIONS).map(|_| ()).map_err(migrate);
                lock(&mut c, "SELECT pg_advisory_unlock(7413370001)")?;
                result?;
            }
            DatabaseTarget::Sqlite(path) => {
                let mut c = SqliteConnection::establish(path).map_err(connect)?;
                c.batch_execute("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;")
                    .map_err(|e| DbError::Migrate(e.to_string()))?;
                c.run_pending_migrations(SQLITE_MIGRATIONS).map_err(migrate)?;
            }
        }
        Ok(())
    }

    /// Whether the database answers now (for `/readyz`).
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.read(|c| c.batch_execute("SELECT 1")).is_ok()
    }

    /// The pool as `/metrics` reports it.
    #[must_use]
    pub fn pool_stats(&self) -> PoolStats {
        let pool = &self.core.pool;
        let state = pool.state();
        PoolStats {
            max: pool.max_size(),
            open: state.connections,
            in_use: state.connections.saturating_sub(state.idle_connections),
            waiting: self.core.waiting.load(Ordering::Relaxed),
        }
    }

    fn read<T>(&self, f: impl FnOnce(&mut DbConnection) -> QueryResult<T>) -> StoreResult<T> {
        self.core.read(f)
    }

    /// The appender lane of `room`.
    fn lane(&self, room: RoomId) -> &GroupCommit<NewMessage, StoreResult<Appended>> {
        let i = usize::try_from(room.0.unsigned_abs() % self.lanes.len() as u64).unwrap_or(0);
        &self.lanes[i]
    }

    fn write<T>(&self, f: impl FnOnce(&mut DbConnection) -> Result<T, TxError>) -> StoreResult<T> {
        self.core.write(f)
    }
}

impl Core {
    fn conn(&self) -> StoreResult<r2d2::PooledConnection<Manager>> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let conn = self.pool.get();
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        conn.map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// Runs a read on a pooled connection.
    fn read<T>(&self, f: impl FnOnce(&mut DbConnection) -> QueryResult<T>) -> StoreResult<T> {
        let mut conn = self.conn()?;
        let result = f(&mut conn).map_err(|e| broken_or(&mut conn, e));
        answered(&mut conn, result.is_ok());
        result
    }

    fn is_sqlite(&self) -> bool {
        self.write_lock.is_some()
    }

    /// Runs one atomic statement (or several that need no transaction) outside a
    /// transaction of ours.
    fn run<T>(&self, f: impl FnOnce(&mut DbConnection) -> Result<T, TxError>) -> StoreResult<T> {
        let mut conn = self.conn()?;
        let result = f(&mut conn).map_err(|e| match e {
            TxError::Db(e) => broken_or(&mut conn, e),
            TxError::Store(e) => e,
        });
        answered(&mut conn, result.is_ok());
        result
    }

    /// Runs `f` in a write transaction.
    fn write<T>(&self, f: impl FnOnce(&mut DbConnection) -> Result<T, TxError>) -> StoreResult<T> {
        let mut conn = self.conn()?;
        let _guard = self
            .write_lock
            .as_ref()
            .map(|lock| lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let result = conn.transaction(f).map_err(|e| match e {
            TxError::Db(e) => broken_or(&mut conn, e),
            TxError::Store(e) => e,
        });
        answered(&mut conn, result.is_ok());
        result
    }
}

/// Notes that the connection answered just now.
fn answered(conn: &mut r2d2::PooledConnection<Manager>, ok: bool) {
    if ok {
        conn.answered = Instant::now();
    }
}

/// A query that failed because the connection died means the database is unavailable,
/// whatever error text the driver chose.
fn broken_or(conn: &mut DbConnection, e: DieselError) -> StoreError {
    if conn.is_broken() { StoreError::Unavailable(e.to_string()) } else { map_error(e) }
}

/// Maps diesel's errors onto the ports' contract.
fn map_error(e: DieselError) -> StoreError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            let what = format!("{} {}", info.constraint_name().unwrap_or(""), info.message());
            StoreError::Conflict(if what.contains("email") {
                UniqueField::Email
            } else if what.contains("username") {
                UniqueField::Username
            } else if what.contains("client_msg_id") {
                UniqueField::ClientMsgId
            } else {
                UniqueField::RoomName
            })
        }
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            info,
        ) => StoreError::Unavailable(info.message().to_owned()),
        other => StoreError::Internal(other.to_string()),
    }
}

fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests;
