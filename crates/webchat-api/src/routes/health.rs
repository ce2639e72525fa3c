//! `GET /livez` and `GET /readyz`.

use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde_json::json;

/// The process is up.
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The database answers.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let readiness = state.readiness.clone();
    let ready = web::block(move || readiness.is_ready()).await.unwrap_or(false);
    if ready {
        HttpResponse::Ok().json(json!({"status": "ok", "database": "ok"}))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({
            "detail": "The database is unavailable.",
            "code": "unavailable",
            "database": "unreachable",
        }))
    }
}
