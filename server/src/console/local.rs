//! The console's data source inside Berth: the console's data interface ([`app::api::ConsoleData`]) answered by the services
//! behind the HTTP APIs ([`ImageStreamApi`], [`AccessApi`], personal tokens, webhooks, pull
//! secrets), so that every decision is the one the APIs make for the same caller. Their answers
//! become views in `super::views`, their errors the console's in `super::errors`.

use std::collections::HashMap;
use std::sync::Arc;

use app::api::access::{AccessData, AccessView, ServiceAccountRow, WhoCanRow};
use app::api::images::{ImageData, ImageDetail, ReferrerRow};
use app::api::imports::{ImportData, ImportOutcome, ImportRequest};
use app::api::namespaces::{NamespaceData, NamespaceList, NamespaceSummary};
use app::api::pull_secrets::{PullSecretData, PullSecretRow};
use app::api::session::{SessionData, SessionInfo};
use app::api::streams::{StreamData, StreamDetail, StreamPage, StreamSort, StreamSummary};
use app::api::tokens::{NewToken, TokenData, TokenRow};
use app::api::webhooks::{DeliveryRow, WebhookData, WebhookRow};
use app::api::{ConsoleError, ConsoleResult, Permissions};
use async_trait::async_trait;

use super::forms::{
    import_body, import_outcomes, namespace_body, pin_to_image, tag_body, tag_source,
};
use super::session::{
    authenticated, caller, check_session_csrf, session, session_value, signed_in_user,
};
use super::views::{
    ImageParts, Images, binding_row, current_digests, delivery_row, image_detail, pretty_json,
    pull_secret_row, stream_detail, time, token_row,
};
use crate::auth::api::bindings::{BindingSubject, RoleBinding, RoleRef};
use crate::auth::api::{AccessApi, access_api_version};
use crate::auth::sign_in::SESSION_USER;
use crate::auth::{Action, AuthContext, Subject, Target, Visible};
use crate::imagestream::ImageStreamApi;
use crate::imagestream::names::{repository, split_stream_image};
use crate::kube::MAX_PAGE;
use crate::kube::{ApiError, IMAGE_STREAM_IMAGES, ObjectMeta, SECRETS};
use crate::oci::Digest;
use crate::registry::image_metadata::{ImageMetadata, MAX_CONFIG_BYTES};
use crate::storage::{BlobStore, MetadataStore, SummarySort, read_blob};

/// The services the console is answered from: the ones behind the APIs.
pub struct LocalConsoleData {
    pub image_streams: Arc<ImageStreamApi>,
    pub access: Arc<AccessApi>,
    pub metadata: Arc<dyn MetadataStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub auth: Arc<AuthContext>,
    pub importer: Arc<crate::import::importer::Importer>,
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    pub secrets: Arc<crate::secrets::api::RegistrySecrets>,
}

fn permissions(auth: &AuthContext, who: &Subject, target: Target<'_>) -> Permissions {
    let allows = |action| auth.authorizer.allows(who, action, target);
    Permissions {
        pull: allows(Action::Pull),
        push: allows(Action::Push),
        delete: allows(Action::Delete),
        manage_access: allows(Action::ManageAccess),
        // Pull secrets are the namespace admins' (`require_namespace_admin`).
        manage_secrets: allows(Action::ManageAccess),
    }
}

impl LocalConsoleData {
    async fn images(&self, digests: &[Digest]) -> ConsoleResult<Images> {
        let store = &self.image_streams.store;
        let mut images: HashMap<String, ImageMetadata> = store
            .get_images(digests)
            .await?
            .iter()
            .map(|record| (record.digest.to_string(), ImageMetadata::of(record)))
            .collect();
        let children: Vec<Digest> = images
            .values()
            .flat_map(|image| image.manifests.iter())
            .filter(|child| !images.contains_key(&child.digest))
            .filter_map(|child| child.digest.parse().ok())
            .collect();
        if !children.is_empty() {
            for record in store.get_images(&children).await? {
                images.insert(record.digest.to_string(), ImageMetadata::of(&record));
            }
        }
        Ok(Images(images))
    }

