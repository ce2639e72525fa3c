//! `GET /livez` and `GET /readyz`.

use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde_json::json;
use webchat_domain::ports::BusHealth;

/// The process is up.
#[utoipa::path(get, path = "/livez", operation_id = "livez", tag = "operations", summary = "The process is up",
    responses((status = 200, description = "Up.", body = Object, example = json!({"status": "ok"}))))]
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "operations", summary = "The node can serve",
    description = "200 when the database answers, else 503. `bus` says whether the node hears from the others (`local`, `connected`, `disconnected`); a node cut off from the bus keeps serving by reading the log.",
    responses(
        (status = 200, description = "Ready.", body = Object, example = json!({"status": "ok", "database": "ok", "bus": "local"})),
        (status = 503, description = "The database does not answer (`unavailable`).", body = crate::error::ErrorBody),
    ))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let readiness = state.readiness.clone();
    let ready = web::block(move || readiness.is_ready()).await.unwrap_or(false);
    // A node cut off from the broker keeps serving (it polls the log), so the bus is
    // reported but does not make the node unready.
    let bus = match state.hub.bus_health() {
        BusHealth::Local => "local",
        BusHealth::Connected => "connected",
        BusHealth::Disconnected => "disconnected",
    };
    if ready {
        HttpResponse::Ok().json(json!({"status": "ok", "database": "ok", "bus": bus}))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({
            "detail": "The database is unavailable.",
            "code": "unavailable",
            "database": "unreachable",
            "bus": bus,
        }))
    }
}
