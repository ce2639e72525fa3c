//! Extractors that turn requests into parsed values or SPEC §2 errors.

use crate::MAX_BODY_BYTES;
use crate::error::{ApiError, FieldErrors};
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use serde_json::{Map, Value};
use std::collections::HashMap;
use webchat_domain::DomainError;
use webchat_domain::model::{
    AuthContext, ClientMsgId, InvalidValue, Message, MessageContent, RoomId, RoomListQuery, RoomView,
};
use webchat_domain::services::RoomService;

/// Posts a message through the store's group commit and awaits the outcome without holding
/// a thread (HTTP and WebSocket sends alike).
/// # Errors
/// The use case's error, or `Internal` when the store dropped the append.
pub async fn post_and_wait(
    rooms: &RoomService,
    viewer: AuthContext,
    room: RoomId,
    content: MessageContent,
    client_msg_id: Option<ClientMsgId>,
) -> Result<(Message, bool), DomainError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let submitted = std::time::Instant::now();
    rooms.post_to_then(viewer, room, content, client_msg_id, move |outcome| {
        crate::metrics::appended(submitted.elapsed());
        let _ = tx.send(outcome);
    });
    rx.await.unwrap_or_else(|_| Err(DomainError::Internal("the append was dropped".into())))
}

/// Lists rooms without holding a thread while the store reads: an in-process store answers
/// on this worker (like [`read`]), a networked one on its reader thread, which answers the
/// listings queued meanwhile in one round trip (see `RoomRepository::list_then`).
/// # Errors
/// The use case's error, or `Internal` when the listing panicked or was dropped.
pub async fn listing(
    rooms: &RoomService,
    viewer: AuthContext,
    query: RoomListQuery,
) -> Result<Vec<RoomView>, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    // An in-process store runs the listing here: a panic must not take down the worker.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rooms.list_then(viewer, query, move |views| {
            let _ = tx.send(views);
        });
    }))
    .map_err(|_| ApiError::Internal("a listing of rooms panicked".into()))?;
    rx.await.map_err(|_| ApiError::Internal("the listing was dropped".into()))?.map_err(ApiError::from)
}

/// Runs blocking work (diesel, bcrypt) off the async workers.
/// # Errors
/// The use case's error, or `Internal` when the blocking pool is gone.
pub async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, DomainError> + Send + 'static,
    T: Send + 'static,
{
    web::block(f)
        .await
        .map_err(|e| ApiError::Internal(format!("blocking pool: {e}")))?
        .map_err(ApiError::from)
}

/// Runs a read of the store: on this worker when the store is in-process
/// ([`AppState::inline_reads`]), else like [`blocking`].
///
/// An embedded SQLite read is a few tens of microseconds of CPU that never waits on a
/// network; handing it to the blocking pool cost more than the read itself (two thread
/// switches per request, a quarter of the server's CPU in W6, docs/benchmarks.md). Only
/// reads come here: a write may wait for the store's write lock.
/// # Errors
/// The use case's error, or `Internal` when the read panicked or the blocking pool is gone.
pub async fn read<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, DomainError> + Send + 'static,
    T: Send + 'static,
{
    read_where(state.inline_reads, f).await
}

async fn read_where<T, F>(inline: bool, f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, DomainError> + Send + 'static,
    T: Send + 'static,
{
    if !inline {
        return blocking(f).await;
    }
    // A panic must not take down the worker and every socket on it.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map_err(|_| ApiError::Internal("a read of the store panicked".into()))?
        .map_err(ApiError::from)
}

/// The caller, proven by `Authorization: Bearer <access token>`.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated(pub AuthContext);

/// The bearer token of a request, if it has one.
/// # Errors
/// `NotAuthenticated` without an `Authorization` header; `TokenInvalid` for another scheme.
pub fn bearer_token(req: &HttpRequest) -> Result<String, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(ApiError::NotAuthenticated);
    };
    let value = value.to_str().map_err(|_| ApiError::Domain(DomainError::TokenInvalid))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(token.trim().to_owned())
        }
        _ => Err(ApiError::Domain(DomainError::TokenInvalid)),
    }
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer_token(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let token = token?;
            let state = state.ok_or_else(|| ApiError::Internal("no app state".into()))?;
            // Most requests are decided here, without a hop to the blocking pool: a bad
            // token, or a session found live moments ago.
            if let Some(outcome) = state.accounts.authenticate_from_memory(&token) {
                return Ok(Self(outcome?));
            }
            let accounts = state.accounts.clone();
            let ctx = read(&state, move || accounts.authenticate(&token)).await?;
            Ok(Self(ctx))
        })
    }
}

