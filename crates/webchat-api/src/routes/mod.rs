//! The routes of SPEC §3, one file per endpoint. Paths are registered without a trailing
//! slash; the server's `NormalizePath` middleware makes `/x/` and `/x` the same.

pub mod health;
pub mod rooms;
pub mod users;

use crate::error::ApiError;
use actix_web::{HttpResponse, Resource, web};

/// Registers every route, the JSON 404 and the per-path 405s.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/livez").route(web::get().to(health::livez)))
        .service(resource("/readyz").route(web::get().to(health::readyz)))
        .service(resource("/api/users/register").route(web::post().to(users::register::register)))
        .service(resource("/api/users/login").route(web::post().to(users::login::login)))
        .service(resource("/api/login/refresh").route(web::post().to(users::refresh::refresh)))
        .service(resource("/api/users/login/refresh").route(web::post().to(users::refresh::refresh)))
        .service(resource("/api/users/logout").route(web::post().to(users::logout::logout)))
        .service(resource("/api/users/me").route(web::get().to(users::me::me)))
        .service(
            resource("/api/users/me/password").route(web::post().to(users::change_password::change_password)),
        )
        .service(resource("/api/users/list").route(web::get().to(users::list::list)))
        .service(
            resource("/api/users/user/update")
                .route(web::put().to(users::update::update_me_put))
                .route(web::patch().to(users::update::update_me_patch)),
        )
        .service(
            resource("/api/users/user/{id}")
                .route(web::get().to(users::get::get))
                .route(web::put().to(users::update::update_put))
                .route(web::patch().to(users::update::update_patch))
                .route(web::delete().to(users::delete::delete)),
        )
        .service(resource("/api/rooms").route(web::get().to(rooms::list::list)))
        .service(resource("/api/room/{room_name}").route(web::post().to(rooms::join::join)))
        .service(resource("/api/rooms/{room_name}").route(web::get().to(rooms::get::get)))
        .service(resource("/api/rooms/{room_name}/leave").route(web::post().to(rooms::leave::leave)))
        .service(
            resource("/api/rooms/{room_name}/messages")
                .route(web::get().to(rooms::history::history))
                .route(web::post().to(rooms::post_message::post_message)),
        )
        .service(resource("/api/rooms/{room_name}/read").route(web::post().to(rooms::read::read)))
        .service(resource("/ws").route(web::get().to(crate::ws::routes::all)))
        .service(resource("/ws/chat/{room_name}").route(web::get().to(crate::ws::routes::chat)))
        .default_service(web::to(not_found));
}

/// A resource whose other methods answer a JSON 405.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}
