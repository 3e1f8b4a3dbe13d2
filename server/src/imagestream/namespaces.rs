//! Namespaces (`/api/v1/namespaces`): listed as their caller may see them, created by those the
//! registry lets create one (who become its admins) and deleted; and the checks other APIs make
//! that a namespace exists and that its caller administers it.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;

use super::watch::list_or_watch;
use super::{Api, ImageStreamApi};
use crate::auth::http::Caller;
use crate::auth::{Action, Subject, Target, Visible};
use crate::kube::{
    ApiError, ApiJson, ApiResult, CORE_API_VERSION, FieldError, List, ListMeta, NAMESPACES,
    Namespace, NamespaceSpec, NamespaceStatus, ObjectMeta, Page, Resource, Status, created, fill,
    ok,
};
use crate::limits::ClientAddress;
use crate::oci::is_valid_namespace;
use crate::storage::{EventKind, NamespaceRecord};

impl ImageStreamApi {
    /// The `Namespace` of a stored namespace.
    pub(super) fn namespace_object(record: &NamespaceRecord) -> Namespace {
        Namespace {
            kind: crate::kube::kinds::namespace(),
            api_version: crate::kube::kinds::core_api(),
            metadata: ObjectMeta {
                name: record.name.clone(),
                uid: record.uid.clone(),
                resource_version: record.resource_version.to_string(),
                creation_timestamp: Some(record.created_at),
                labels: record.labels.clone(),
                annotations: record.annotations.clone(),
                ..ObjectMeta::default()
            },
            spec: NamespaceSpec {
                finalizers: vec!["kubernetes".into()],
            },
            status: NamespaceStatus {
                phase: "Active".into(),
            },
        }
    }

    pub async fn list_namespaces(&self, who: &Subject, page: &Page) -> ApiResult<List<Namespace>> {
        const LIST: &str = "namespaces";
        let after = self.continue_tokens.start(page, LIST, &who.key())?;
        let version = self.list_version().await?;
        let visible = self.auth.authorizer.visible_namespaces(who);
        let store = &self.store;
        let (records, more) = fill(
            page.limit,
            after,
            visible != Visible::All,
            |after: Option<String>, count| async move {
                Ok(store.list_namespaces(after.as_deref(), count).await?)
            },
            |r: &NamespaceRecord| r.name.clone(),
            |r| visible.contains(&r.name),
        )
        .await?;
        Ok(List {
            kind: "NamespaceList",
            api_version: CORE_API_VERSION,
            metadata: ListMeta {
                resource_version: version,
                continue_token: self.next_token(
                    more,
                    LIST,
                    who,
                    records.last().map(|r| r.name.as_str()),
                ),
                ..ListMeta::default()
            },
            items: records.iter().map(Self::namespace_object).collect(),
        })
    }

    pub async fn get_namespace(&self, who: &Subject, name: &str) -> ApiResult<Namespace> {
        if !self.auth.authorizer.visible_namespaces(who).contains(name) {
            self.auth.authorizer.require(
                who,
                Action::Pull,
                Target::namespace(name),
                NAMESPACES,
                name,
            )?;
        }
        self.store
            .get_namespace(name)
            .await?
            .map(|r| Self::namespace_object(&r))
            .ok_or_else(|| ApiError::not_found(NAMESPACES, name))
    }

    pub async fn create_namespace(&self, who: &Subject, body: Namespace) -> ApiResult<Namespace> {
        let name = body.metadata.name;
        if !self.auth.authorizer.may_create_namespace(who) {
            return Err(ApiError::forbidden(
                &who.display_name(),
                "create",
                NAMESPACES,
                &name,
                None,
            ));
        }
        if !is_valid_namespace(&name) {
            return Err(ApiError::invalid(
                NAMESPACES,
                &name,
                FieldError::new(
                    "metadata.name",
                    "a namespace is 1 to 63 lowercase letters, digits and -, starting and ending with a letter or digit",
                ),
            ));
        }
        let record = self
            .store
            .create_namespace(&name, &body.metadata.labels, &body.metadata.annotations)
            .await?
            .ok_or(ApiError::AlreadyExists {
                resource: NAMESPACES,
                name: name.clone(),
            })?;
        self.auth.namespace_created(&name, who).await?;
        Ok(Self::namespace_object(&record))
    }

    pub async fn delete_namespace(&self, who: &Subject, name: &str) -> ApiResult<Status> {
        self.auth.authorizer.require(
            who,
            Action::Delete,
            Target::namespace(name),
            NAMESPACES,
            name,
        )?;
        if self.store.delete_namespace(name).await? {
            self.auth.authorizer.changed().await?;
            // Its service accounts and their tokens went with it.
            self.auth
                .credentials_changed(&format!("namespace {name}"))
                .await;
            self.audit(who, "namespace-delete", name).await;
            Ok(crate::kube::deleted(NAMESPACES, name))
        } else {
            Err(ApiError::not_found(NAMESPACES, name))
        }
    }

    /// Refuses all but the namespace's admins (who manage its access, secrets and webhooks);
    /// then not found unless the namespace exists (so others do not learn which exist).
    pub async fn require_namespace_admin(
        &self,
        who: &Subject,
        namespace: &str,
        resource: Resource,
        name: &str,
    ) -> ApiResult<()> {
        self.auth.authorizer.require(
            who,
            Action::ManageAccess,
            Target::namespace(namespace),
            resource,
            name,
        )?;
        self.require_namespace(namespace).await
    }

    /// Not found unless the namespace exists.
    pub async fn require_namespace(&self, namespace: &str) -> ApiResult<()> {
        if !is_valid_namespace(namespace) || self.store.get_namespace(namespace).await?.is_none() {
            return Err(ApiError::not_found(NAMESPACES, namespace));
        }
        Ok(())
    }
}

pub(super) async fn list_namespaces(
    State(api): Api,
    caller: Caller,
    address: ClientAddress,
    RawQuery(query): RawQuery,
) -> Response {
    list_or_watch(
        api,
        caller.subject,
        address,
        query,
        EventKind::Namespace,
        None,
        |api, who, page| async move { api.list_namespaces(&who, &page).await },
    )
    .await
}

pub(super) async fn create_namespace(
    State(api): Api,
    caller: Caller,
    ApiJson(body): ApiJson<Namespace>,
) -> Response {
    created(api.create_namespace(&caller.subject, body).await)
}

pub(super) async fn get_namespace(
    State(api): Api,
    caller: Caller,
    Path(name): Path<String>,
) -> Response {
    ok(api.get_namespace(&caller.subject, &name).await)
}

pub(super) async fn delete_namespace(
    State(api): Api,
    caller: Caller,
    Path(name): Path<String>,
) -> Response {
    ok(api.delete_namespace(&caller.subject, &name).await)
}
