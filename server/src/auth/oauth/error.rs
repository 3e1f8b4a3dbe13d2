//! The embedded OAuth server's refusals, and the one rendering of each endpoint's: the
//! authorization endpoint answers a person with a page, the token endpoint a client with
//! RFC 6749 5.2's JSON (`error`, `error_description`, `Cache-Control: no-store`).
//!
//! No refusal of the authorization endpoint is sent back to the client as a redirect with
//! `error=` (RFC 6749 4.1.2.1): one whose client or redirect URI is wrong must not be, and
//! the others are shown to the person too, as they always were, so that what a client sees
//! does not depend on which check failed.

use app::format::escape_html;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::page;
use crate::auth::identity::AuthError;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    // The authorization endpoint: the request, then the login form.
    #[error("unknown client {0:?}")]
    UnknownClient(String),
    #[error("the redirect URI is not the one registered for this client")]
    UnregisteredRedirect,
    #[error("only response_type=code is supported")]
    UnsupportedResponseType,
    #[error("PKCE is required: send code_challenge with code_challenge_method=S256")]
    PkceRequired,
    #[error("state is required")]
    StateRequired,
    #[error("the form is too large")]
    FormTooLarge,
    #[error("the form could not be read")]
    UnreadableForm,
    #[error(
        "the sign-in form was not issued by this server (missing or wrong CSRF token); start again"
    )]
    ForgedForm,
    /// Shown on the login form again (see [`OAuthError::shows_form_again`]).
    #[error("Invalid user name or password.")]
    WrongPassword,
    #[error("Too many attempts; try again in {0} seconds.")]
    Throttled(u64),

    // The challenging client (`oc login`).
    #[error(
        "openshift-challenging-client is answered with challenges only, as `oc login` asks; a browser signs in through another client"
    )]
    ChallengesOnly,
    #[error(
        "a non-empty X-CSRF-Token header is required to receive a Basic challenge (`oc login` sends one)"
    )]
    CsrfHeaderRequired,
    #[error("authentication required: send Basic credentials (`oc login -u USER`)")]
    CredentialsRequired,
    #[error(
        "people sign in to this registry through {provider}, so `oc login` cannot use a password here: get a token at {token_page}, then run `oc login --token=TOKEN --server=SERVER`"
    )]
    PasswordsNotChallenged {
        provider: String,
        token_page: String,
    },

    // The token endpoint.
    #[error("only authorization_code is supported")]
    UnsupportedGrantType,
    #[error("client authentication is required")]
    ClientAuthenticationRequired,
    #[error("unknown client or wrong secret")]
    WrongClientSecret,
    #[error("the code is unknown or was used already")]
    UnknownCode,
    #[error("the code was issued to another client or redirect URI")]
    CodeOfAnotherClient,
    #[error("the code has expired")]
    CodeExpired,
    #[error("the PKCE code_verifier does not match the challenge")]
    WrongVerifier,
    #[error("the user no longer exists")]
    UserGone,

    // Either: the server's fault, logged and not described.
    #[error("{what} failed: {source}")]
    Storage {
        what: &'static str,
        source: StorageError,
    },
    #[error("signing the ID token failed: {0}")]
    IdTokenSigning(jsonwebtoken::errors::Error),
}

impl From<AuthError> for OAuthError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Throttled { retry_after } => {
                OAuthError::Throttled(retry_after.as_secs().max(1))
            }
            AuthError::Storage(source) => OAuthError::Storage {
                what: "sign-in",
                source,
            },
            AuthError::InvalidCredentials | AuthError::InvalidToken => OAuthError::WrongPassword,
        }
    }
}

impl OAuthError {
    pub fn status(&self) -> StatusCode {
        use OAuthError::*;
        match self {
            FormTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ForgedForm => StatusCode::FORBIDDEN,
            WrongPassword
            | ClientAuthenticationRequired
            | WrongClientSecret
            | CredentialsRequired
            | PasswordsNotChallenged { .. } => StatusCode::UNAUTHORIZED,
            Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            Storage { .. } | IdTokenSigning(_) => StatusCode::INTERNAL_SERVER_ERROR,
            UnknownClient(_)
            | UnregisteredRedirect
            | UnsupportedResponseType
            | PkceRequired
            | StateRequired
            | UnreadableForm
            | ChallengesOnly
            | CsrfHeaderRequired
            | UnsupportedGrantType
            | UnknownCode
            | CodeOfAnotherClient
            | CodeExpired
            | WrongVerifier
            | UserGone => StatusCode::BAD_REQUEST,
        }
    }

