//! Trusted public keys: per-namespace `TrustedKey`s at
//! `/apis/berth.io/v1/namespaces/{ns}/trustedkeys`, managed by the namespace's admins as
//! immutability rules and webhooks are (`ImageStreamApi::require_namespace_admin`, every change
//! audited). `spec.publicKey` is a PEM `PUBLIC KEY` (cosign's `cosign.pub`), ECDSA P-256 or
//! Ed25519, checked at creation with the reason in a 422; `status` says which kind and its
//! fingerprint. Keys are not updated (delete and create again). [`TrustedKeys::keys_for`] gives
//! the keys cosign signatures of the namespace's images are verified with.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::keys::{PublicKey, read_pem_public_key};
use crate::auth::Subject;
use crate::auth::http::Caller;
use crate::imagestream::ImageStreamApi;
use crate::kube::{
    ApiError, ApiJson, ApiResult, FieldError, List, ListMeta, ObjectMeta, Status, TRUSTED_KEYS,
    deleted,
};
use crate::oci::is_valid_namespace;
use crate::storage::trusted_keys::{TrustedKeyRecord, TrustedKeyStore};

pub const API_VERSION: &str = "berth.io/v1";
pub const KIND: &str = "TrustedKey";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustedKey {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: TrustedKeySpec,
    /// Computed by the server; ignored when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TrustedKeyStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustedKeySpec {
    /// A PEM `PUBLIC KEY` block.
    #[serde(default)]
    pub public_key: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustedKeyStatus {
    /// `ECDSA P-256` or `Ed25519`.
    pub algorithm: String,
    /// SHA-256 of the key's DER, hex.
    pub fingerprint: String,
}

fn key_object(record: &TrustedKeyRecord) -> TrustedKey {
    let status = read_pem_public_key(&record.public_key)
        .ok()
        .map(|read| TrustedKeyStatus {
            algorithm: read.key.algorithm().into(),
            fingerprint: read.fingerprint,
        });
    TrustedKey {
        api_version: API_VERSION.into(),
        kind: KIND.into(),
        metadata: ObjectMeta {
            name: record.name.clone(),
            namespace: Some(record.namespace.clone()),
            uid: record.uid.clone(),
            resource_version: "1".into(),
            creation_timestamp: Some(record.created_at),
            ..ObjectMeta::default()
        },
        spec: TrustedKeySpec {
            public_key: record.public_key.clone(),
        },
        status,
    }
}

/// Trusted keys of every namespace: the API's rules.
pub struct TrustedKeys {
    store: Arc<dyn TrustedKeyStore>,
    /// Namespaces and the decision function with its Forbidden answer.
    image_streams: Arc<ImageStreamApi>,
}

impl TrustedKeys {
    pub fn new(store: Arc<dyn TrustedKeyStore>, image_streams: Arc<ImageStreamApi>) -> Self {
        TrustedKeys {
            store,
            image_streams,
        }
    }

    async fn require_admin(&self, who: &Subject, namespace: &str, name: &str) -> ApiResult<()> {
        self.image_streams
            .require_namespace_admin(who, namespace, TRUSTED_KEYS, name)
            .await
    }

    async fn audit(&self, who: &Subject, action: &'static str, namespace: &str, name: &str) {
        self.image_streams
            .auth
            .audit_change(who, action, format!("{namespace}/{name}"), None)
            .await;
    }

    pub async fn create(
        &self,
        who: &Subject,
        namespace: &str,
        key: TrustedKey,
    ) -> ApiResult<TrustedKey> {
        let name = key.metadata.name.clone();
        self.require_admin(who, namespace, &name).await?;
        if let Some(given) = key.metadata.namespace.as_deref()
            && !given.is_empty()
            && given != namespace
        {
            return Err(ApiError::BadRequest(format!(
                "the namespace of the object ({given}) does not match the namespace on the request ({namespace})"
            )));
        }
        let mut causes = Vec::new();
        if !is_valid_namespace(&name) {
            causes.push(FieldError::new(
                "metadata.name",
                format!(
                    "{name:?} is not a valid name: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
                ),
            ));
        }
        if let Err(err) = read_pem_public_key(&key.spec.public_key) {
            causes.push(FieldError::new("spec.publicKey", err.to_string()));
        }
        if !causes.is_empty() {
            return Err(ApiError::Invalid {
                resource: TRUSTED_KEYS,
                name,
                causes,
            });
        }
        let record = TrustedKeyRecord {
            namespace: namespace.to_owned(),
            name: name.clone(),
            uid: uuid::Uuid::new_v4().to_string(),
            public_key: key.spec.public_key.trim().to_owned() + "\n",
            created_at: Utc::now(),
        };
        if !self.store.put_trusted_key(&record).await? {
            return Err(ApiError::AlreadyExists {
                resource: TRUSTED_KEYS,
                name,
            });
        }
        self.audit(who, "trustedkey-create", namespace, &name).await;
        Ok(key_object(&record))
    }

    pub async fn list(&self, who: &Subject, namespace: &str) -> ApiResult<List<TrustedKey>> {
        self.require_admin(who, namespace, "").await?;
        let records = self.store.trusted_keys(namespace).await?;
        Ok(List {
            kind: "TrustedKeyList",
            api_version: API_VERSION,
            metadata: ListMeta::default(),
            items: records.iter().map(key_object).collect(),
        })
    }

    pub async fn get(&self, who: &Subject, namespace: &str, name: &str) -> ApiResult<TrustedKey> {
        self.require_admin(who, namespace, name).await?;
        self.store
            .trusted_keys(namespace)
            .await?
            .iter()
            .find(|record| record.name == name)
            .map(key_object)
            .ok_or_else(|| ApiError::not_found(TRUSTED_KEYS, name))
    }

    pub async fn delete(&self, who: &Subject, namespace: &str, name: &str) -> ApiResult<Status> {
        self.require_admin(who, namespace, name).await?;
        if !self.store.delete_trusted_key(namespace, name).await? {
            return Err(ApiError::not_found(TRUSTED_KEYS, name));
        }
        self.audit(who, "trustedkey-delete", namespace, name).await;
        Ok(deleted(TRUSTED_KEYS, name))
    }

    /// The keys the namespace trusts, by name, for verifying its images' signatures. For a
    /// caller already allowed to pull the image: the verdict names the key, never its text.
    pub async fn keys_for(&self, namespace: &str) -> ApiResult<Vec<(String, PublicKey)>> {
        Ok(self
            .store
            .trusted_keys(namespace)
            .await?
            .into_iter()
            .filter_map(|record| {
                read_pem_public_key(&record.public_key)
                    .ok()
                    .map(|read| (record.name, read.key))
            })
            .collect())
    }
}

// The HTTP surface.

type Api = State<Arc<TrustedKeys>>;

async fn list(
    State(api): Api,
    caller: Caller,
    Path(namespace): Path<String>,
) -> ApiResult<Json<List<TrustedKey>>> {
    api.list(&caller.subject, &namespace).await.map(Json)
}

async fn create(
    State(api): Api,
    caller: Caller,
    Path(namespace): Path<String>,
    ApiJson(body): ApiJson<TrustedKey>,
) -> ApiResult<(StatusCode, Json<TrustedKey>)> {
    let created = api.create(&caller.subject, &namespace, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn get_one(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<TrustedKey>> {
    api.get(&caller.subject, &namespace, &name).await.map(Json)
}

async fn delete(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<Status>> {
    api.delete(&caller.subject, &namespace, &name)
        .await
        .map(Json)
}

pub fn router(keys: Arc<TrustedKeys>) -> Router {
    Router::new()
        .route(
            "/apis/berth.io/v1/namespaces/{namespace}/trustedkeys",
            get(list).post(create),
        )
        .route(
            "/apis/berth.io/v1/namespaces/{namespace}/trustedkeys/{name}",
            get(get_one).delete(delete),
        )
        .with_state(keys)
}