    /// The config of an image as stored, pretty-printed, when it is a JSON document of a
    /// readable size in the repository.
    async fn raw_config(
        &self,
        repository: &crate::oci::RepositoryName,
        image: &ImageMetadata,
    ) -> ConsoleResult<Option<String>> {
        let Some(digest) = image
            .config
            .as_deref()
            .and_then(|d| d.parse::<Digest>().ok())
        else {
            return Ok(None);
        };
        match self.metadata.blob_size(repository, &digest).await? {
            Some(size) if size <= MAX_CONFIG_BYTES => {
                let bytes = read_blob(self.blobs.as_ref(), &digest, size).await?;
                Ok(pretty_json(&bytes))
            }
            _ => Ok(None),
        }
    }
}

#[async_trait]
impl SessionData for LocalConsoleData {
    async fn session(&self) -> ConsoleResult<SessionInfo> {
        let registry_host = self
            .image_streams
            .public_host
            .clone()
            .unwrap_or_else(|| self.image_streams.registry_host.clone());
        let (user, csrf_token) = signed_in_user().await?;
        Ok(SessionInfo {
            user,
            csrf_token,
            registry_host,
            upstream: None,
        })
    }

    async fn check_csrf(&self, token: &str) -> ConsoleResult<()> {
        let Some(session) = session() else {
            return Err(ConsoleError::SignInRequired);
        };
        if session_value(&session, SESSION_USER).await?.is_none() {
            return Err(ConsoleError::SignInRequired);
        }
        check_session_csrf(&session, token).await
    }
}

#[async_trait]
impl NamespaceData for LocalConsoleData {
    async fn namespaces(&self) -> ConsoleResult<NamespaceList> {
        let who = caller().await?;
        let authorizer = &self.auth.authorizer;
        let visible = authorizer.visible_namespaces(&who);
        let namespaces = self
            .image_streams
            .store
            .namespace_usage()
            .await?
            .into_iter()
            .filter(|usage| visible.contains(&usage.name))
            .map(|usage| NamespaceSummary {
                can_delete: authorizer.allows(&who, Action::Delete, Target::namespace(&usage.name)),
                name: usage.name,
                streams: Some(usage.streams),
                size: Some(usage.size),
                created: time(usage.created_at),
            })
            .collect();
        Ok(NamespaceList {
            namespaces,
            can_create: authorizer.may_create_namespace(&who),
        })
    }

    async fn create_namespace(&self, name: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.image_streams
            .create_namespace(&who, namespace_body(name))
            .await?;
        Ok(())
    }

    async fn delete_namespace(&self, name: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.image_streams.delete_namespace(&who, name).await?;
        Ok(())
    }
}

#[async_trait]
impl StreamData for LocalConsoleData {
    async fn streams(
        &self,
        namespace: &str,
        filter: &str,
        sort: StreamSort,
        offset: u64,
        limit: u32,
    ) -> ConsoleResult<StreamPage> {
        let who = caller().await?;
        // As the API lists streams: refused when none could be seen, then not found.
        let visible = self.image_streams.visible_streams(&who, namespace)?;
        self.image_streams.require_namespace(namespace).await?;
        let only: Option<Vec<String>> = match visible {
            Visible::All => None,
            Visible::Only(names) => Some(names.into_iter().collect()),
        };
        let sort = match sort {
            StreamSort::Name => SummarySort::Name,
            StreamSort::Updated => SummarySort::Updated,
            StreamSort::Size => SummarySort::Size,
        };
        let (page, total) = self
            .image_streams
            .store
            .stream_summaries(
                namespace,
                filter.trim(),
                only.as_deref(),
                sort,
                offset,
                limit.clamp(1, MAX_PAGE),
            )
            .await?;
        Ok(StreamPage {
            namespace: namespace.to_owned(),
            streams: page
                .into_iter()
                .map(|s| StreamSummary {
                    name: s.name,
                    tags: s.tags,
                    size: Some(s.size),
                    updated: s.updated.map(time),
                    latest_tag: s.latest_tag,
                })
                .collect(),
            total,
            offset,
            permissions: permissions(&self.auth, &who, Target::namespace(namespace)),
        })
    }

