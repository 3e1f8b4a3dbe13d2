//! The `/v2/` router. Repository names contain slashes, so one wildcard route takes every path
//! and [`RegistryRoute`] parses it from the right into a typed endpoint of validated names,
//! digests and references before any handler runs.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use percent_encoding::percent_decode_str;

use super::access::{self, RegistryCaller};
use super::error::{RegistryError, RegistryResult};
use super::http::{API_VERSION, DOCKER_DISTRIBUTION_API_VERSION};
use super::{Registry, blobs, catalog, manifests, referrers, tags, uploads};
use crate::oci::Digest;
use crate::oci::{Reference, RepositoryName, Tag};
use crate::ops::Operation;
use crate::storage::UploadId;

/// A manifest reference that is neither a tag nor a digest, with why.
#[derive(Debug, Clone, PartialEq)]
pub struct BadReference {
    pub text: String,
    pub problem: String,
    /// It has a `:`, so it was meant as a digest.
    pub as_digest: bool,
}

impl BadReference {
    /// The error a push by this reference gets.
    fn push_error(&self) -> RegistryError {
        if self.as_digest {
            RegistryError::DigestInvalid(self.problem.clone())
        } else {
            RegistryError::ManifestInvalid(self.problem.clone())
        }
    }
}

/// A parsed `/v2/` endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum RegistryRoute {
    Base,
    Catalog,
    Tags(RepositoryName),
    Manifest(RepositoryName, Reference),
    /// `/manifests/` followed by neither a valid tag nor a valid digest: no manifest can have
    /// that name, so a read finds none (404, as distribution and zot answer) while a push is
    /// refused as invalid (400).
    ManifestBadReference(RepositoryName, BadReference),
    Blob(RepositoryName, Digest),
    UploadStart(RepositoryName),
    Upload(RepositoryName, UploadId),
    Referrers(RepositoryName, Digest),
}

impl RegistryRoute {
    /// Parses the path after `/v2/`.
    pub fn parse(path: &str) -> RegistryResult<RegistryRoute> {
        let not_found = || RegistryError::NotFound(format!("/v2/{path}"));
        if path.is_empty() {
            return Ok(RegistryRoute::Base);
        }
        if path == "_catalog" {
            return Ok(RegistryRoute::Catalog);
        }
        let segments: Vec<&str> = path.split('/').collect();
        let n = segments.len();
        let name_of = |count: usize| -> RegistryResult<RepositoryName> {
            if n <= count {
                return Err(not_found());
            }
            segments[..n - count]
                .join("/")
                .parse::<RepositoryName>()
                .map_err(|err| RegistryError::NameInvalid(err.to_string()))
        };
        let last = decode(segments[n - 1]);
        let second_last = n.checked_sub(2).map(|i| segments[i]);
        let third_last = n.checked_sub(3).map(|i| segments[i]);
        match (third_last, second_last, last.as_str()) {
            (_, Some("tags"), "list") => Ok(RegistryRoute::Tags(name_of(2)?)),
            (Some("blobs"), Some("uploads"), "") => Ok(RegistryRoute::UploadStart(name_of(3)?)),
            (Some("blobs"), Some("uploads"), id) => {
                let name = name_of(3)?;
                let id = uuid::Uuid::parse_str(id)
                    .map_err(|_| RegistryError::BlobUploadUnknown(id.to_owned()))?;
                Ok(RegistryRoute::Upload(name, UploadId(id)))
            }
            (_, Some("blobs"), "uploads") => Ok(RegistryRoute::UploadStart(name_of(2)?)),
            (_, Some("blobs"), digest) => {
                Ok(RegistryRoute::Blob(name_of(2)?, parse_digest(digest)?))
            }
            (_, Some("manifests"), reference) => {
                let name = name_of(2)?;
                let as_digest = reference.contains(':');
                let parsed = if as_digest {
                    reference
                        .parse::<Digest>()
                        .map(Reference::Digest)
                        .map_err(|err| err.to_string())
                } else {
                    reference
                        .parse::<Tag>()
                        .map(Reference::Tag)
                        .map_err(|err| err.to_string())
                };
                Ok(match parsed {
                    Ok(reference) => RegistryRoute::Manifest(name, reference),
                    Err(problem) => RegistryRoute::ManifestBadReference(
                        name,
                        BadReference {
                            text: reference.to_owned(),
                            problem,
                            as_digest,
                        },
                    ),
                })
            }
            (_, Some("referrers"), digest) => {
                Ok(RegistryRoute::Referrers(name_of(2)?, parse_digest(digest)?))
            }
            _ => Err(not_found()),
        }
    }

