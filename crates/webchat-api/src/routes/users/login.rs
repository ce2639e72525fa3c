//! `POST /api/users/login/`

use crate::dto::UserDto;
use crate::error::ApiError;
use crate::extract::{Fields, JsonObject, blocking, present};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde_json::json;
use webchat_domain::model::InvalidValue;

/// Any non-empty string: a malformed email simply matches no account, so the answer is the
/// same `invalid_credentials` as for a wrong password.
fn non_empty(raw: &str) -> Result<String, InvalidValue> {
    if raw.is_empty() { Err(InvalidValue("This field may not be blank.".into())) } else { Ok(raw.to_owned()) }
}

pub async fn login(state: web::Data<AppState>, body: JsonObject) -> Result<HttpResponse, ApiError> {
    let mut f = Fields::new(body.0);
    let email = f.required("email", non_empty);
    let password = f.required("password", non_empty);
    f.finish()?;
    let (email, password) = (present(email)?, present(password)?);
    let accounts = state.accounts.clone();
    let pair = blocking(move || accounts.login(&email, &password)).await?;
    Ok(HttpResponse::Ok().json(json!({
        "access": pair.access,
        "refresh": pair.refresh,
        "user": pair.user.as_ref().map(UserDto::from),
    })))
}
