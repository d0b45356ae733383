use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pushfleet_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// Every error the API returns, as `{"error": {"code", "message", "details"?}}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    Invalid {
        message: String,
        details: Vec<FieldError>,
    },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{message}")]
    Status {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// One problem with one field of the request.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// Path to the field, e.g. `people[3].email`.
    pub field: String,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_json`, `validation_failed`, `not_found`.
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldError>,
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let (field, message) = (field.into(), message.into());
        ApiError::Invalid {
            message: format!("{field}: {message}"),
            details: vec![FieldError { field, message }],
        }
    }

    /// Many field errors at once; `Ok` when there are none.
    pub fn check(details: Vec<FieldError>) -> Result<(), ApiError> {
        if details.is_empty() {
            return Ok(());
        }
        let message = format!(
            "{} invalid field(s); first: {}: {}",
            details.len(),
            details[0].field,
            details[0].message
        );
        Err(ApiError::Invalid { message, details })
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(what),
            StoreError::Conflict(msg) => ApiError::Conflict(msg),
            StoreError::Missing(field) => ApiError::invalid(field, "is required"),
            StoreError::Invalid { field, message } => ApiError::invalid(field, message),
            StoreError::UnknownPeople(ids) => ApiError::Invalid {
                message: format!("{} unknown person id(s)", ids.len()),
                details: ids
                    .into_iter()
                    .map(|id| FieldError {
                        field: "person_ids".into(),
                        message: format!("no person with id {id}"),
                    })
                    .collect(),
            },
            other => ApiError::Internal(other.into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, details) = match &self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, *code, vec![]),
            ApiError::Invalid { details, .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                details.clone(),
            ),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", vec![]),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", vec![]),
            ApiError::Status { status, code, .. } => (*status, *code, vec![]),
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", vec![])
            }
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message: self.to_string(),
                details,
            },
        };
        (status, Json(body)).into_response()
    }
}
