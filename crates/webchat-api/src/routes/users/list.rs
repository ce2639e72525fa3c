//! `GET /api/users/list`

use crate::dto::UserDto;
use crate::error::ApiError;
use crate::extract::{Authenticated, QueryParams, read};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use webchat_domain::model::{Page, UserListQuery};

#[utoipa::path(
    get,
    path = "/api/users/list",
    operation_id = "list_users",
    tag = "accounts",
    summary = "List users",
    params(("search" = Option<String>, Query, description = "Username prefix, ignoring case."), ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Default 100."), ("offset" = Option<u64>, Query, description = "Default 0.")),
    responses(
        (status = 200, description = "Users, by username.", body = Vec<crate::dto::UserDto>),
        (status = 400, description = "Bad query parameter (`validation_failed`).", body = crate::error::ErrorBody),
        (status = 401, description = "No, malformed, expired or revoked token (`not_authenticated`, `token_invalid`, `token_expired`, `session_revoked`).", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable (`unavailable`).", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    state: web::Data<AppState>,
    _auth: Authenticated,
    params: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let limit = params.int("limit", 1, 200, 100)?;
    let offset = params.int("offset", 0, i64::MAX, 0)?;
    let page = Page::new(u32::try_from(limit).unwrap_or(100), u64::try_from(offset).unwrap_or(0))
        .map_err(|e| ApiError::field("limit", e.0))?;
    let search = params.string("search").map(str::to_owned);
    if search.as_ref().is_some_and(|s| s.chars().count() > 64) {
        return Err(ApiError::field("search", "Ensure this value has at most 64 characters."));
    }
    if search.as_ref().is_some_and(|s| s.contains('\0')) {
        return Err(ApiError::field("search", "Null characters are not allowed."));
    }
    let query = UserListQuery { search, page };
    let accounts = state.accounts.clone();
    let users = read(&state, move || accounts.list_users(&query)).await?;
    Ok(HttpResponse::Ok().json(users.iter().map(UserDto::from).collect::<Vec<_>>()))
}
