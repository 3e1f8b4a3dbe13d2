//! Quotas: Kubernetes' `ResourceQuota` and `LimitRange` of each namespace, served where kubectl
//! looks for them (`/api/v1/namespaces/{ns}/resourcequotas`, `/limitranges`), with OpenShift's
//! resources and Berth's storage quota:
//!
//! - `ResourceQuota` `spec.hard`: `openshift.io/imagestreams` (image streams of the namespace)
//!   and `berth.io/storage` (bytes of what its images reference, each layer once); `status`
//!   has `hard` and `used` (`resource_quotas.rs`).
//! - `LimitRange` `spec.limits[]`: `openshift.io/Image` `max.storage` (the largest image pushed)
//!   and `openshift.io/ImageStream` `max` of `openshift.io/images` and `openshift.io/image-tags`
//!   (`limit_ranges.rs`).
//!
//! They are enforced by the store, inside every push's and stream change's transaction
//! (`storage/quota_rules.rs`). Reading them is for the namespace's members (pull on the
//! namespace); creating, changing and deleting them for cluster administrators only
//! ([`Action::ManageQuotas`]), as in OpenShift, where a project admin cannot raise their own
//! quota. Both kinds share the rules here; what differs (shape, checks, rendering) is each
//! kind's [`QuotaResource`].

pub mod limit_ranges;
pub mod resource_quotas;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::http::Caller;
use crate::auth::{Action, AuthContext, Subject, Target};
use crate::kube::{
    ApiError, ApiJson, ApiResult, CORE_API_VERSION, FieldError, List, ListMeta, ObjectMeta, Patch,
    Quantity, Resource, Status, created, deleted, ok,
};
use crate::oci::is_valid_namespace;
use crate::storage::quotas::{
    Limited, QuotaKind, QuotaLimit, QuotaObject, QuotaStore, QuotaUsage, QuotaWrite,
};

pub use limit_ranges::LimitRange;
pub use resource_quotas::ResourceQuota;

/// What differs between the two kinds of quota object.
pub trait QuotaResource:
    Serialize + DeserializeOwned + schemars::JsonSchema + Send + 'static
{
    const KIND: QuotaKind;
    const RESOURCE: Resource;
    const LIST_KIND: &'static str;
    /// The audit log's names of a create, an update and a delete.
    const AUDITED: [&'static str; 3];

    fn metadata(&self) -> &ObjectMeta;
    fn kind(&self) -> &str;
    /// Checks the spec: what it limits, and the spec as stored and shown (quantities in their
    /// canonical form); or every field at fault.
    fn check(&self) -> Result<(Vec<QuotaLimit>, serde_json::Value), Vec<FieldError>>;
    /// A stored object as the API shows it, with what the namespace uses.
    fn render(object: &QuotaObject, usage: &QuotaUsage) -> ApiResult<Self>;
    /// Whether rendering needs what the namespace uses (a `ResourceQuota`'s status does).
    fn shows_usage() -> bool;
}

/// A quantity of a request body: a string (`"10Gi"`) or a number (`20`, as YAML gives it).
pub(crate) fn quantity_of(value: &serde_json::Value) -> Result<Quantity, String> {
    let text = match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Number(number) => number.to_string(),
        other => {
            return Err(format!(
                "Invalid value: {other}: must be a quantity, such as \"10Gi\" or 20"
            ));
        }
    };
    Quantity::parse(&text).map_err(|why| format!("Invalid value: {text:?}: {why}"))
}

