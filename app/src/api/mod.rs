//! What the console shows and how it asks for it: one module per resource, each with its shared
//! types, its server functions and (on the server) the interface they read and write through;
//! here the errors they all answer with and [`ConsoleData`], every resource's interface at once.
//!
//! Every page reaches registry data through `ConsoleData`, so the same pages can be served from
//! Berth's own services or from an upstream OpenShift-compatible server by a second
//! implementation. Reads are GET server functions; changes are POST and carry the session's CSRF
//! token.

pub mod access;
pub mod audit;
pub mod diff;
pub mod images;
pub mod immutability;
pub mod imports;
pub mod layers;
pub mod namespaces;
pub mod prune;
pub mod pull_secrets;
pub mod quotas;
pub mod retention;
pub mod session;
pub mod signatures;
pub mod streams;
pub mod tokens;
pub mod users;
pub mod webhooks;

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// What the caller may do at a place (a namespace or one stream of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Permissions {
    pub pull: bool,
    pub push: bool,
    pub delete: bool,
    pub manage_access: bool,
    /// Registry credentials of the namespace ("pull secrets").
    pub manage_secrets: bool,
}

/// A failure the console can show to a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ConsoleError {
    #[error("{0}")]
    NotFound(String),
    /// Something this console does not do where it runs (access or tokens in front of a
    /// cluster, which manages them itself).
    #[error("{0}")]
    NotHere(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    /// The name is taken: a token, pull secret, binding… of that name exists already.
    #[error("{0}")]
    AlreadyExists(String),
    #[error("sign in to do this")]
    SignInRequired,
    #[error("the page is out of date (the CSRF token is missing or wrong); reload it")]
    Csrf,
    /// Refused for now: too many failed sign-ins from here (the throttle), or too many requests.
    #[error("{0}")]
    TooManyRequests(String),
    #[error("the registry could not answer: {0}")]
    Unavailable(String),
    #[error("the request to the server failed: {0}")]
    Request(String),
}

impl FromServerFnError for ConsoleError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        ConsoleError::Request(value.to_string())
    }
}

pub type ConsoleResult<T> = Result<T, ConsoleError>;

/// The console's source of registry data: every resource's interface. Every method decides with
/// the caller of the request being served, as the APIs do.
#[cfg(feature = "ssr")]
pub trait ConsoleData:
    session::SessionData
    + namespaces::NamespaceData
    + streams::StreamData
    + diff::DiffData
    + imports::ImportData
    + images::ImageData
    + layers::LayerData
    + webhooks::WebhookData
    + pull_secrets::PullSecretData
    + access::AccessData
    + tokens::TokenData
    + quotas::QuotaData
    + retention::RetentionData
    + immutability::TagRuleData
    + prune::PruneData
    + signatures::SignatureData
    + audit::AuditData
    + users::UserData
    + 'static
{
}

#[cfg(feature = "ssr")]
impl<T> ConsoleData for T where
    T: session::SessionData
        + namespaces::NamespaceData
        + streams::StreamData
        + diff::DiffData
        + imports::ImportData
        + images::ImageData
        + layers::LayerData
        + webhooks::WebhookData
        + pull_secrets::PullSecretData
        + access::AccessData
        + tokens::TokenData
        + quotas::QuotaData
        + retention::RetentionData
        + immutability::TagRuleData
        + prune::PruneData
        + signatures::SignatureData
        + audit::AuditData
        + users::UserData
        + 'static
{
}

#[cfg(feature = "ssr")]
fn console_data() -> ConsoleResult<std::sync::Arc<dyn ConsoleData>> {
    // Only the not-found page renders without a data source (a path the router matches but
    // axum's routes do not, such as one with a trailing slash): it is not found.
    leptos::prelude::use_context::<std::sync::Arc<dyn ConsoleData>>()
        .ok_or_else(|| ConsoleError::NotFound("no page at this address".into()))
}

/// A change: the CSRF token is checked before anything else.
#[cfg(feature = "ssr")]
async fn changing(csrf: &str) -> ConsoleResult<std::sync::Arc<dyn ConsoleData>> {
    let data = console_data()?;
    data.check_csrf(csrf).await?;
    Ok(data)
}
