//! The one mapping of the services' errors to the console's ([`ConsoleError`]), and the HTTP
//! status those errors are answered with.

use app::api::ConsoleError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leptos::server_fn::error::SERVER_FN_ERROR_HEADER;

use crate::kube::ApiError;
use crate::storage::StorageError;

/// The one mapping of the services' errors to what the console shows.
impl From<ApiError> for ConsoleError {
    fn from(err: ApiError) -> Self {
        match err {
            ApiError::NotFound { .. } | ApiError::NoSuchResource(_) => {
                ConsoleError::NotFound(err.to_string())
            }
            ApiError::Forbidden { .. } | ApiError::ForbiddenBy { .. } | ApiError::Refused(_) => {
                ConsoleError::Forbidden(err.to_string())
            }
            ApiError::CsrfRejected(_) => ConsoleError::Csrf,
            ApiError::Unauthorized(_) => ConsoleError::SignInRequired,
            ApiError::AlreadyExists { .. } => ConsoleError::AlreadyExists(err.to_string()),
            ApiError::Invalid { .. }
            | ApiError::BadRequest(_)
            | ApiError::Conflict { .. }
            | ApiError::NotNow { .. }
            | ApiError::MethodNotAllowed
            | ApiError::UnsupportedMediaType(_)
            | ApiError::Gone { .. }
            | ApiError::ContinueExpired => ConsoleError::Invalid(err.to_string()),
            ApiError::TooManyRequests { .. } => ConsoleError::TooManyRequests(err.to_string()),
            ApiError::Internal(cause) => {
                tracing::error!(error = %cause, "a console request failed");
                ConsoleError::Unavailable("storage failed; the server log has the cause".into())
            }
        }
    }
}

impl From<StorageError> for ConsoleError {
    fn from(err: StorageError) -> Self {
        ApiError::from(err).into()
    }
}

/// Gives the console's errors their HTTP status. Server functions answer every error with 500,
/// which would count (and log) a refusal as a failure of the server; the body, the error as
/// the pages decode it, is unchanged.
pub async fn error_status(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR
        || !response.headers().contains_key(SERVER_FN_ERROR_HEADER)
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if let Ok(error) = serde_json::from_slice::<ConsoleError>(&bytes) {
        parts.status = status_of(&error);
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// The HTTP status of a console error.
fn status_of(error: &ConsoleError) -> StatusCode {
    match error {
        ConsoleError::NotFound(_) | ConsoleError::NotHere(_) => StatusCode::NOT_FOUND,
        ConsoleError::Forbidden(_) | ConsoleError::Csrf => StatusCode::FORBIDDEN,
        ConsoleError::Invalid(_) | ConsoleError::Request(_) => StatusCode::BAD_REQUEST,
        ConsoleError::AlreadyExists(_) => StatusCode::CONFLICT,
        ConsoleError::SignInRequired => StatusCode::UNAUTHORIZED,
        ConsoleError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
        ConsoleError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A console error as the answer of a plain route (a download): its status and its words as
/// text.
pub fn plain_response(error: ConsoleError) -> Response {
    (
        status_of(&error),
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        error.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_once() {
        use crate::kube::{IMAGE_STREAMS, Resource};
        assert!(matches!(
            ConsoleError::from(ApiError::not_found(IMAGE_STREAMS, "app")),
            ConsoleError::NotFound(message) if message.contains("app")
        ));
        assert!(matches!(
            ConsoleError::from(ApiError::Forbidden {
                resource: IMAGE_STREAMS,
                name: "app".into(),
                who: "User \"bob\"".into(),
                verb: "get",
                namespace: Some("ns".into()),
            }),
            ConsoleError::Forbidden(_)
        ));
        assert_eq!(
            ConsoleError::from(ApiError::Unauthorized("no".into())),
            ConsoleError::SignInRequired
        );
        assert!(matches!(
            ConsoleError::from(ApiError::AlreadyExists {
                resource: Resource {
                    plural: "namespaces",
                    group: ""
                },
                name: "ns".into()
            }),
            ConsoleError::AlreadyExists(_)
        ));
        // A Conflict with its cause (a pending delivery sent again) says the cause.
        assert!(matches!(
            ConsoleError::from(ApiError::NotNow {
                resource: crate::kube::WEBHOOK_DELIVERIES,
                name: "7".into(),
                why: "the delivery is still pending".into(),
            }),
            ConsoleError::Invalid(message)
                if message == "Operation cannot be fulfilled on webhookdeliveries.berth.io \"7\": the delivery is still pending"
        ));
        let hidden = ConsoleError::from(StorageError::Corrupt("secret detail".into()));
        assert!(
            matches!(&hidden, ConsoleError::Unavailable(message) if !message.contains("secret")),
            "{hidden:?}"
        );
    }
}