    async fn stream(&self, namespace: &str, stream: &str) -> ConsoleResult<StreamDetail> {
        let who = caller().await?;
        let object = self
            .image_streams
            .get_stream(&who, namespace, stream)
            .await?;
        let images = self.images(&current_digests(&object)).await?;
        Ok(stream_detail(
            namespace,
            stream,
            &object,
            &images,
            permissions(&self.auth, &who, Target::stream(namespace, stream)),
        ))
    }

    async fn tag(&self, namespace: &str, stream: &str, tag: &str, from: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        let mut source = tag_source(stream, from)?;
        if source.kind == "ImageStreamTag" {
            let current = self
                .image_streams
                .get_tag(&who, namespace, &source.name)
                .await?;
            source = pin_to_image(stream, source, current.image)?;
        }
        // As the API's PUT: the tag is created, or moved when it exists.
        self.image_streams
            .put_tag(
                &who,
                namespace,
                &format!("{stream}:{}", tag.trim()),
                tag_body(source),
                false,
            )
            .await?;
        Ok(())
    }

    async fn untag(&self, namespace: &str, stream: &str, tag: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.image_streams
            .delete_tag(&who, namespace, &format!("{stream}:{tag}"))
            .await?;
        Ok(())
    }

    async fn delete_stream(&self, namespace: &str, stream: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.image_streams
            .delete_stream(&who, namespace, stream)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl ImportData for LocalConsoleData {
    async fn import(&self, request: ImportRequest) -> ConsoleResult<Vec<ImportOutcome>> {
        let who = caller().await?;
        let answer = self
            .importer
            .import(&who, request.namespace.trim(), import_body(&request))
            .await?;
        import_outcomes(answer)
    }
}

#[async_trait]
impl ImageData for LocalConsoleData {
    async fn image(
        &self,
        namespace: &str,
        stream: &str,
        digest: &str,
    ) -> ConsoleResult<ImageDetail> {
        let who = caller().await?;
        let name = format!("{stream}@{digest}");
        // The API's decision (and not found), then what the page shows of the image.
        self.image_streams
            .get_stream_image(&who, namespace, &name)
            .await?;
        let (_, digest) = split_stream_image(&name)?;
        let repository = repository(namespace, stream)?;
        let record = self
            .image_streams
            .store
            .image_in_repository(&repository, &digest)
            .await?
            .ok_or_else(|| ApiError::not_found(IMAGE_STREAM_IMAGES, &name))?;
        let image = ImageMetadata::of(&record);
        let images = self.images(std::slice::from_ref(&digest)).await?;
        let object = self
            .image_streams
            .get_stream(&who, namespace, stream)
            .await?;
        let digest_text = digest.to_string();
        let referrers = self
            .metadata
            .referrers(&repository, &digest)
            .await?
            .into_iter()
            .map(|r| ReferrerRow {
                digest: r.digest.to_string(),
                artifact_type: r.artifact_type.unwrap_or(r.media_type),
                size: r.size,
            })
            .collect();
        let raw_manifest = self
            .metadata
            .manifest_by_digest(&repository, &digest)
            .await?
            .map(|m| {
                pretty_json(&m.content)
                    .unwrap_or_else(|| String::from_utf8_lossy(&m.content).into_owned())
            })
            .unwrap_or_default();
        let raw_config = self.raw_config(&repository, &image).await?;
        Ok(image_detail(ImageParts {
            namespace,
            stream,
            digest: &digest_text,
            media_type: record.media_type,
            image: &image,
            images: &images,
            object: &object,
            referrers,
            raw_manifest,
            raw_config,
        }))
    }
}

#[async_trait]
impl WebhookData for LocalConsoleData {
    async fn webhooks(&self, namespace: &str) -> ConsoleResult<Vec<WebhookRow>> {
        let who = caller().await?;
        let mut rows = Vec::new();
        for webhook in self.webhooks.list(&who, namespace).await?.items {
            let name = webhook.metadata.name;
            let deliveries = self
                .webhooks
                .deliveries(&who, namespace, &name, 20)
                .await?
                .items
                .into_iter()
                .map(delivery_row)
                .collect();
            rows.push(WebhookRow {
                name,
                url: webhook.spec.url,
                events: webhook.spec.events,
                format: webhook.spec.format,
                deliveries,
            });
        }
        Ok(rows)
    }

    async fn create_webhook(
        &self,
        namespace: &str,
        name: &str,
        url: &str,
        events: &str,
        format: &str,
    ) -> ConsoleResult<Option<String>> {
        let who = caller().await?;
        let webhook = crate::webhooks::Webhook {
            metadata: ObjectMeta {
                name: name.trim().to_owned(),
                ..ObjectMeta::default()
            },
            spec: crate::webhooks::WebhookSpec {
                url: url.trim().to_owned(),
                events: events
                    .split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned)
                    .collect(),
                format: format.to_owned(),
                secret: None,
            },
            ..crate::webhooks::Webhook::default()
        };
        let created = self.webhooks.create(&who, namespace, webhook).await?;
        Ok(created.spec.secret)
    }

    async fn delete_webhook(&self, namespace: &str, name: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.webhooks.delete(&who, namespace, name).await?;
        Ok(())
    }

    async fn redeliver_webhook(
        &self,
        namespace: &str,
        name: &str,
        id: &str,
    ) -> ConsoleResult<DeliveryRow> {
        let who = caller().await?;
        let made = self.webhooks.redeliver(&who, namespace, name, id).await?;
        Ok(delivery_row(made))
    }
}

#[async_trait]
impl PullSecretData for LocalConsoleData {
    async fn pull_secrets(&self, namespace: &str) -> ConsoleResult<Vec<PullSecretRow>> {
        let who = caller().await?;
        Ok(self
            .secrets
            .list(&who, namespace)
            .await?
            .items
            .iter()
            .map(pull_secret_row)
            .collect())
    }