/// Reads the quantities of one map of a spec (`spec.hard`, a limit's `max`), at `at`: what
/// each resource `limited` names limits, added to `limits`, and each quantity in its canonical
/// form, as the spec is stored and shown; each resource it does not name, or quantity that does
/// not read, is a cause naming its field, `supported` saying what may be named.
pub(crate) fn read_quantities(
    at: &str,
    given: &BTreeMap<String, serde_json::Value>,
    limited: impl Fn(&str) -> Option<Limited>,
    supported: &str,
    limits: &mut Vec<QuotaLimit>,
    causes: &mut Vec<FieldError>,
) -> BTreeMap<String, String> {
    let mut shown = BTreeMap::new();
    for (resource, value) in given {
        let field = format!("{at}[{resource}]");
        let Some(limited) = limited(resource) else {
            causes.push(FieldError::new(
                field,
                format!("Unsupported value: {resource:?}: supported values: {supported}"),
            ));
            continue;
        };
        match quantity_of(value) {
            Ok(quantity) => {
                shown.insert(resource.clone(), quantity.to_string());
                limits.push(QuotaLimit {
                    limited,
                    max: quantity.value,
                });
            }
            Err(why) => causes.push(FieldError::new(field, why)),
        }
    }
    shown
}

/// The metadata of a stored object as the API shows it.
fn object_meta(object: &QuotaObject) -> ObjectMeta {
    ObjectMeta {
        name: object.name.clone(),
        namespace: Some(object.namespace.clone()),
        uid: object.uid.clone(),
        resource_version: object.resource_version.to_string(),
        creation_timestamp: Some(object.created_at),
        labels: object.labels.clone(),
        annotations: object.annotations.clone(),
        ..ObjectMeta::default()
    }
}

/// A stored spec, read back into the shape it was stored from.
fn stored_spec<T: DeserializeOwned>(object: &QuotaObject) -> ApiResult<T> {
    serde_json::from_str(&object.spec).map_err(ApiError::internal)
}

/// Quota objects of every namespace: the API's rules.
pub struct Quotas {
    pub store: Arc<dyn QuotaStore>,
    /// The decision function, and the audit log.
    pub auth: Arc<AuthContext>,
}

impl Quotas {
    /// The decision for `action` on the namespace, refused in Kubernetes' words with `verb`.
    fn require(
        &self,
        who: &Subject,
        action: Action,
        verb: &'static str,
        namespace: &str,
        resource: Resource,
        name: &str,
    ) -> ApiResult<()> {
        if self
            .auth
            .authorizer
            .allows(who, action, Target::namespace(namespace))
        {
            return Ok(());
        }
        Err(ApiError::forbidden(
            &who.display_name(),
            verb,
            resource,
            name,
            Some(namespace),
        ))
    }

    async fn usage_for<R: QuotaResource>(&self, namespace: &str) -> ApiResult<QuotaUsage> {
        Ok(if R::shows_usage() {
            self.store.quota_usage(namespace).await?
        } else {
            QuotaUsage::default()
        })
    }

    /// The namespace's objects of a kind, for its members.
    pub async fn list<R: QuotaResource>(
        &self,
        who: &Subject,
        namespace: &str,
    ) -> ApiResult<List<R>> {
        self.require(who, Action::Pull, "list", namespace, R::RESOURCE, "")?;
        let objects = self.store.quota_objects(R::KIND, namespace).await?;
        let usage = self.usage_for::<R>(namespace).await?;
        Ok(List {
            kind: R::LIST_KIND,
            api_version: CORE_API_VERSION,
            metadata: ListMeta::default(),
            items: objects
                .iter()
                .map(|object| R::render(object, &usage))
                .collect::<ApiResult<_>>()?,
        })
    }

    pub async fn get<R: QuotaResource>(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
    ) -> ApiResult<R> {
        self.require(who, Action::Pull, "get", namespace, R::RESOURCE, name)?;
        let object = self
            .store
            .quota_object(R::KIND, namespace, name)
            .await?
            .ok_or_else(|| ApiError::not_found(R::RESOURCE, name))?;
        R::render(&object, &self.usage_for::<R>(namespace).await?)
    }