/// A JSON object body: `application/json`, at most 64 KiB, well-formed, an object.
#[derive(Debug, Default)]
pub struct JsonObject(pub Map<String, Value>);

/// Like [`JsonObject`], but an empty body (with any or no content type) is an empty object:
/// for routes whose body is optional.
#[derive(Debug, Default)]
pub struct OptionalJsonObject(pub Map<String, Value>);

async fn read_body(req: &HttpRequest, payload: &mut Payload) -> Result<Vec<u8>, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(ApiError::PayloadTooLarge);
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidJson(format!("Could not read the body: {e}")))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn is_json(req: &HttpRequest) -> bool {
    req.mime_type().ok().flatten().is_some_and(|m| {
        m.type_() == "application" && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"))
    })
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::InvalidJson("Expected a JSON object.".into())),
        Err(e) => Err(ApiError::InvalidJson(format!("JSON parse error - {e}"))),
    }
}

impl FromRequest for JsonObject {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            if !is_json(&req) {
                return Err(ApiError::UnsupportedMediaType);
            }
            let body = read_body(&req, &mut payload).await?;
            parse_object(&body).map(Self)
        })
    }
}

impl FromRequest for OptionalJsonObject {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let body = read_body(&req, &mut payload).await?;
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(Self::default());
            }
            if !is_json(&req) {
                return Err(ApiError::UnsupportedMediaType);
            }
            parse_object(&body).map(Self)
        })
    }
}

/// Reads fields out of a JSON object, collecting every problem so that one response names
/// all of them.
#[derive(Debug)]
pub struct Fields {
    object: Map<String, Value>,
    errors: FieldErrors,
}

impl Fields {
    #[must_use]
    pub fn new(object: Map<String, Value>) -> Self {
        Self { object, errors: FieldErrors::new() }
    }

    fn fail(&mut self, name: &str, message: impl Into<String>) {
        self.errors.entry(name.to_owned()).or_default().push(message.into());
    }

    /// The raw string under `name`; `None` when it is absent or null. A NUL character is
    /// refused here, once for every field: PostgreSQL cannot store or compare it.
    fn string(&mut self, name: &str) -> Option<String> {
        match self.object.remove(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.contains('\0') => {
                self.fail(name, "Null characters are not allowed.");
                None
            }
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                self.fail(name, "Not a valid string.");
                None
            }
        }
    }

    /// A required field, parsed.
    pub fn required<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, InvalidValue>,
    ) -> Option<T> {
        let present = self.object.get(name).is_some_and(|v| !v.is_null());
        if !present {
            self.fail(name, "This field is required.");
            return None;
        }
        let raw = self.string(name)?;
        self.parse(name, &raw, parse)
    }

    /// An optional field, parsed; absent and null are `None`.
    pub fn optional<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, InvalidValue>,
    ) -> Option<T> {
        let raw = self.string(name)?;
        self.parse(name, &raw, parse)
    }

    /// A required non-negative integer.
    pub fn required_int(&mut self, name: &str) -> Option<i64> {
        match self.object.remove(name) {
            None | Some(Value::Null) => {
                self.fail(name, "This field is required.");
                None
            }
            Some(Value::Number(n)) => match n.as_i64() {
                Some(v) if v >= 0 => Some(v),
                _ => {
                    self.fail(name, "Ensure this value is a whole number of at least 0.");
                    None
                }
            },
            Some(_) => {
                self.fail(name, "A valid integer is required.");
                None
            }
        }
    }

    fn parse<T>(
        &mut self,
        name: &str,
        raw: &str,
        parse: impl FnOnce(&str) -> Result<T, InvalidValue>,
    ) -> Option<T> {
        match parse(raw) {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(name, e.0);
                None
            }
        }
    }

    /// # Errors
    /// `Validation` naming every field that failed.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() { Ok(()) } else { Err(ApiError::Validation(self.errors)) }
    }
}

