//! Who may do what on `/v2/`: the caller (a registry token from the token endpoint, a Berth
//! token, a password, or nobody), what each endpoint needs, and the challenge that sends
//! clients to the token endpoint.

use std::sync::Arc;

use axum::http::Method;
use axum::http::request::Parts;

use super::error::{RegistryError, RegistryResult};
use super::routes::RegistryRoute;
use crate::auth::credentials::{RegistryClaims, TOKEN_PREFIX, TokenSubject};
use crate::auth::http::{Credentials, credentials};
use crate::auth::{Action, AuthContext, AuthError, Subject, Target};
use crate::oci::RepositoryName;
use crate::web::{Arrival, client_address, quoted};

/// Who a registry request comes from.
#[derive(Debug, Clone)]
pub enum RegistryCaller {
    /// A token from the token endpoint: what it grants, and to whom.
    Granted(Arc<RegistryClaims>),
    /// A Berth token, a password, or (without credentials) the anonymous subject.
    Subject {
        subject: Subject,
        with_credentials: bool,
    },
}

impl RegistryCaller {
    /// Whether the caller may do `action` on repository `name` (without an error: the mount
    /// source check uses it too).
    pub fn allows(
        &self,
        auth: &AuthContext,
        namespace_exists: bool,
        name: &RepositoryName,
        action: Action,
    ) -> bool {
        match self {
            // A registry token grants what it names and what its subject holds now, no more: a
            // push granted because the namespace did not exist yet ends when someone else makes it,
            // and a binding removed since ends what it allowed.
            RegistryCaller::Granted(claims) => {
                claims.access.iter().any(|access| {
                    access.resource_type == "repository"
                        && access.name == name.as_str()
                        && access
                            .actions
                            .iter()
                            .any(|a| a == "*" || a == docker_action(action))
                }) && allows(auth, namespace_exists, &self.subject(), name, action)
            }
            RegistryCaller::Subject { subject, .. } => {
                allows(auth, namespace_exists, subject, name, action)
            }
        }
    }

    pub fn subject(&self) -> Subject {
        match self {
            RegistryCaller::Granted(claims) => match &claims.berth {
                TokenSubject::Anonymous => Subject::Anonymous,
                TokenSubject::User { name, groups } => Subject::User {
                    name: name.clone(),
                    groups: groups.clone(),
                },
                TokenSubject::ServiceAccount { namespace, name } => Subject::ServiceAccount {
                    namespace: namespace.clone(),
                    name: name.clone(),
                },
            },
            RegistryCaller::Subject { subject, .. } => subject.clone(),
        }
    }

    fn has_credentials(&self) -> bool {
        match self {
            RegistryCaller::Granted(_) => true,
            RegistryCaller::Subject {
                with_credentials, ..
            } => *with_credentials,
        }
    }
}

pub fn token_subject(subject: &Subject) -> TokenSubject {
    match subject {
        Subject::Anonymous => TokenSubject::Anonymous,
        Subject::User { name, groups } => TokenSubject::User {
            name: name.clone(),
            groups: groups.clone(),
        },
        Subject::ServiceAccount { namespace, name } => TokenSubject::ServiceAccount {
            namespace: namespace.clone(),
            name: name.clone(),
        },
    }
}

/// The Docker action name of an [`Action`].
pub fn docker_action(action: Action) -> &'static str {
    match action {
        Action::Pull => "pull",
        Action::Push => "push",
        // Never asked of the registry; the strongest Docker action stands for them.
        Action::Delete | Action::ManageAccess | Action::ManageQuotas => "delete",
    }
}

fn unauthorized(
    parts: &Parts,
    auth: &AuthContext,
    scope: Option<String>,
    detail: &str,
) -> RegistryError {
    RegistryError::Unauthorized {
        challenge: challenge(parts, auth, scope),
        message: detail.to_owned(),
    }
}

/// The Bearer challenge that sends a client to the token endpoint, with the scope it needs.
fn challenge(parts: &Parts, auth: &AuthContext, scope: Option<String>) -> String {
    // The realm is this server as the client reached it (the public URL, else a validated
    // host), and every parameter a quoted string: no header's text reaches the challenge raw.
    let realm = format!("{}/auth/token", Arrival::of(parts).base_url());
    let mut challenge = format!(
        "Bearer realm={},service={}",
        quoted(&realm),
        quoted(&auth.registry_tokens.service)
    );
    if let Some(scope) = scope {
        challenge.push_str(&format!(",scope={}", quoted(&scope)));
    }
    challenge
}

