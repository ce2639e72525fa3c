//! `POST /api/users/me/password/`

use crate::error::ApiError;
use crate::extract::{Authenticated, Fields, JsonObject, blocking, present};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use webchat_domain::model::Password;

pub async fn change_password(
    state: web::Data<AppState>,
    Authenticated(ctx): Authenticated,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    let mut f = Fields::new(body.0);
    let old = f.required("old_password", |s| Ok(s.to_owned()));
    let new = f.required("new_password", Password::parse);
    f.finish()?;
    let (old, new) = (present(old)?, present(new)?);
    let accounts = state.accounts.clone();
    blocking(move || accounts.change_password(ctx, &old, &new)).await?;
    Ok(HttpResponse::NoContent().finish())
}