    /// The object a request body describes, checked.
    fn checked<R: QuotaResource>(
        &self,
        namespace: &str,
        name: &str,
        body: &R,
    ) -> ApiResult<QuotaObject> {
        let meta = body.metadata();
        if !body.kind().is_empty() && body.kind() != R::KIND.as_str() {
            return Err(ApiError::BadRequest(format!(
                "the kind of the object ({}) does not match the resource ({})",
                body.kind(),
                R::KIND.as_str()
            )));
        }
        if let Some(given) = meta.namespace.as_deref()
            && !given.is_empty()
            && given != namespace
        {
            return Err(ApiError::BadRequest(format!(
                "the namespace of the object ({given}) does not match the namespace on the request ({namespace})"
            )));
        }
        let mut causes = Vec::new();
        if name.is_empty() {
            causes.push(FieldError::new(
                "metadata.name",
                "Required value: name is required",
            ));
        } else if !is_valid_namespace(name) {
            causes.push(FieldError::new(
                "metadata.name",
                format!(
                    "Invalid value: {name:?}: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
                ),
            ));
        }
        let checked = body.check();
        if let Err(spec_causes) = &checked {
            causes.extend(spec_causes.iter().cloned());
        }
        let (limits, spec) = match checked {
            Ok(checked) if causes.is_empty() => checked,
            _ => {
                return Err(ApiError::Invalid {
                    resource: R::RESOURCE,
                    name: name.to_owned(),
                    causes,
                });
            }
        };
        Ok(QuotaObject {
            kind: R::KIND,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid: uuid::Uuid::new_v4().to_string(),
            resource_version: 0,
            labels: meta.labels.clone(),
            annotations: meta.annotations.clone(),
            spec: spec.to_string(),
            limits,
            created_at: Utc::now(),
        })
    }

    /// Records a change of an object in the audit log, with what it limits now
    /// (`berth.io/storage=10Gi, ...`; nothing for a deletion).
    async fn audit(
        &self,
        who: &Subject,
        action: &'static str,
        namespace: &str,
        name: &str,
        object: Option<&QuotaObject>,
    ) {
        let target = format!("{namespace}/{name}");
        self.auth
            .audit_change(who, action, target, object.map(Self::summary))
            .await;
    }

    fn summary(object: &QuotaObject) -> String {
        object
            .limits
            .iter()
            .map(|limit| {
                let resource = match limit.limited.limit_type() {
                    Some(limit_type) => format!("{limit_type} {}", limit.limited.resource()),
                    None => limit.limited.resource().to_owned(),
                };
                format!("{resource}={}", limit.limited.quantity(limit.max))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub async fn create<R: QuotaResource>(
        &self,
        who: &Subject,
        namespace: &str,
        body: R,
    ) -> ApiResult<R> {
        let name = body.metadata().name.clone();
        self.require(
            who,
            Action::ManageQuotas,
            "create",
            namespace,
            R::RESOURCE,
            &name,
        )?;
        let object = self.checked(namespace, &name, &body)?;
        let stored = match self.store.create_quota_object(&object).await? {
            QuotaWrite::Written(stored) => stored,
            QuotaWrite::Exists => {
                return Err(ApiError::AlreadyExists {
                    resource: R::RESOURCE,
                    name,
                });
            }
            QuotaWrite::NotFound | QuotaWrite::Conflict => {
                return Err(ApiError::not_found(crate::kube::NAMESPACES, namespace));
            }
        };
        self.audit(who, R::AUDITED[0], namespace, &name, Some(&stored))
            .await;
        R::render(&stored, &self.usage_for::<R>(namespace).await?)
    }

    /// Replaces an object (`PUT`): at its current resourceVersion when the body gives one.
    pub async fn replace<R: QuotaResource>(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
        body: R,
    ) -> ApiResult<R> {
        self.require(
            who,
            Action::ManageQuotas,
            "update",
            namespace,
            R::RESOURCE,
            name,
        )?;
        let given = &body.metadata().name;
        if !given.is_empty() && given != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({given}) does not match the name on the URL ({name})"
            )));
        }
        let version = &body.metadata().resource_version;
        let expected = if version.is_empty() {
            None
        } else {
            Some(version.parse::<i64>().map_err(|_| {
                ApiError::invalid(
                    R::RESOURCE,
                    name,
                    FieldError::new(
                        "metadata.resourceVersion",
                        format!("Invalid value: {version:?}: not a resourceVersion"),
                    ),
                )
            })?)
        };
        let object = self.checked(namespace, name, &body)?;
        let stored = match self.store.replace_quota_object(&object, expected).await? {
            QuotaWrite::Written(stored) => stored,
            QuotaWrite::NotFound | QuotaWrite::Exists => {
                return Err(ApiError::not_found(R::RESOURCE, name));
            }
            QuotaWrite::Conflict => {
                return Err(ApiError::Conflict {
                    resource: R::RESOURCE,
                    name: name.to_owned(),
                });
            }
        };
        self.audit(who, R::AUDITED[1], namespace, name, Some(&stored))
            .await;
        R::render(&stored, &self.usage_for::<R>(namespace).await?)
    }

    /// A patch (`kubectl patch quota`, `kubectl apply`), written as a replace of the patched
    /// object.
    pub async fn patch<R: QuotaResource>(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
        patch: &Patch,
    ) -> ApiResult<R> {
        self.require(
            who,
            Action::ManageQuotas,
            "patch",
            namespace,
            R::RESOURCE,
            name,
        )?;
        patch
            .update(
                R::RESOURCE,
                name,
                |object: &R| &object.metadata().resource_version,
                || self.get::<R>(who, namespace, name),
                |patched| self.replace(who, namespace, name, patched),
            )
            .await
    }

    pub async fn delete<R: QuotaResource>(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
    ) -> ApiResult<Status> {
        self.require(
            who,
            Action::ManageQuotas,
            "delete",
            namespace,
            R::RESOURCE,
            name,
        )?;
        if !self
            .store
            .delete_quota_object(R::KIND, namespace, name)
            .await?
        {
            return Err(ApiError::not_found(R::RESOURCE, name));
        }
        self.audit(who, R::AUDITED[2], namespace, name, None).await;
        Ok(deleted(R::RESOURCE, name))
    }
}

