//! `PUT`/`PATCH /api/users/user/update` (the caller) and `/api/users/user/{id}` (self only).

use super::user_id;
use crate::dto::UserDto;
use crate::error::ApiError;
use crate::extract::{Authenticated, Fields, JsonObject, blocking};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use webchat_domain::model::{AuthContext, Email, UserId, UserPatch, Username};

/// `PUT` replaces both fields; `PATCH` changes those given.
async fn update(
    state: web::Data<AppState>,
    ctx: AuthContext,
    target: UserId,
    body: JsonObject,
    full: bool,
) -> Result<HttpResponse, ApiError> {
    let mut f = Fields::new(body.0);
    let patch = if full {
        UserPatch {
            email: f.required("email", Email::parse),
            username: f.required("username", Username::parse),
        }
    } else {
        UserPatch {
            email: f.optional("email", Email::parse),
            username: f.optional("username", Username::parse),
        }
    };
    f.finish()?;
    let accounts = state.accounts.clone();
    let user = blocking(move || accounts.update_user(ctx, target, &patch)).await?;
    Ok(HttpResponse::Ok().json(UserDto::from(&user)))
}

pub async fn update_me_put(
    state: web::Data<AppState>,
    Authenticated(ctx): Authenticated,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    update(state, ctx, ctx.user_id, body, true).await
}

pub async fn update_me_patch(
    state: web::Data<AppState>,
    Authenticated(ctx): Authenticated,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    update(state, ctx, ctx.user_id, body, false).await
}

pub async fn update_put(
    state: web::Data<AppState>,
    Authenticated(ctx): Authenticated,
    path: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    update(state, ctx, user_id(&path)?, body, true).await
}

pub async fn update_patch(
    state: web::Data<AppState>,
    Authenticated(ctx): Authenticated,
    path: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    update(state, ctx, user_id(&path)?, body, false).await
}
