//! `POST /api/users/logout/`

use crate::error::ApiError;
use crate::extract::{Authenticated, Fields, OptionalJsonObject, blocking};
use crate::state::AppState;
use actix_web::{HttpResponse, web};

pub async fn logout(
    state: web::Data<AppState>,
    Authenticated(ctx): Authenticated,
    body: OptionalJsonObject,
) -> Result<HttpResponse, ApiError> {
    let mut f = Fields::new(body.0);
    let refresh = f.optional("refresh", |s| Ok(s.to_owned()));
    f.finish()?;
    let accounts = state.accounts.clone();
    blocking(move || accounts.logout(ctx, refresh.as_deref())).await?;
    Ok(HttpResponse::NoContent().finish())
}
