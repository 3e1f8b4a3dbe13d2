//! The errors of every Kubernetes-style API and their one mapping to a `Status` object.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::meta::{ListMeta, Status, StatusCause, StatusDetails};
use super::resource::Resource;

/// One invalid field of a request body.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

fn scope(namespace: &Option<String>) -> String {
    match namespace {
        Some(namespace) => format!(" in the namespace \"{namespace}\""),
        None => " at the cluster scope".into(),
    }
}

fn join(causes: &[FieldError]) -> String {
    causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{resource} \"{name}\" not found")]
    NotFound { resource: Resource, name: String },
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists { resource: Resource, name: String },
    #[error(
        "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
    )]
    Conflict { resource: Resource, name: String },
    /// A request the object's state does not allow (yet): Kubernetes' Conflict with its cause.
    #[error("Operation cannot be fulfilled on {resource} \"{name}\": {why}")]
    NotNow {
        resource: Resource,
        name: String,
        why: String,
    },
    #[error("{resource} \"{name}\" is invalid: {}", join(.causes))]
    Invalid {
        resource: Resource,
        name: String,
        causes: Vec<FieldError>,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error("the server could not find the requested resource ({0})")]
    NoSuchResource(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{resource} \"{name}\" is forbidden: {who} cannot {verb} resource \"{}\" in API group \"{}\"{}", .resource.plural, .resource.group, scope(.namespace))]
    Forbidden {
        resource: Resource,
        name: String,
        who: String,
        verb: &'static str,
        namespace: Option<String>,
    },
    /// Forbidden by a rule about the object rather than by the caller's role (a quota or a
    /// limit range exceeded): `imagestreams.image.openshift.io "web" is forbidden: exceeded
    /// quota: ...`, as Kubernetes' admission answers.
    #[error("{resource} \"{name}\" is forbidden: {why}")]
    ForbiddenBy {
        resource: Resource,
        name: String,
        why: String,
    },
    /// Too many requests, failed sign-ins or watches: try again after `retry_after` seconds.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    #[error("{0}")]
    CsrfRejected(String),
    /// Forbidden for a reason other than a missing role (how the caller signed in, say).
    #[error("{0}")]
    Refused(String),
    #[error("this method is not allowed on this resource")]
    MethodNotAllowed,
    /// A body in an encoding the endpoint does not read.
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too old resource version: {requested} (the oldest kept is {oldest})")]
    Gone { requested: i64, oldest: i64 },
    #[error(
        "the provided continue parameter is too old to display a consistent list result; start a new list without the continue parameter"
    )]
    ContinueExpired,
    /// The server's fault (storage, a sealed secret it cannot open): a 500 whose cause is logged,
    /// never shown.
    #[error(transparent)]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn not_found(resource: Resource, name: impl Into<String>) -> Self {
        ApiError::NotFound {
            resource,
            name: name.into(),
        }
    }

    /// The one Forbidden of every API, in Kubernetes' words: `imagestreams.image.openshift.io
    /// "web" is forbidden: User "alice" cannot update resource "imagestreams" in API group
    /// "image.openshift.io" in the namespace "team"`. `user` is the caller's user name
    /// (`system:serviceaccount:ns:name` for a service account, `system:anonymous`).
    pub fn forbidden(
        user: &str,
        verb: &'static str,
        resource: Resource,
        name: &str,
        namespace: Option<&str>,
    ) -> Self {
        ApiError::Forbidden {
            resource,
            name: name.to_owned(),
            who: format!("User \"{user}\""),
            verb,
            namespace: namespace.map(str::to_owned),
        }
    }

    /// Too many requests: try again in `seconds`.
    pub fn throttled(seconds: u64) -> Self {
        ApiError::TooManyRequests {
            message: format!("too many requests; try again in {seconds} seconds"),
            retry_after: seconds,
        }
    }

    /// The server's fault: `cause` is logged, the caller reads only that it failed.
    pub fn internal(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        ApiError::Internal(Box::new(cause))
    }

    pub fn invalid(resource: Resource, name: impl Into<String>, cause: FieldError) -> Self {
        ApiError::Invalid {
            resource,
            name: name.into(),
            causes: vec![cause],
        }
    }

    fn code_and_reason(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::NotFound { .. } => (StatusCode::NOT_FOUND, "NotFound"),
            ApiError::AlreadyExists { .. } => (StatusCode::CONFLICT, "AlreadyExists"),
            ApiError::Conflict { .. } | ApiError::NotNow { .. } => {
                (StatusCode::CONFLICT, "Conflict")
            }
            ApiError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "Invalid"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
            ApiError::NoSuchResource(_) => (StatusCode::NOT_FOUND, "NotFound"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType")
            }
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "Unauthorized"),
            ApiError::Forbidden { .. }
            | ApiError::ForbiddenBy { .. }
            | ApiError::CsrfRejected(_)
            | ApiError::Refused(_) => (StatusCode::FORBIDDEN, "Forbidden"),
            ApiError::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "TooManyRequests"),
            ApiError::Gone { .. } | ApiError::ContinueExpired => (StatusCode::GONE, "Expired"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        }
    }

    /// The `Status` object for this error.
    pub fn status(&self) -> Status {
        let (code, reason) = self.code_and_reason();
        let details = match self {
            ApiError::NotFound { resource, name }
            | ApiError::AlreadyExists { resource, name }
            | ApiError::Conflict { resource, name }
            | ApiError::NotNow { resource, name, .. }
            | ApiError::Forbidden { resource, name, .. }
            | ApiError::ForbiddenBy { resource, name, .. } => Some(StatusDetails {
                name: name.clone(),
                group: resource.group.into(),
                kind: resource.plural.into(),
                causes: Vec::new(),
            }),
            ApiError::Invalid {
                resource,
                name,
                causes,
            } => Some(StatusDetails {
                name: name.clone(),
                group: resource.group.into(),
                kind: resource.plural.into(),
                causes: causes
                    .iter()
                    .map(|c| StatusCause {
                        reason: "FieldValueInvalid".into(),
                        message: c.message.clone(),
                        field: c.field.clone(),
                    })
                    .collect(),
            }),
            _ => None,
        };
        let message = if code.is_server_error() {
            tracing::error!(error = %self, "image stream API request failed");
            "internal error; the server log has the cause".to_owned()
        } else {
            self.to_string()
        };
        Status {
            kind: "Status".into(),
            api_version: "v1".into(),
            metadata: ListMeta::default(),
            status: "Failure".into(),
            message,
            reason: reason.into(),
            details,
            code: code.as_u16(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, _) = self.code_and_reason();
        let mut response = (code, axum::Json(self.status())).into_response();
        let retry_after = match self {
            ApiError::TooManyRequests { retry_after, .. } => Some(retry_after),
            _ => None,
        };
        if let Some(seconds) = retry_after
            && let Ok(value) = axum::http::HeaderValue::from_str(&seconds.to_string())
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, value);
        }
        response
    }
}

/// The `Status` answering a successful delete.
pub fn deleted(resource: Resource, name: &str) -> Status {
    success(resource, name)
}

/// A `Status` of success about `name` (a delete, one image of an import).
pub fn success(resource: Resource, name: &str) -> Status {
    Status {
        kind: "Status".into(),
        api_version: "v1".into(),
        metadata: ListMeta::default(),
        status: "Success".into(),
        message: String::new(),
        reason: String::new(),
        details: Some(StatusDetails {
            name: name.into(),
            group: resource.group.into(),
            kind: resource.plural.into(),
            causes: Vec::new(),
        }),
        code: 200,
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
