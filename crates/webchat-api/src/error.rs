//! The error model of SPEC §2: every failure is JSON `{"detail", "code", "fields"?}` with
//! the right status.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::collections::BTreeMap;
use webchat_domain::DomainError;

/// Field name → the problems with it.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Invalid input.")]
    Validation(FieldErrors),
    #[error("{0}")]
    InvalidJson(String),
    #[error("Authentication credentials were not provided.")]
    NotAuthenticated,
    #[error("Request body is larger than 64 KiB.")]
    PayloadTooLarge,
    #[error("Unsupported media type; send application/json.")]
    UnsupportedMediaType,
    #[error("Not found.")]
    NotFound,
    #[error("Method not allowed.")]
    MethodNotAllowed,
    #[error("Too many requests; try again in {retry_after} seconds.")]
    RateLimited { retry_after: u64 },
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// A bug on our side; the detail is logged, never sent.
    #[error("A server error occurred.")]
    Internal(String),
}

/// Every error (SPEC §2).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody<'a> {
    /// A human-readable sentence.
    detail: String,
    /// A stable snake_case code, e.g. `validation_failed`, `token_expired`, `not_a_member`.
    code: &'a str,
    /// Validation errors only: every missing or invalid field with its problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<std::collections::BTreeMap<String, Vec<String>>>)]
    fields: Option<&'a FieldErrors>,
}

impl ApiError {
    /// One invalid field.
    pub fn field(name: &str, message: impl Into<String>) -> Self {
        Self::Validation(BTreeMap::from([(name.to_owned(), vec![message.into()])]))
    }

    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "validation_failed",
            Self::InvalidJson(_) => "invalid_json",
            Self::NotAuthenticated => "not_authenticated",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RateLimited { .. } => "rate_limited",
            Self::Domain(e) => e.code(),
            Self::Internal(_) => "internal_error",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::InvalidJson(_) => StatusCode::BAD_REQUEST,
            Self::NotAuthenticated => StatusCode::UNAUTHORIZED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Domain(e) => match e {
                DomainError::Validation { .. } => StatusCode::BAD_REQUEST,
                DomainError::InvalidCredentials
                | DomainError::TokenInvalid
                | DomainError::TokenExpired
                | DomainError::SessionRevoked
                | DomainError::RefreshTokenReused => StatusCode::UNAUTHORIZED,
                DomainError::Forbidden | DomainError::NotAMember => StatusCode::FORBIDDEN,
                DomainError::NotFound(_) => StatusCode::NOT_FOUND,
                DomainError::EmailTaken | DomainError::UsernameTaken => StatusCode::CONFLICT,
                DomainError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                DomainError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let fields = match self {
            Self::Validation(f) => Some(f.clone()),
            Self::Domain(DomainError::Validation { field, message }) => {
                Some(BTreeMap::from([((*field).to_owned(), vec![message.clone()])]))
            }
            _ => None,
        };
        let detail = match self {
            Self::Internal(_) | Self::Domain(DomainError::Internal(_)) => {
                tracing::error!(error = %self.internal_detail(), "internal error");
                "A server error occurred.".to_owned()
            }
            Self::Validation(_) => "Invalid input.".to_owned(),
            other => other.to_string(),
        };
        let mut resp = HttpResponse::build(status);
        if status == StatusCode::UNAUTHORIZED {
            resp.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        if let Self::RateLimited { retry_after } = self {
            resp.insert_header((header::RETRY_AFTER, retry_after.to_string()));
        }
        resp.json(ErrorBody { detail, code: self.code(), fields: fields.as_ref() })
    }
}

impl ApiError {
    fn internal_detail(&self) -> String {
        match self {
            Self::Internal(m) | Self::Domain(DomainError::Internal(m)) => m.clone(),
            other => other.to_string(),
        }
    }
}