    async fn create_pull_secret(
        &self,
        namespace: &str,
        name: &str,
        registry: &str,
        username: &str,
        password: &str,
    ) -> ConsoleResult<PullSecretRow> {
        let who = caller().await?;
        // Refused before the form is read, as the API refuses before it reads a body.
        self.image_streams
            .require_namespace_admin(&who, namespace, SECRETS, name.trim())
            .await?;
        let secret = crate::secrets::object::pull_secret(name, registry, username, password)?;
        let stored = self.secrets.create(&who, namespace, secret).await?;
        Ok(pull_secret_row(&stored))
    }

    async fn delete_pull_secret(&self, namespace: &str, name: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.secrets.delete(&who, namespace, name).await?;
        Ok(())
    }
}

#[async_trait]
impl AccessData for LocalConsoleData {
    async fn access(&self, namespace: &str, stream: Option<&str>) -> ConsoleResult<AccessView> {
        let who = caller().await?;
        let bindings = self
            .access
            .list_bindings(&who, Some(namespace), stream)
            .await?
            .into_iter()
            .map(|b| binding_row(b, namespace))
            .collect();
        let target = Target {
            namespace: Some(namespace),
            stream,
        };
        let who_can = |subjects: Vec<(String, String, crate::auth::Role)>| {
            subjects
                .into_iter()
                .map(|(kind, name, role)| WhoCanRow {
                    // As the bindings name subjects: `User:alice`, `ServiceAccount:ci:robot`.
                    subject: format!("{kind}:{name}"),
                    role: role.as_str().to_owned(),
                })
                .collect::<Vec<_>>()
        };
        let who_can_pull = who_can(self.access.who_can(&who, Action::Pull, target).await?);
        let who_can_push = who_can(self.access.who_can(&who, Action::Push, target).await?);
        // Service accounts belong to the namespace: its page shows them, a stream's does not.
        let mut service_accounts = Vec::new();
        if stream.is_none() {
            for account in self.access.service_accounts(&who, namespace).await? {
                let tokens = self
                    .access
                    .service_account_tokens(&who, namespace, &account.name)
                    .await?;
                service_accounts.push(ServiceAccountRow {
                    name: account.name,
                    tokens: tokens.iter().map(token_row).collect(),
                });
            }
        }
        Ok(AccessView {
            namespace: namespace.to_owned(),
            stream: stream.map(str::to_owned),
            bindings,
            who_can_pull,
            who_can_push,
            service_accounts,
        })
    }

