//! The routes of SPEC §3, one file per endpoint. Paths are registered without a trailing
//! slash; the server's `NormalizePath` middleware makes `/x/` and `/x` the same.

pub mod health;
pub mod rooms;
pub mod users;

use crate::error::ApiError;
use crate::rate_limit::limit_auth;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, Resource, ResponseError, web};

/// Declares the route table once: `configure` registers it and `ROUTES` lists it, so the
/// OpenAPI document can be checked against what is really served.
macro_rules! routes {
    ($( $path:literal $( [$wrap:expr] )? => { $( $method:ident : $handler:path ),+ $(,)? } ),* $(,)?) => {
        /// Registers every route, the JSON 404 and the per-path 405s.
        pub fn configure(cfg: &mut web::ServiceConfig) {
            $( cfg.service(
                resource($path, &[ $( stringify!($method) ),+ ])
                    $( .route(method::$method().to($handler)) )+
                    $( .wrap($wrap) )?
            ); )*
            cfg.default_service(web::to(not_found));
        }

        /// Every served path (as registered: without a trailing slash) with its methods.
        pub const ROUTES: &[(&str, &[&str])] = &[ $( ($path, &[ $( stringify!($method) ),+ ]) ),* ];
    };
}

routes! {
    "/" => { get: web_client },
    "/livez" => { get: health::livez },
    "/readyz" => { get: health::readyz },
    "/metrics" => { get: crate::metrics::render },
    "/api/openapi.json" => { get: crate::openapi::openapi_json },
    "/api/docs" => { get: crate::openapi::swagger_ui_index },
    "/api/docs/{file}" => { get: crate::openapi::swagger_ui_file },
    "/api/users/register" [from_fn(limit_auth)] => { post: users::register::register },
    "/api/users/login" [from_fn(limit_auth)] => { post: users::login::login },
    "/api/login/refresh" [from_fn(limit_auth)] => { post: users::refresh::refresh },
    "/api/users/login/refresh" [from_fn(limit_auth)] => { post: users::refresh::refresh_alias },
    "/api/users/logout" => { post: users::logout::logout },
    "/api/users/me" => { get: users::me::me },
    "/api/users/me/password" => { post: users::change_password::change_password },
    "/api/users/list" => { get: users::list::list },
    "/api/users/user/update" => { put: users::update::update_me_put, patch: users::update::update_me_patch },
    "/api/users/user/{id}" => {
        get: users::get::get,
        put: users::update::update_put,
        patch: users::update::update_patch,
        delete: users::delete::delete,
    },
    "/api/rooms" => { get: rooms::list::list },
    "/api/room/{room_name}" => { post: rooms::join::join },
    "/api/rooms/{room_name}" => { get: rooms::get::get },
    "/api/rooms/{room_name}/leave" => { post: rooms::leave::leave },
    "/api/rooms/{room_name}/messages" => {
        get: rooms::history::history,
        post: rooms::post_message::post_message,
    },
    "/api/rooms/{room_name}/read" => { post: rooms::read::read },
    "/ws" => { get: crate::ws::routes::all },
    "/ws/chat/{room_name}" => { get: crate::ws::routes::chat },
}

/// The built-in web client: one page, embedded in the binary.
const WEB_CLIENT: &str = include_str!("../../web/index.html");

/// `GET /`: the built-in web client.
#[utoipa::path(get, path = "/", operation_id = "web_client", tag = "operations", summary = "The built-in web client",
    responses((status = 200, description = "The web client page.", content_type = "text/html", body = String)))]
pub async fn web_client() -> HttpResponse {
    // no-cache: a browser revalidates, so an upgraded server serves its new client at once.
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-cache"))
        .body(WEB_CLIENT)
}

/// A resource whose other methods answer a JSON 405 naming the allowed ones (`Allow`).
fn resource(path: &str, methods: &[&str]) -> Resource {
    let mut allowed: Vec<String> = methods.iter().map(|m| m.to_ascii_uppercase()).collect();
    if methods.contains(&"get") {
        allowed.push("HEAD".into());
    }
    let allow = HeaderValue::from_str(&allowed.join(", ")).unwrap_or(HeaderValue::from_static("GET"));
    web::resource(path).default_service(web::to(move || {
        let allow = allow.clone();
        async move {
            let mut res = ApiError::MethodNotAllowed.error_response();
            res.headers_mut().insert(header::ALLOW, allow);
            res
        }
    }))
}

/// The routes' method guards. `get` also takes `HEAD` (the same handler; actix sends no
/// body for it).
mod method {
    use actix_web::{Route, guard, web};

    pub fn get() -> Route {
        web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
    }

    pub use web::{delete, patch, post, put};
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}