    /// The error code of RFC 6749 (5.2 for the token endpoint, 4.1.2.1 for the authorization
    /// endpoint's).
    pub fn code(&self) -> &'static str {
        use OAuthError::*;
        match self {
            UnknownClient(_) | ClientAuthenticationRequired | WrongClientSecret => "invalid_client",
            UnsupportedResponseType => "unsupported_response_type",
            UnsupportedGrantType => "unsupported_grant_type",
            UnknownCode | CodeOfAnotherClient | CodeExpired | WrongVerifier | UserGone => {
                "invalid_grant"
            }
            WrongPassword | ForgedForm | CredentialsRequired | PasswordsNotChallenged { .. } => {
                "access_denied"
            }
            ChallengesOnly => "unauthorized_client",
            Throttled(_) => "temporarily_unavailable",
            Storage { .. } | IdTokenSigning(_) => "server_error",
            UnregisteredRedirect | PkceRequired | StateRequired | FormTooLarge | UnreadableForm
            | CsrfHeaderRequired => "invalid_request",
        }
    }

    /// A refused sign-in a person may try again: the login form is shown again with this
    /// message, the name they typed kept.
    pub fn shows_form_again(&self) -> bool {
        matches!(self, OAuthError::WrongPassword | OAuthError::Throttled(_))
    }

    /// What the answer says: the server's own failures only that they happened (the log has
    /// the cause).
    fn description(&self) -> String {
        match self {
            OAuthError::Storage { .. } => "internal error".into(),
            OAuthError::IdTokenSigning(_) => "signing the ID token failed".into(),
            other => other.to_string(),
        }
    }

    fn log(&self) {
        if self.status().is_server_error() {
            tracing::error!(error = %self, "the OAuth server failed");
        }
    }

    /// The authorization endpoint's answer: a page with the status.
    pub fn page(&self) -> Response {
        self.log();
        let (title, message) = if self.status().is_server_error() {
            (
                "Sign-in failed",
                format!("{}; the server log has the cause", self.description()),
            )
        } else {
            ("Sign-in request refused", self.description())
        };
        let body = format!(
            "<h1>{}</h1><p class=\"error\" role=\"alert\">{}</p>",
            escape_html(title),
            escape_html(&message)
        );
        (self.status(), Html(page(title, &body))).into_response()
    }

    /// The challenging client's answer (`oc login`), read by a program that shows a 401's body
    /// as the reason: plain text, never cached; a Basic challenge where credentials are wanted
    /// (none sent, or wrong ones: `oc` tries once, then reports the refusal).
    pub fn challenge_response(&self) -> Response {
        self.log();
        let mut response = no_store((self.status(), self.description()).into_response());
        let headers = response.headers_mut();
        match self {
            OAuthError::CredentialsRequired | OAuthError::WrongPassword => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(BASIC_CHALLENGE),
                );
            }
            OAuthError::Throttled(seconds) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*seconds));
            }
            _ => {}
        }
        response
    }

    /// The token endpoint's answer (RFC 6749 5.2).
    pub fn token_response(&self) -> Response {
        self.log();
        let body =
            serde_json::json!({"error": self.code(), "error_description": self.description()});
        no_store((self.status(), axum::Json(body)).into_response())
    }
}

/// The challenge `oc`'s Basic handler recognises (its realm is what `oc` shows when it prompts).
pub const BASIC_CHALLENGE: &str = "Basic realm=\"openshift\"";

/// A response of the token endpoint, never cached (RFC 6749 5.1 and 5.2).
pub fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test]
    async fn the_token_endpoint_answers_rfc_6749_json_never_cached() {
        let response = OAuthError::WrongVerifier.token_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(
            body(response).await,
            r#"{"error":"invalid_grant","error_description":"the PKCE code_verifier does not match the challenge"}"#
        );
        let response = OAuthError::WrongClientSecret.token_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(body(response).await.contains(r#""error":"invalid_client""#));
    }

    #[tokio::test]
    async fn the_servers_own_failures_keep_their_cause_in_the_log() {
        let failure = || OAuthError::Storage {
            what: "reading a user",
            source: StorageError::Corrupt("row 7 of users".into()),
        };
        let response = failure().token_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body(response).await,
            r#"{"error":"server_error","error_description":"internal error"}"#
        );
        let page = body(failure().page()).await;
        assert!(
            page.contains("internal error; the server log has the cause"),
            "{page}"
        );
        assert!(!page.contains("row 7"), "{page}");
    }

    #[tokio::test]
    async fn the_authorization_endpoint_answers_a_person_with_a_page() {
        let response = OAuthError::UnknownClient("<b>".into()).page();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let page = body(response).await;
        assert!(page.contains("<h1>Sign-in request refused</h1>"), "{page}");
        assert!(
            page.contains("unknown client &quot;&lt;b&gt;&quot;"),
            "{page}"
        );
    }
}