    /// The operation's name, for metrics and logs.
    fn operation(&self, method: &Method) -> &'static str {
        let head = method == Method::HEAD;
        match (self, method.as_str()) {
            (RegistryRoute::Base, _) => "base",
            (RegistryRoute::Catalog, _) => "catalog",
            (RegistryRoute::Tags(_), _) => "tags_list",
            (RegistryRoute::Referrers(..), _) => "referrers",
            (RegistryRoute::Manifest(..) | RegistryRoute::ManifestBadReference(..), method) => {
                match method {
                    "PUT" => "manifest_put",
                    "DELETE" => "manifest_delete",
                    _ if head => "manifest_head",
                    _ => "manifest_get",
                }
            }
            (RegistryRoute::Blob(..), "DELETE") => "blob_delete",
            (RegistryRoute::Blob(..), _) if head => "blob_head",
            (RegistryRoute::Blob(..), _) => "blob_get",
            (RegistryRoute::UploadStart(_), _) => "upload_start",
            (RegistryRoute::Upload(..), "PATCH") => "upload_patch",
            (RegistryRoute::Upload(..), "PUT") => "upload_finish",
            (RegistryRoute::Upload(..), "DELETE") => "upload_cancel",
            (RegistryRoute::Upload(..), _) => "upload_status",
        }
    }

    fn allowed_methods(&self) -> &'static str {
        match self {
            RegistryRoute::Base
            | RegistryRoute::Catalog
            | RegistryRoute::Tags(_)
            | RegistryRoute::Referrers(..) => "GET, HEAD",
            RegistryRoute::Manifest(..) | RegistryRoute::ManifestBadReference(..) => {
                "GET, HEAD, PUT, DELETE"
            }
            RegistryRoute::Blob(..) => "GET, HEAD, DELETE",
            RegistryRoute::UploadStart(_) => "POST",
            RegistryRoute::Upload(..) => "GET, PATCH, PUT, DELETE",
        }
    }
}

fn decode(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

fn parse_digest(text: &str) -> RegistryResult<Digest> {
    text.parse::<Digest>()
        .map_err(|err| RegistryError::DigestInvalid(err.to_string()))
}

impl<S: Send + Sync> FromRequestParts<S> for RegistryRoute {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let path = parts.uri.path();
        let rest = path
            .strip_prefix("/v2/")
            .or_else(|| (path == "/v2").then_some(""))
            .unwrap_or(path);
        match RegistryRoute::parse(rest) {
            Ok(route) => Ok(route),
            Err(err) => {
                let mut response = with_api_version(err.into_response());
                response.extensions_mut().insert(Operation("invalid_path"));
                Err(response)
            }
        }
    }
}

fn with_api_version(mut response: Response) -> Response {
    response.headers_mut().insert(
        DOCKER_DISTRIBUTION_API_VERSION,
        HeaderValue::from_static(API_VERSION),
    );
    response
}

async fn handle(
    State(registry): State<Arc<Registry>>,
    route: RegistryRoute,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let operation = Operation(route.operation(&parts.method));
    let result = async {
        let caller = access::authenticate(&registry.auth, &parts).await?;
        access::authorize(
            &registry.auth,
            async |name: &RepositoryName| {
                Ok(registry.metadata.namespace_exists(name.namespace()).await?)
            },
            &parts,
            &caller,
            &route,
        )
        .await?;
        dispatch(&registry, &caller, route, &parts, body).await
    };
    let mut response = match result.await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    };
    response.extensions_mut().insert(operation);
    with_api_version(response)
}

