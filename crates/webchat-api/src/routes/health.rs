//! `GET /livez` and `GET /readyz`.

use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde_json::json;
use webchat_domain::ports::BusHealth;

/// The process is up.
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The database answers.
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
