//! `POST /api/users/register/`

use crate::dto::{RegisterResponse, UserDto};
use crate::error::ApiError;
use crate::extract::{Fields, JsonObject, blocking, present};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use webchat_domain::model::{Email, Password, Username};
use webchat_domain::services::NewAccount;

#[utoipa::path(
    post,
    path = "/api/users/register/",
    operation_id = "register",
    tag = "accounts",
    summary = "Create an account",
    request_body = crate::openapi::RegisterRequest,
    responses(
        (status = 201, description = "Created.", body = crate::dto::RegisterResponse),
        (status = 400, description = "Malformed JSON or invalid fields (`invalid_json`, `validation_failed`).", body = crate::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB (`payload_too_large`).", body = crate::error::ErrorBody),
        (status = 415, description = "Body not `application/json` (`unsupported_media_type`).", body = crate::error::ErrorBody),
        (status = 409, description = "Email or username taken, ignoring case (`email_taken`, `username_taken`).", body = crate::error::ErrorBody),
        (status = 429, description = "Too many attempts from this address (`rate_limited`); see `Retry-After`.", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable (`unavailable`).", body = crate::error::ErrorBody),
    ),
)]
pub async fn register(state: web::Data<AppState>, body: JsonObject) -> Result<HttpResponse, ApiError> {
    let mut f = Fields::new(body.0);
    let email = f.required("email", Email::parse);
    let username = f.required("username", Username::parse);
    let password = f.required("password", Password::parse);
    f.finish()?;
    let account =
        NewAccount { email: present(email)?, username: present(username)?, password: present(password)? };
    let accounts = state.accounts.clone();
    let user = blocking(move || accounts.register(account)).await?;
    Ok(HttpResponse::Created()
        .json(RegisterResponse { message: "User created successfully!", user: UserDto::from(&user) }))
}