/// Turns the `None` of a field that [`Fields::finish`] accepted into an internal error
/// instead of a panic.
/// # Errors
/// Never in practice: only if a field was dropped without being reported.
pub fn present<T>(value: Option<T>) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::Internal("validated field missing".into()))
}

/// Query parameters, parsed leniently into strings; each route parses what it reads.
#[derive(Debug, Default)]
pub struct QueryParams(HashMap<String, String>);

impl QueryParams {
    /// An integer parameter within `min..=max`, or `default` when absent.
    /// # Errors
    /// `Validation` on the parameter when it is not an integer in range.
    pub fn int(&self, name: &str, min: i64, max: i64, default: i64) -> Result<i64, ApiError> {
        match self.0.get(name) {
            None => Ok(default),
            Some(raw) => match raw.trim().parse::<i64>() {
                Ok(v) if (min..=max).contains(&v) => Ok(v),
                _ => Err(ApiError::field(
                    name,
                    format!("Ensure this value is an integer between {min} and {max}."),
                )),
            },
        }
    }

    /// An optional integer parameter within `min..=max`.
    /// # Errors
    /// `Validation` on the parameter when it is not an integer in range.
    pub fn opt_int(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        if self.0.contains_key(name) { self.int(name, min, max, 0).map(Some) } else { Ok(None) }
    }

    /// A boolean parameter (`true`/`false`/`1`/`0`), or `default`.
    /// # Errors
    /// `Validation` on the parameter for any other value.
    pub fn bool(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.0.get(name).map(|s| s.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v == "true" || v == "1" => Ok(true),
            Some(v) if v == "false" || v == "0" => Ok(false),
            Some(_) => Err(ApiError::field(name, "Must be true or false.")),
        }
    }

    #[must_use]
    pub fn string(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl FromRequest for QueryParams {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = web::Query::<HashMap<String, String>>::from_query(req.query_string())
            .map(|q| Self(q.into_inner()))
            .map_err(|_| ApiError::field("query", "Malformed query string."));
        std::future::ready(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread::{self, ThreadId};

    fn here() -> Result<ThreadId, DomainError> {
        Ok(thread::current().id())
    }

    #[actix_web::test]
    async fn an_inline_read_runs_on_the_calling_thread() {
        let ran_on = read_where(true, here).await.expect("read");
        assert_eq!(ran_on, thread::current().id());
    }

    #[actix_web::test]
    async fn a_read_that_is_not_inline_runs_on_the_blocking_pool() {
        let ran_on = read_where(false, here).await.expect("read");
        assert_ne!(ran_on, thread::current().id());
    }

    #[actix_web::test]
    async fn an_inline_read_that_panics_is_an_internal_error_and_the_worker_goes_on() {
        let got: Result<(), ApiError> = read_where(true, || panic!("a bug in a read")).await;
        assert!(matches!(got, Err(ApiError::Internal(_))), "{got:?}");
        assert_eq!(read_where(true, here).await.expect("the next read"), thread::current().id());
    }

    #[actix_web::test]
    async fn an_inline_read_passes_on_the_use_case_error() {
        let got: Result<(), ApiError> = read_where(true, || Err(DomainError::NotFound("room"))).await;
        assert!(matches!(got, Err(ApiError::Domain(DomainError::NotFound("room")))), "{got:?}");
    }
}
