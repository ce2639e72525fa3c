//! The OpenAPI 3.1 document (`GET /api/openapi.json`), generated from the handlers'
//! `#[utoipa::path]` attributes and the DTOs, and Swagger UI (`GET /api/docs/`), served from
//! the binary (utoipa-swagger-ui's vendored copy: nothing is downloaded).

use crate::error::ApiError;
use crate::routes;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use std::sync::{Arc, LazyLock};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// `POST /api/users/register/`
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// A valid address, at most 254 characters; unique ignoring case.
    #[schema(max_length = 254, example = "alex@gmail.com")]
    pub email: String,
    /// 3–32 letters, digits, `_`, `.`, `-`; unique ignoring case.
    #[schema(min_length = 3, max_length = 32, pattern = r"^[A-Za-z0-9_.\-]+$", example = "alex")]
    pub username: String,
    /// 8–72 bytes.
    #[schema(min_length = 8, max_length = 72, example = "correct-horse")]
    pub password: String,
}

/// `POST /api/users/login/`
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    #[schema(example = "alex@gmail.com")]
    pub email: String,
    #[schema(example = "correct-horse")]
    pub password: String,
}

/// `POST /api/login/refresh/`
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// A refresh token from a login or an earlier refresh.
    pub refresh: String,
}

/// `POST /api/users/logout/` (the body is optional).
#[derive(Debug, Deserialize, ToSchema)]
pub struct LogoutRequest {
    /// A refresh token of the caller's: its session ends too.
    pub refresh: Option<String>,
}

/// `POST /api/users/me/password/`
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    pub old_password: String,
    /// 8–72 bytes.
    #[schema(min_length = 8, max_length = 72)]
    pub new_password: String,
}

/// `PUT` of a user: both fields.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UserUpdate {
    #[schema(max_length = 254)]
    pub email: String,
    #[schema(min_length = 3, max_length = 32, pattern = r"^[A-Za-z0-9_.\-]+$")]
    pub username: String,
}

/// `PATCH` of a user: either field.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UserPatchRequest {
    #[schema(max_length = 254)]
    pub email: Option<String>,
    #[schema(min_length = 3, max_length = 32, pattern = r"^[A-Za-z0-9_.\-]+$")]
    pub username: Option<String>,
}

/// `POST /api/rooms/{room_name}/messages/`
#[derive(Debug, Deserialize, ToSchema)]
pub struct PostMessageRequest {
    /// 1–4000 characters, not only whitespace.
    #[schema(min_length = 1, max_length = 4000, example = "Hello, world")]
    pub content: String,
    /// Idempotency key: 1–64 visible ASCII characters, scoped to the sender and the room.
    #[schema(min_length = 1, max_length = 64, example = "c-1")]
    pub client_msg_id: Option<String>,
}

/// `POST /api/rooms/{room_name}/read/`
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReadRequest {
    /// Only moves the marker forward; capped at the room's `last_seq`.
    #[schema(minimum = 0)]
    pub seq: i64,
}

/// Declares the bearer scheme the secured operations name.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".into());
        scheme.description = Some("The `access` token of a login or refresh.".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "WebChat",
        description = "A real-time chat service: accounts with JWT sessions, rooms, messages with a gap-free \
                       per-room `seq`, and WebSockets (`/ws/`, `/ws/chat/{room_name}/`; the frames are in \
                       docs/websocket.md). Every route answers with and without a trailing slash.",
        license(name = "MIT")
    ),
    modifiers(&BearerAuth),
    paths(
        routes::web_client,
        routes::health::livez,
        routes::health::readyz,
        crate::metrics::render,
        openapi_json,
        swagger_ui_index,
        swagger_ui_file,
        routes::users::register::register,
        routes::users::login::login,
        routes::users::refresh::refresh,
        routes::users::refresh::refresh_alias,
        routes::users::logout::logout,
        routes::users::me::me,
        routes::users::change_password::change_password,
        routes::users::list::list,
        routes::users::update::update_me_put,
        routes::users::update::update_me_patch,
        routes::users::get::get,
        routes::users::update::update_put,
        routes::users::update::update_patch,
        routes::users::delete::delete,
        routes::rooms::list::list,
        routes::rooms::join::join,
        routes::rooms::get::get,
        routes::rooms::leave::leave,
        routes::rooms::history::history,
        routes::rooms::post_message::post_message,
        routes::rooms::read::read,
        crate::ws::routes::all,
        crate::ws::routes::chat,
    ),
    tags(
        (name = "accounts", description = "Registration, sessions and accounts."),
        (name = "rooms", description = "Rooms, history, sending and read markers."),
        (name = "realtime", description = "WebSocket upgrades."),
        (name = "operations", description = "Health, metrics, documentation and the web client."),
    )
)]
pub struct ApiDoc;