async fn dispatch(
    registry: &Registry,
    caller: &RegistryCaller,
    route: RegistryRoute,
    request: &Parts,
    body: Body,
) -> RegistryResult<Response> {
    use RegistryRoute as R;
    match (route, request.method.as_str()) {
        (R::Base, "GET" | "HEAD") => Ok(axum::Json(serde_json::json!({})).into_response()),
        (R::Catalog, "GET" | "HEAD") => catalog::catalog(registry, caller, request).await,
        (R::Tags(name), "GET" | "HEAD") => tags::list(registry, &name, request).await,
        (R::Referrers(name, digest), "GET" | "HEAD") => {
            referrers::list(registry, &name, &digest, request).await
        }
        (R::Manifest(name, reference), "GET" | "HEAD") => {
            manifests::get(registry, &name, &reference, request).await
        }
        (R::Manifest(name, reference), "PUT") => {
            manifests::put(registry, caller, &name, &reference, request, body).await
        }
        (R::Manifest(name, reference), "DELETE") => {
            manifests::delete(registry, caller, &name, &reference).await
        }
        (R::ManifestBadReference(_, bad), "GET" | "HEAD" | "DELETE") => {
            Err(RegistryError::ManifestUnknown(bad.text))
        }
        (R::ManifestBadReference(_, bad), "PUT") => Err(bad.push_error()),
        (R::Blob(name, digest), "GET" | "HEAD") => {
            blobs::get(registry, &name, &digest, request).await
        }
        (R::Blob(name, digest), "DELETE") => blobs::delete(registry, caller, &name, &digest).await,
        (R::UploadStart(name), "POST") => {
            uploads::start(registry, caller, &name, request, body).await
        }
        (R::Upload(name, id), "GET") => uploads::status(registry, &name, id).await,
        (R::Upload(name, id), "PATCH") => uploads::patch(registry, &name, id, request, body).await,
        (R::Upload(name, id), "PUT") => uploads::finish(registry, &name, id, request, body).await,
        (R::Upload(name, id), "DELETE") => uploads::cancel(registry, &name, id).await,
        (route, method) => Err(RegistryError::MethodNotAllowed {
            method: method.to_owned(),
            allow: route.allowed_methods(),
        }),
    }
}

/// Every method on every `/v2` path reaches [`handle`], so that whatever is refused is refused
/// in the spec's error format (axum's own 405 and 404 have empty bodies); a panic, which no
/// input should cause, is answered in that format too.
pub fn router() -> Router<Arc<Registry>> {
    let any: MethodRouter<Arc<Registry>> = axum::routing::any(handle);
    Router::new()
        .route("/v2", any.clone())
        .route("/v2/", any.clone())
        .route("/v2/{*path}", any)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                with_api_version(RegistryError::Panicked.into_response())
            },
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";

    fn name(s: &str) -> RepositoryName {
        s.parse().unwrap()
    }

    #[test]
    fn parses_every_endpoint_from_the_right() {
        let digest: Digest = D.parse().unwrap();
        assert_eq!(RegistryRoute::parse("").unwrap(), RegistryRoute::Base);
        assert_eq!(
            RegistryRoute::parse("_catalog").unwrap(),
            RegistryRoute::Catalog
        );
        assert_eq!(
            RegistryRoute::parse("ns/app/tags/list").unwrap(),
            RegistryRoute::Tags(name("ns/app"))
        );
        assert_eq!(
            RegistryRoute::parse("a/b/c/manifests/latest").unwrap(),
            RegistryRoute::Manifest(name("a/b/c"), Reference::Tag("latest".parse().unwrap()))
        );
        assert_eq!(
            RegistryRoute::parse(&format!("n/a/manifests/{}", D.replace(':', "%3A"))).unwrap(),
            RegistryRoute::Manifest(name("n/a"), Reference::Digest(digest.clone()))
        );
        assert_eq!(
            RegistryRoute::parse(&format!("n/x/blobs/{D}")).unwrap(),
            RegistryRoute::Blob(name("n/x"), digest.clone())
        );
        assert_eq!(
            RegistryRoute::parse("n/x/blobs/uploads/").unwrap(),
            RegistryRoute::UploadStart(name("n/x"))
        );
        assert_eq!(
            RegistryRoute::parse("n/x/blobs/uploads").unwrap(),
            RegistryRoute::UploadStart(name("n/x"))
        );
        let id = uuid::Uuid::new_v4();
        assert_eq!(
            RegistryRoute::parse(&format!("x/y/blobs/uploads/{id}")).unwrap(),
            RegistryRoute::Upload(name("x/y"), UploadId(id))
        );
        assert_eq!(
            RegistryRoute::parse(&format!("n/x/referrers/{D}")).unwrap(),
            RegistryRoute::Referrers(name("n/x"), digest)
        );
        // Endpoint words are fine inside names.
        assert_eq!(
            RegistryRoute::parse("blobs/manifests/manifests/v1").unwrap(),
            RegistryRoute::Manifest(
                name("blobs/manifests"),
                Reference::Tag("v1".parse().unwrap())
            )
        );
    }

    #[test]
    fn refuses_bad_names_digests_and_paths() {
        let err = |p: &str| RegistryRoute::parse(p).unwrap_err();
        assert!(matches!(
            err("UPPER/manifests/x"),
            RegistryError::NameInvalid(_)
        ));
        assert!(matches!(
            err("../etc/manifests/x"),
            RegistryError::NameInvalid(_)
        ));
        assert!(matches!(
            err("n/a/blobs/sha256:abc"),
            RegistryError::DigestInvalid(_)
        ));
        assert!(matches!(
            err("n/a/blobs/../../x"),
            RegistryError::NotFound(_)
                | RegistryError::DigestInvalid(_)
                | RegistryError::NameInvalid(_)
        ));
        // A reference that is neither a tag nor a digest is parsed for the handler to refuse
        // by method: reads find nothing, pushes are invalid.
        for (reference, as_digest) in [("-bad", false), ("sha256:abc", true), ("a:b", true)] {
            match RegistryRoute::parse(&format!("n/a/manifests/{reference}")).unwrap() {
                RegistryRoute::ManifestBadReference(name_found, bad) => {
                    assert_eq!(name_found, name("n/a"));
                    assert_eq!((bad.text.as_str(), bad.as_digest), (reference, as_digest));
                }
                other => panic!("{reference}: {other:?}"),
            }
        }
        assert!(matches!(
            err("n/a/blobs/uploads/not-a-uuid"),
            RegistryError::BlobUploadUnknown(_)
        ));
        assert!(matches!(
            err("manifests/latest"),
            RegistryError::NotFound(_)
        ));
        assert!(matches!(err("a/b/c"), RegistryError::NotFound(_)));
    }
}

