//! The API's error type and its JSON body: `{"error": {"code", "field"?, "message"}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pbx_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// Why a request failed. Each variant maps to one HTTP status and one stable `code`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No bearer token, or one that is unknown, revoked or expired (401).
    #[error("a valid bearer token is required")]
    Unauthenticated,
    /// The token's role may not do this (403).
    #[error("not allowed: {reason}")]
    Forbidden {
        /// Why.
        reason: &'static str,
    },
    /// The object does not exist or is outside the caller's scope (404; the two are alike).
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: &'static str,
    },
    /// A unique value is already taken, or the object is in a state that forbids the change (409).
    #[error("{message}")]
    Conflict {
        /// The request field whose value collided.
        field: &'static str,
        /// What collided.
        message: String,
    },
    /// A field has a value that does not satisfy its rules (422).
    #[error("{field}: {message}")]
    InvalidField {
        /// The field, dotted for nested ones.
        field: String,
        /// Why the value is refused.
        message: String,
    },
    /// A required field is absent (422).
    #[error("{field}: missing")]
    MissingField {
        /// The field.
        field: String,
    },
    /// The body names a field the resource does not have (422).
    #[error("{field}: unknown field")]
    UnknownField {
        /// The field.
        field: String,
    },
    /// The body is not well-formed JSON (400).
    #[error("malformed JSON: {message}")]
    MalformedJson {
        /// The parser's message.
        message: String,
    },
    /// A query parameter is not valid (400).
    #[error("{parameter}: {message}")]
    InvalidParameter {
        /// The parameter.
        parameter: &'static str,
        /// Why.
        message: String,
    },
    /// The path exists but not with this method (405).
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    /// The body is not `application/json` (415).
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    /// The store failed for a reason that is not the caller's fault (500).
    #[error("internal error")]
    Internal(#[source] StoreError),
}

/// The JSON error envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// One error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code (`invalid_field`, `missing_field`, `unknown_field`,
    /// `malformed_json`, `invalid_parameter`, `method_not_allowed`, `unsupported_media_type`, `unauthenticated`,
    /// `forbidden`, `not_found`, `conflict`, `internal`).
    pub code: &'static str,
    /// The request field (or query parameter) at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Human-readable explanation.
    pub message: String,
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::InvalidField { .. } | Self::MissingField { .. } | Self::UnknownField { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::MalformedJson { .. } | Self::InvalidParameter { .. } => StatusCode::BAD_REQUEST,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable `code`.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden { .. } => "forbidden",
            Self::NotFound { .. } => "not_found",
            Self::Conflict { .. } => "conflict",
            Self::InvalidField { .. } => "invalid_field",
            Self::MissingField { .. } => "missing_field",
            Self::UnknownField { .. } => "unknown_field",
            Self::MalformedJson { .. } => "malformed_json",
            Self::InvalidParameter { .. } => "invalid_parameter",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Internal(_) => "internal",
        }
    }

    /// The field named in the body, if any.
    pub fn field(&self) -> Option<String> {
        match self {
            Self::Conflict { field, .. } => Some((*field).to_owned()),
            Self::InvalidField { field, .. }
            | Self::MissingField { field }
            | Self::UnknownField { field } => Some(field.clone()),
            Self::InvalidParameter { parameter, .. } => Some((*parameter).to_owned()),
            _ => None,
        }
    }

    /// A refused field value.
    pub fn invalid(field: &str, message: impl ToString) -> Self {
        Self::InvalidField {
            field: field.to_owned(),
            message: message.to_string(),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                field: self.field(),
                message: self.to_string(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(source) = &self {
            tracing::error!(error = %source, detail = ?source, "API request failed in the store");
        }
        let mut response = (self.status(), Json(self.body())).into_response();
        if matches!(self, Self::Unauthenticated) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The request field a store uniqueness conflict is about.
fn conflict_field(what: &str) -> &'static str {
    match what {
        "tenant slug" => "slug",
        "tenant SIP domain" => "sip_domain",
        "extension" => "extension",
        "device MAC address" => "mac",
        "phone number" | "number assignment" => "number",
        "reseller name" => "name",
        _ => "id",
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound { what } => Self::NotFound { what },
            StoreError::Conflict { what } => Self::Conflict {
                field: conflict_field(what),
                message: format!("{what} already exists or is taken"),
            },
            StoreError::InvalidReference { what } => Self::InvalidField {
                field: match what {
                    "reseller" => "reseller_id".to_owned(),
                    "user" => "user".to_owned(),
                    other => other.to_owned(),
                },
                message: format!("no such {what} in this tenant"),
            },
            StoreError::Forbidden { reason } => Self::Forbidden { reason },
            other => Self::Internal(other),
        }
    }
}

/// The result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