/// The document, built once.
static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| ApiDoc::openapi().to_pretty_json().unwrap_or_else(|_| "{}".to_owned()));

/// The document as a value (for tests and tools).
#[must_use]
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `GET /api/openapi.json`
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    summary = "This document",
    responses((status = 200, description = "The OpenAPI 3.1 document.", content_type = "application/json", body = Object)),
)]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(DOCUMENT.as_str())
}

static SWAGGER: LazyLock<Arc<utoipa_swagger_ui::Config<'static>>> =
    LazyLock::new(|| Arc::new(utoipa_swagger_ui::Config::new(["/api/openapi.json"])));

fn swagger_file(file: &str) -> Result<HttpResponse, ApiError> {
    let found =
        utoipa_swagger_ui::serve(file, SWAGGER.clone()).map_err(|e| ApiError::Internal(e.to_string()))?;
    let file = found.ok_or(ApiError::NotFound)?;
    let mut bytes = file.bytes.to_vec();
    if file.content_type.starts_with("text/html") {
        // Routes answer with and without the trailing slash, so the page may be at
        // `/api/docs`: its relative asset links must still resolve under `/api/docs/`.
        let html = String::from_utf8_lossy(&bytes).replacen("<head>", "<head><base href=\"/api/docs/\">", 1);
        bytes = html.into_bytes();
    }
    Ok(HttpResponse::Ok().content_type(file.content_type).body(bytes))
}

/// `GET /api/docs/`
#[utoipa::path(
    get,
    path = "/api/docs/",
    operation_id = "swagger_ui",
    tag = "operations",
    summary = "Swagger UI for this document",
    responses((status = 200, description = "The Swagger UI page.", content_type = "text/html", body = String)),
)]
pub async fn swagger_ui_index() -> Result<HttpResponse, ApiError> {
    swagger_file("index.html")
}

/// `GET /api/docs/{file}`
#[utoipa::path(
    get,
    path = "/api/docs/{file}",
    operation_id = "swagger_ui_file",
    tag = "operations",
    summary = "A file of Swagger UI",
    params(("file" = String, Path, description = "e.g. `swagger-ui.css`")),
    responses(
        (status = 200, description = "The file.", body = String),
        (status = 404, description = "No such file (`not_found`).", body = crate::error::ErrorBody),
    ),
)]
pub async fn swagger_ui_file(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    swagger_file(&path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// `/api/rooms/{room_name}/` and `/api/rooms/{room_name}` are one route.
    fn normalize(path: &str) -> String {
        let trimmed = path.trim_end_matches('/');
        if trimmed.is_empty() { "/".to_owned() } else { trimmed.to_owned() }
    }

    fn served() -> BTreeSet<(String, String)> {
        routes::ROUTES
            .iter()
            .flat_map(|(path, methods)| methods.iter().map(|m| (normalize(path), (*m).to_owned())))
            .collect()
    }

    fn documented() -> BTreeSet<(String, String)> {
        let doc = serde_json::to_value(document()).expect("document serializes");
        let paths = doc["paths"].as_object().expect("paths");
        paths
            .iter()
            .flat_map(|(path, item)| {
                let methods = item.as_object().expect("path item").keys().cloned().collect::<Vec<_>>();
                methods.into_iter().map(|m| (normalize(path), m))
            })
            .collect()
    }

    #[test]
    fn every_served_route_is_documented() {
        let missing: Vec<_> = served().difference(&documented()).cloned().collect();
        assert!(missing.is_empty(), "served but not in the OpenAPI document: {missing:?}");
    }

    #[test]
    fn every_documented_route_is_served() {
        let extra: Vec<_> = documented().difference(&served()).cloned().collect();
        assert!(extra.is_empty(), "in the OpenAPI document but not served: {extra:?}");
    }

    #[test]
    fn the_document_is_openapi_3_1_with_unique_operation_ids() {
        let doc = serde_json::to_value(document()).expect("document serializes");
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", doc["openapi"]);
        let mut ids = BTreeSet::new();
        for item in doc["paths"].as_object().expect("paths").values() {
            for op in item.as_object().expect("item").values() {
                let id = op["operationId"].as_str().expect("every operation has an id").to_owned();
                assert!(ids.insert(id.clone()), "operationId {id} used twice");
            }
        }
    }

    #[test]
    fn every_secured_operation_names_the_bearer_scheme() {
        let doc = serde_json::to_value(document()).expect("document serializes");
        assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
        let me = &doc["paths"]["/api/users/me/"]["get"];
        assert_eq!(me["security"][0]["bearer"], serde_json::json!([]));
    }
}