/// Properties over generated paths: no path panics the parser, and the path of every endpoint
/// built from valid parts parses back to that endpoint.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn names() -> impl Strategy<Value = RepositoryName> {
        (
            "[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?",
            proptest::collection::vec(
                prop_oneof![
                    "[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*",
                    Just("blobs".to_owned()),
                    Just("manifests".to_owned()),
                    Just("uploads".to_owned()),
                    Just("tags".to_owned()),
                    Just("referrers".to_owned()),
                ],
                1..4,
            ),
        )
            .prop_filter_map("within the length limit", |(namespace, rest)| {
                format!("{namespace}/{}", rest.join("/")).parse().ok()
            })
    }

    fn digests() -> impl Strategy<Value = Digest> {
        "[a-f0-9]{64}".prop_map(|hex| format!("sha256:{hex}").parse().expect("a digest"))
    }

    proptest! {
        #[test]
        fn any_path(path in any::<String>()) {
            let _ = RegistryRoute::parse(&path);
        }

        #[test]
        fn paths_of_endpoint_words(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just(""), Just("blobs"), Just("uploads"), Just("manifests"), Just("tags"),
                    Just("list"), Just("referrers"), Just("_catalog"), Just("a"), Just("%3A"),
                    Just(".."), Just("sha256:abc"), Just("A"),
                ],
                0..8,
            ),
        ) {
            let _ = RegistryRoute::parse(&parts.join("/"));
        }

        #[test]
        fn endpoints_round_trip(
            name in names(),
            digest in digests(),
            tag in "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,20}",
            id in any::<u128>(),
        ) {
            let tag: Tag = tag.parse().expect("a tag of the grammar");
            let id = UploadId(uuid::Uuid::from_u128(id));
            let encoded = digest.to_string().replace(':', "%3A");
            for (path, route) in [
                (format!("{name}/tags/list"), RegistryRoute::Tags(name.clone())),
                (format!("{name}/manifests/{tag}"), RegistryRoute::Manifest(name.clone(), Reference::Tag(tag.clone()))),
                (format!("{name}/manifests/{digest}"), RegistryRoute::Manifest(name.clone(), Reference::Digest(digest.clone()))),
                (format!("{name}/manifests/{encoded}"), RegistryRoute::Manifest(name.clone(), Reference::Digest(digest.clone()))),
                (format!("{name}/blobs/{digest}"), RegistryRoute::Blob(name.clone(), digest.clone())),
                (format!("{name}/blobs/uploads/"), RegistryRoute::UploadStart(name.clone())),
                (format!("{name}/blobs/uploads/{}", id.0), RegistryRoute::Upload(name.clone(), id)),
                (format!("{name}/referrers/{digest}"), RegistryRoute::Referrers(name.clone(), digest.clone())),
            ] {
                prop_assert_eq!(RegistryRoute::parse(&path).ok(), Some(route), "{}", path);
            }
        }

        #[test]
        fn a_reference_outside_both_grammars_is_kept_for_the_handler(
            name in names(),
            reference in "[^/%]{1,140}",
        ) {
            let valid = reference.parse::<Tag>().is_ok() || reference.parse::<Digest>().is_ok();
            let route = RegistryRoute::parse(&format!("{name}/manifests/{reference}")).ok();
            prop_assert!(route.is_some());
            prop_assert_eq!(
                matches!(route, Some(RegistryRoute::ManifestBadReference(..))),
                !valid,
                "{:?}", reference
            );
        }
    }
}
