//! Settings from flags and environment (SPEC §1).

use chrono::Duration;
use clap::{Parser, ValueEnum};
use std::net::SocketAddr;
use webchat_infrastructure::DatabaseTarget;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// WebChat: a real-time chat service (accounts, rooms, history, WebSockets).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "webchat",
    version,
    about,
    after_help = "Environment only:\n  JWT_SECRET  the JWT signing secret (HS256); when unset, a random secret is generated and kept in the database"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "WEBCHAT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// postgres://… for PostgreSQL, sqlite://PATH (or a bare path) for embedded SQLite.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://webchat.db", value_parser = DatabaseTarget::parse)]
    pub database_url: DatabaseTarget,

    /// JWT signing secret (env only); when unset, one is generated and kept in the database.
    #[arg(skip = std::env::var("JWT_SECRET").ok().filter(|s| !s.is_empty()))]
    pub jwt_secret: Option<String>,

    /// bcrypt cost (4–31).
    #[arg(long, env = "BCRYPT_COST", default_value_t = 12, value_parser = clap::value_parser!(u32).range(4..=31))]
    pub bcrypt_cost: u32,

    /// Access token lifetime (e.g. 30s, 15m, 2h, 7d).
    #[arg(long, env = "WEBCHAT_ACCESS_TTL", default_value = "15m", value_parser = parse_duration)]
    pub access_ttl: Duration,

    /// Refresh token lifetime (e.g. 12h, 7d).
    #[arg(long, env = "WEBCHAT_REFRESH_TTL", default_value = "7d", value_parser = parse_duration)]
    pub refresh_ttl: Duration,

    /// Log format; default: pretty on a terminal, else json. Level from RUST_LOG.
    #[arg(long, env = "WEBCHAT_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Origins allowed to call the API from a browser (comma-separated, e.g.
    /// `https://chat.example.com`, or `*`); none: same origin only.
    #[arg(long, env = "WEBCHAT_CORS_ORIGINS", value_delimiter = ',', value_parser = parse_origin)]
    pub cors_origins: Vec<String>,

    /// Register, login and refresh requests per minute per client IP; 0 turns the limit off.
    #[arg(long, env = "WEBCHAT_AUTH_RATE", default_value_t = 30)]
    pub auth_rate: u32,

    /// Messages per second per user (burst twice that); 0 turns the limit off.
    #[arg(long, env = "WEBCHAT_SEND_RATE", default_value_t = 20)]
    pub send_rate: u32,

    /// Events a socket may have queued before it is closed with 4008 (slow consumer).
    #[arg(long, env = "WEBCHAT_SOCKET_QUEUE", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub socket_queue: u32,

    /// How often a live WebSocket is pinged (1s to 1h). A client silent for three beats is
    /// closed, and so is a reader whose queued events waited a whole beat unwritten.
    #[arg(long, env = "WEBCHAT_WS_HEARTBEAT", default_value = "20s", value_parser = parse_heartbeat)]
    pub ws_heartbeat: Duration,

    /// Message bus between nodes: `local` (one node) or `nats://HOST:PORT` (PostgreSQL only).
    #[arg(long, env = "WEBCHAT_BUS", default_value = "local", value_parser = parse_bus)]
    pub bus: BusTarget,

    /// Database connections per process.
    #[arg(long, env = "WEBCHAT_DB_POOL", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_pool: u32,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "WEBCHAT_WORKERS", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,
}

/// Where the nodes of one service tell each other what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusTarget {
    Local,
    Nats(String),
}

/// `local` or `nats://HOST:PORT`.
/// # Errors
/// A one-line description of what is wrong.
pub fn parse_bus(raw: &str) -> Result<BusTarget, String> {
    let raw = raw.trim();
    if raw == "local" {
        return Ok(BusTarget::Local);
    }
    match raw.strip_prefix("nats://") {
        Some(rest) if !rest.is_empty() && !rest.contains('/') => Ok(BusTarget::Nats(raw.to_owned())),
        _ => Err(format!("{raw:?} is not a bus: use local or nats://HOST:PORT")),
    }
}