// The HTTP surface: the same five handlers for each kind.

type Api = State<Arc<Quotas>>;

async fn list<R: QuotaResource>(
    State(api): Api,
    caller: Caller,
    Path(namespace): Path<String>,
) -> ApiResult<Json<List<R>>> {
    api.list::<R>(&caller.subject, &namespace).await.map(Json)
}

async fn create<R: QuotaResource>(
    State(api): Api,
    caller: Caller,
    Path(namespace): Path<String>,
    ApiJson(body): ApiJson<R>,
) -> Response {
    created(api.create(&caller.subject, &namespace, body).await)
}

async fn get_one<R: QuotaResource>(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    ok(api.get::<R>(&caller.subject, &namespace, &name).await)
}

async fn replace<R: QuotaResource>(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
    ApiJson(body): ApiJson<R>,
) -> Response {
    ok(api.replace(&caller.subject, &namespace, &name, body).await)
}

async fn patch<R: QuotaResource>(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
    patch: Patch,
) -> Response {
    ok(api
        .patch::<R>(&caller.subject, &namespace, &name, &patch)
        .await)
}

async fn delete<R: QuotaResource>(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    ok(api.delete::<R>(&caller.subject, &namespace, &name).await)
}

/// The routes of one kind, under `/api/v1/namespaces/{namespace}/<plural>`.
fn routes<R: QuotaResource>(router: Router<Arc<Quotas>>) -> Router<Arc<Quotas>> {
    let collection = format!("/api/v1/namespaces/{{namespace}}/{}", R::RESOURCE.plural);
    router
        .route(&collection, get(list::<R>).post(create::<R>))
        .route(
            &format!("{collection}/{{name}}"),
            get(get_one::<R>)
                .put(replace::<R>)
                .patch(patch::<R>)
                .delete(delete::<R>),
        )
}

pub fn router(api: Arc<Quotas>) -> Router {
    let router = routes::<ResourceQuota>(Router::new());
    routes::<LimitRange>(router).with_state(api)
}
