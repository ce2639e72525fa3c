//! `GET /ws/chat/{room_name}/` and `GET /ws/`: authenticate, then upgrade.

use super::outbox::Outbox;
use super::session::{self, Scope, Socket};
use crate::error::ApiError;
use crate::extract::{bearer_token, blocking, read};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use std::collections::HashMap;
use webchat_domain::model::{AuthContext, RoomName, Seq, Username};

/// Query parameters of an upgrade. Parsed here, never logged: they carry the token.
fn query(req: &HttpRequest) -> HashMap<String, String> {
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

/// `?token=` or `Authorization: Bearer`; a bad or missing token refuses the upgrade (401).
async fn authenticate(
    state: &AppState,
    req: &HttpRequest,
    query: &HashMap<String, String>,
) -> Result<(AuthContext, Username), ApiError> {
    let token = match query.get("token").filter(|t| !t.is_empty()) {
        Some(t) => t.clone(),
        None => bearer_token(req)?,
    };
    let accounts = state.accounts.clone();
    read(state, move || {
        let ctx = accounts.authenticate(&token)?;
        let user = accounts.me(ctx)?;
        Ok((ctx, user.username))
    })
    .await
}

/// `/ws/chat/{room_name}/`: one room, joined (and created) on connect.
#[utoipa::path(get, path = "/ws/chat/{room_name}/", operation_id = "ws_room", tag = "realtime",
    summary = "WebSocket for one room (joins it, creating it if needed)",
    description = "Upgrades to a WebSocket; the frames are in docs/websocket.md.",
    params(
        ("room_name" = String, Path, description = "Room name (1–64 letters, digits, `_ . -`)."),
        ("token" = Option<String>, Query, description = "The access token (or `Authorization: Bearer`)."),
        ("after_seq" = Option<i64>, Query, minimum = 0, description = "Resume: replay messages with a greater seq first."),
    ),
    responses(
        (status = 101, description = "Switching protocols: the socket is open."),
        (status = 400, description = "Not an upgrade, a bad room name or `after_seq` (`validation_failed`).", body = crate::error::ErrorBody),
        (status = 401, description = "No, bad, expired or revoked token.", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable (`unavailable`).", body = crate::error::ErrorBody),
    ),
    security((), ("bearer" = [])))]
pub async fn chat(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let query = query(&req);
    let (auth, username) = authenticate(&state, &req, &query).await?;
    let name = RoomName::parse(&path).map_err(|e| ApiError::field("room_name", e.0))?;
    let after =
        match query.get("after_seq") {
            None => None,
            Some(raw) => Some(raw.parse::<i64>().ok().filter(|s| *s >= 0).map(Seq).ok_or_else(|| {
                ApiError::field("after_seq", "Ensure this value is an integer of at least 0.")
            })?),
        };
    // A request that is no WebSocket upgrade is refused before it joins anything.
    let (response, session, stream) =
        actix_ws::handle(&req, body).map_err(|e| ApiError::field("upgrade", e.to_string()))?;
    let rooms = state.rooms.clone();
    let room = blocking(move || rooms.enter(auth, &name)).await?;
    let hub = state.hub.clone();
    let (conn, queue) = hub.connect(auth.user_id, username, auth.session_id, false);
    let start = hub.subscribe(&conn, &room, false).unwrap_or(room.last_seq);
    still_live(&state, auth, &conn).await;
    let writer = Outbox::new(conn.clone(), queue);
    let socket =
        Socket { hub, rooms: state.rooms.clone(), conn, auth, scope: Scope::Room { room, after, start } };
    Ok(spawn(socket, response, session, stream, writer))
}

/// `/ws/`: every room the user has joined, on one connection.
#[utoipa::path(get, path = "/ws/", operation_id = "ws_all", tag = "realtime",
    summary = "WebSocket for every joined room",
    description = "Upgrades to a WebSocket; the first frame may be `resume`. The frames are in docs/websocket.md.",
    params(("token" = Option<String>, Query, description = "The access token (or `Authorization: Bearer`).")),
    responses(
        (status = 101, description = "Switching protocols: the socket is open."),
        (status = 400, description = "Not a WebSocket upgrade (`validation_failed`).", body = crate::error::ErrorBody),
        (status = 401, description = "No, bad, expired or revoked token.", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable (`unavailable`).", body = crate::error::ErrorBody),
    ),
    security((), ("bearer" = [])))]
pub async fn all(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let query = query(&req);
    let (auth, username) = authenticate(&state, &req, &query).await?;
    let (response, session, stream) =
        actix_ws::handle(&req, body).map_err(|e| ApiError::field("upgrade", e.to_string()))?;
    // Registered before the rooms are read: a join meanwhile is followed by the hub (which
    // announces it itself), so no room falls between the two.
    let hub = state.hub.clone();
    let (conn, queue) = hub.connect(auth.user_id, username, auth.session_id, true);
    let rooms = state.rooms.clone();
    let joined = match read(&state, move || rooms.joined_rooms(auth.user_id)).await {
        Ok(joined) => joined,
        Err(e) => {
            hub.disconnect(&conn);
            return Err(e);
        }
    };
    let rooms = joined.into_iter().filter_map(|room| {
        let start = hub.subscribe(&conn, &room, false)?;
        Some((room, start))
    });
    let scope = Scope::All { rooms: rooms.collect() };
    still_live(&state, auth, &conn).await;
    let writer = Outbox::new(conn.clone(), queue);
    let socket = Socket { hub, rooms: state.rooms.clone(), conn, auth, scope };
    Ok(spawn(socket, response, session, stream, writer))
}

/// A logout between authenticating and registering the socket found no socket to close:
/// look again now that the hub knows it. A revocation heard of since the lookup (here or
/// from another node) makes the session forgotten, so a session still remembered live
/// needs no second read; any other is read from the store.
async fn still_live(state: &AppState, auth: AuthContext, conn: &super::hub::Conn) {
    let session = auth.session_id;
    if state.accounts.session_remembered_live(session) {
        return;
    }
    let accounts = state.accounts.clone();
    let live = read(state, move || accounts.session_is_live(session)).await.unwrap_or(true);
    if !live {
        conn.closer.close(super::hub::close::REVOKED);
    }
}

/// Starts the session task and answers the upgrade with the socket's [`Outbox`] as its body.
/// actix-ws's reading side is kept; its writing side (the `Session` and its body) is not
/// used, so that the hub's frames reach the connection's write buffer without passing
/// through the session task and actix-ws's channel.
fn spawn(
    socket: Socket,
    response: HttpResponse,
    session: actix_ws::Session,
    stream: actix_ws::MessageStream,
    (out, outbox): (super::outbox::Mailbox, Outbox),
) -> HttpResponse {
    drop(session);
    let stream = stream
        .max_frame_size(crate::MAX_BODY_BYTES)
        .aggregate_continuations()
        .max_continuation_size(crate::MAX_BODY_BYTES);
    actix_web::rt::spawn(session::run(socket, out, stream));
    response.map_body(|_, actix_body| outbox.replacing(actix_body)).map_into_boxed_body()
}
