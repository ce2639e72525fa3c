//! `POST /api/users/register/`

use crate::dto::UserDto;
use crate::error::ApiError;
use crate::extract::{Fields, JsonObject, blocking, present};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde_json::json;
use webchat_domain::model::{Email, Password, Username};
use webchat_domain::services::NewAccount;

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
    Ok(HttpResponse::Created().json(json!({
        "Message": "User created successfully!",
        "user": UserDto::from(&user),
    })))
}