/// Authenticates a registry request. Bad credentials are refused with the challenge, as
/// clients expect, so they can fetch a token instead.
pub async fn authenticate(auth: &AuthContext, parts: &Parts) -> RegistryResult<RegistryCaller> {
    let refused = |err: AuthError| match err {
        AuthError::Throttled { retry_after } => RegistryError::TooManyRequests {
            retry_after: retry_after.as_secs().max(1),
        },
        AuthError::Storage(err) => RegistryError::Storage(err),
        other => unauthorized(parts, auth, None, &other.to_string()),
    };
    match credentials(&parts.headers) {
        Credentials::None => Ok(RegistryCaller::Subject {
            subject: Subject::Anonymous,
            with_credentials: false,
        }),
        Credentials::Malformed => Err(unauthorized(
            parts,
            auth,
            None,
            "the Authorization header is neither Basic nor Bearer credentials",
        )),
        Credentials::Bearer(token) if token.starts_with(TOKEN_PREFIX) => {
            Ok(RegistryCaller::Subject {
                subject: auth.token_subject(&token).await.map_err(refused)?,
                with_credentials: true,
            })
        }
        Credentials::Bearer(token) => auth
            .registry_claims(&token)
            .map(RegistryCaller::Granted)
            .ok_or_else(|| {
                unauthorized(
                    parts,
                    auth,
                    None,
                    "the registry token is not valid or has expired",
                )
            }),
        Credentials::Basic { user, password } => Ok(RegistryCaller::Subject {
            subject: auth
                .basic(&user, &password, client_address(parts))
                .await
                .map_err(refused)?,
            with_credentials: true,
        }),
    }
}

/// What an endpoint needs of the caller.
enum Need<'a> {
    Credentials,
    Catalog,
    Repository(&'a RepositoryName, Action),
}

fn need<'a>(route: &'a RegistryRoute, method: &Method) -> Need<'a> {
    use RegistryRoute as R;
    let write = method == Method::PUT || method == Method::POST || method == Method::PATCH;
    match route {
        R::Base => Need::Credentials,
        R::Catalog => Need::Catalog,
        R::Tags(name) | R::Referrers(name, _) => Need::Repository(name, Action::Pull),
        R::Manifest(name, _) | R::ManifestBadReference(name, _) | R::Blob(name, _)
            if method == Method::DELETE =>
        {
            Need::Repository(name, Action::Delete)
        }
        R::Manifest(name, _) | R::ManifestBadReference(name, _) if write => {
            Need::Repository(name, Action::Push)
        }
        R::Manifest(name, _) | R::ManifestBadReference(name, _) | R::Blob(name, _) => {
            Need::Repository(name, Action::Pull)
        }
        R::UploadStart(name) | R::Upload(name, _) => Need::Repository(name, Action::Push),
    }
}

/// The decision for a subject on a repository: the authorizer's, plus creating a namespace by
/// pushing to it where allowed.
pub fn allows(
    auth: &AuthContext,
    namespace_exists: bool,
    subject: &Subject,
    name: &RepositoryName,
    action: Action,
) -> bool {
    let authorizer = &auth.authorizer;
    authorizer.allows(
        subject,
        action,
        Target::stream(name.namespace(), name.stream()),
    ) || (action == Action::Push && !namespace_exists && authorizer.may_create_namespace(subject))
}

/// Refuses a request its caller may not make: 401 with a challenge naming the scope needed for a
/// caller without credentials; 403 with that challenge and `error="insufficient_scope"` for a
/// registry token lacking a scope its holder may have; 403 otherwise.
pub async fn authorize(
    auth: &AuthContext,
    namespace_exists: impl AsyncFnOnce(&RepositoryName) -> RegistryResult<bool>,
    parts: &Parts,
    caller: &RegistryCaller,
    route: &RegistryRoute,
) -> RegistryResult<()> {
    match need(route, &parts.method) {
        Need::Credentials if caller.has_credentials() => Ok(()),
        Need::Credentials => Err(unauthorized(parts, auth, None, "authentication required")),
        Need::Catalog if caller.has_credentials() => Ok(()),
        Need::Catalog => Err(unauthorized(
            parts,
            auth,
            Some("registry:catalog:*".into()),
            "authentication required",
        )),
        Need::Repository(name, action) => {
            // Whether the namespace exists matters only to a push the bindings refuse (it may
            // create the namespace): ask the store only then.
            let mut exists = true;
            if caller.allows(auth, exists, name, action) {
                return Ok(());
            }
            if action == Action::Push {
                exists = namespace_exists(name).await?;
                if !exists && caller.allows(auth, exists, name, action) {
                    return Ok(());
                }
            }
            // A push also reads (a blob's HEAD before its upload): the scope to ask for names
            // both, as distribution's challenges do, so one token serves the whole push.
            let actions = match action {
                Action::Push => "pull,push",
                other => docker_action(other),
            };
            let scope = format!("repository:{name}:{actions}");
            let subject = caller.subject();
            if subject.is_anonymous() {
                return Err(unauthorized(
                    parts,
                    auth,
                    Some(scope),
                    "authentication required",
                ));
            }
            // A valid registry token whose holder may do this, but whose scope does not say so:
            // 403 `insufficient_scope` with the scope to ask for (RFC 6750 3.1), on which
            // clients such as the Python ORAS client fetch a new token (others ask for every
            // scope a push needs before it starts).
            let token_lacks_scope = matches!(caller, RegistryCaller::Granted(_))
                && allows(auth, exists, &subject, name, action);
            if token_lacks_scope {
                let challenge = challenge(parts, auth, Some(scope));
                return Err(RegistryError::InsufficientScope {
                    challenge: format!("{challenge},error=\"insufficient_scope\""),
                    message: format!(
                        "the token does not grant {} on {name}; ask the token endpoint for {actions}",
                        docker_action(action)
                    ),
                });
            }
            Err(RegistryError::Denied(format!(
                "{} may not {} {name}",
                subject.display_name(),
                docker_action(action)
            )))
        }
    }
}
