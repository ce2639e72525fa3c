//! `POST /api/login/refresh/` and `POST /api/users/login/refresh/`

use crate::error::ApiError;
use crate::extract::{Fields, JsonObject, blocking, present};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde_json::json;

pub async fn refresh(state: web::Data<AppState>, body: JsonObject) -> Result<HttpResponse, ApiError> {
    let mut f = Fields::new(body.0);
    let token = f.required("refresh", |s| Ok(s.to_owned()));
    f.finish()?;
    let token = present(token)?;
    let accounts = state.accounts.clone();
    let pair = blocking(move || accounts.refresh(&token)).await?;
    Ok(HttpResponse::Ok().json(json!({"access": pair.access, "refresh": pair.refresh})))
}