/// `*`, or an origin: `scheme://host[:port]` with nothing after it.
/// # Errors
/// A one-line description of what is wrong.
pub fn parse_origin(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw == "*" {
        return Ok(raw.to_owned());
    }
    let rest = raw.strip_prefix("https://").or_else(|| raw.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', ' ']) => Ok(raw.to_owned()),
        _ => Err(format!("{raw:?} is not an origin like https://chat.example.com (or *)")),
    }
}

/// `30s`, `15m`, `2h`, `7d`, or plain seconds; at least one second.
/// # Errors
/// A one-line description of what is wrong.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let (digits, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let n: i64 = digits.parse().map_err(|_| format!("{raw:?} is not a duration like 30s, 15m, 2h or 7d"))?;
    let d = match unit {
        "" | "s" => Duration::try_seconds(n),
        "m" => Duration::try_minutes(n),
        "h" => Duration::try_hours(n),
        "d" => Duration::try_days(n),
        _ => None,
    }
    .filter(|d| *d >= Duration::seconds(1) && *d <= Duration::days(3650))
    .ok_or_else(|| format!("{raw:?} is not a duration between 1s and 3650d like 30s, 15m, 2h or 7d"))?;
    Ok(d)
}

fn parse_heartbeat(raw: &str) -> Result<Duration, String> {
    let beat = parse_duration(raw)?;
    if beat > Duration::hours(1) {
        return Err(format!("{raw:?} is longer than the longest heartbeat, 1h"));
    }
    Ok(beat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_usual_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::seconds(30)));
        assert_eq!(parse_duration("15m"), Ok(Duration::minutes(15)));
        assert_eq!(parse_duration("2h"), Ok(Duration::hours(2)));
        assert_eq!(parse_duration("7d"), Ok(Duration::days(7)));
        assert_eq!(parse_duration("90"), Ok(Duration::seconds(90)));
    }

    #[test]
    fn bad_durations_are_refused() {
        for bad in ["", "m", "0s", "5w", "-1m", "99999999999999999999d", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn the_defaults_serve_sqlite_on_port_8080() {
        let c = Config::try_parse_from(["webchat"]).expect("defaults parse");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, DatabaseTarget::Sqlite("webchat.db".into()));
        assert_eq!(c.bcrypt_cost, 12);
        assert_eq!(c.auth_rate, 30);
        assert_eq!(c.send_rate, 20);
        assert_eq!(c.ws_heartbeat, Duration::seconds(20));
    }

    #[test]
    fn a_bad_setting_is_an_error_not_a_panic() {
        assert!(Config::try_parse_from(["webchat", "--bcrypt-cost", "3"]).is_err());
        assert!(Config::try_parse_from(["webchat", "--listen", "nowhere"]).is_err());
        assert!(Config::try_parse_from(["webchat", "--database-url", "mysql://x"]).is_err());
        assert!(Config::try_parse_from(["webchat", "--access-ttl", "soon"]).is_err());
        assert!(Config::try_parse_from(["webchat", "--cors-origins", "example.com"]).is_err());
        assert!(Config::try_parse_from(["webchat", "--auth-rate", "-1"]).is_err());
        assert!(Config::try_parse_from(["webchat", "--ws-heartbeat", "0s"]).is_err());
        assert!(Config::try_parse_from(["webchat", "--ws-heartbeat", "2h"]).is_err());
    }

    #[test]
    fn cors_origins_are_a_comma_separated_list() {
        let c =
            Config::try_parse_from(["webchat", "--cors-origins", "https://a.example,http://b.example:8080"])
                .expect("origins parse");
        assert_eq!(c.cors_origins, ["https://a.example", "http://b.example:8080"]);
        assert!(Config::try_parse_from(["webchat"]).expect("defaults").cors_origins.is_empty());
    }
}