    async fn add_binding(
        &self,
        namespace: &str,
        stream: Option<&str>,
        role: &str,
        subject_kind: &str,
        subject_name: &str,
    ) -> ConsoleResult<()> {
        let who = caller().await?;
        let subject_kind = subject_kind.trim();
        let subject_name = subject_name.trim();
        // A service account is of this namespace unless named `namespace:name` (or
        // `system:serviceaccount:namespace:name`).
        let subject = if subject_kind == "ServiceAccount" {
            let name = subject_name
                .strip_prefix("system:serviceaccount:")
                .unwrap_or(subject_name);
            let (account_namespace, name) = name.split_once(':').unwrap_or((namespace, name));
            BindingSubject {
                kind: subject_kind.to_owned(),
                name: name.to_owned(),
                namespace: Some(account_namespace.to_owned()),
            }
        } else {
            BindingSubject {
                kind: subject_kind.to_owned(),
                name: subject_name.to_owned(),
                namespace: None,
            }
        };
        let body = RoleBinding {
            kind: "RoleBinding".into(),
            api_version: access_api_version(),
            // No name: the API names it after its role and subject.
            metadata: ObjectMeta::default(),
            role_ref: RoleRef {
                name: role.trim().to_owned(),
            },
            subject,
            image_stream: stream
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        };
        self.access
            .create_binding(&who, Some(namespace), body)
            .await?;
        Ok(())
    }

    async fn remove_binding(&self, namespace: &str, name: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.access
            .delete_binding(&who, Some(namespace), name)
            .await?;
        Ok(())
    }

    async fn create_service_account(&self, namespace: &str, name: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.access
            .create_service_account(&who, namespace, name.trim())
            .await?;
        Ok(())
    }

    async fn create_service_account_token(
        &self,
        namespace: &str,
        account: &str,
    ) -> ConsoleResult<NewToken> {
        let who = authenticated().await?;
        let (record, secret) = self
            .access
            .create_service_account_token(&who, namespace, account, "", None)
            .await?;
        Ok(NewToken {
            token: token_row(&record),
            secret,
        })
    }

    async fn revoke_service_account_token(
        &self,
        namespace: &str,
        account: &str,
        uid: &str,
    ) -> ConsoleResult<()> {
        let who = caller().await?;
        self.access
            .revoke_service_account_token(&who, namespace, account, uid)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl TokenData for LocalConsoleData {
    async fn tokens(&self) -> ConsoleResult<Vec<TokenRow>> {
        let who = caller().await?;
        Ok(self
            .access
            .personal_tokens(&who)
            .await?
            .iter()
            .map(token_row)
            .collect())
    }

    async fn create_token(
        &self,
        name: &str,
        expires_in_days: Option<u32>,
    ) -> ConsoleResult<NewToken> {
        let who = authenticated().await?;
        let (record, secret) = self
            .access
            .create_personal_token(&who, name, expires_in_days.map(u64::from))
            .await?;
        Ok(NewToken {
            token: token_row(&record),
            secret,
        })
    }

    async fn revoke_token(&self, uid: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.access.revoke_personal_token(&who, uid).await?;
        Ok(())
    }
}
