//! Webhooks: per-namespace subscriptions to the event log, at
//! `/apis/berth.io/v1/namespaces/{ns}/webhooks`.
//!
//! - A subscription names a URL (http or https, without credentials), the events wanted
//!   (`push`, `delete`, `imagestream`; none for all), a format (`distribution`, or
//!   `cloudevents`) and a secret. The secret is given at creation or generated and shown once,
//!   then kept sealed under the server's key for this webhook ([`SealedFor::Webhook`]) and never
//!   shown again.
//! - Managing subscriptions is the namespace admin's: `manage-access` on the namespace, decided
//!   by the one authorizer through [`ImageStreamApi::require_namespace_admin`].
//! - A subscription is changed by PUT or PATCH (URL, events, format, `disabled`; the secret is
//!   kept unless one is given), its URL checked as a new one's is, egress policy included; a
//!   new secret is made by `POST …/{name}/secret` and shown in that answer only. A disabled
//!   subscription gets no deliveries for events while it is, and its pending ones wait.
//! - A finished delivery (delivered, or failed for good) can be sent again by hand: a new
//!   pending delivery of the same event with the same body, which the dispatcher sends like
//!   any other (after the subscription's older pending ones); and a test event (`ping`,
//!   `POST …/{name}/ping`) is sent the same way.
//! - `payload.rs` says what an event is sent as, and signs it; `delivery.rs` turns the log into
//!   deliveries and sends them with retries; `deliveries.rs` is the deliveries subresource
//!   (listed, sent again); the router is here.

pub mod deliveries;
pub mod delivery;
pub mod payload;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use self::payload::{EventName, Format};
use crate::auth::Subject;
use crate::auth::http::Caller;
use crate::imagestream::ImageStreamApi;
use crate::kube::ApiJson;
use crate::kube::Patch;
use crate::kube::{ApiError, ApiResult, FieldError, WEBHOOKS, deleted};
use crate::kube::{List, ListMeta, ObjectMeta, Status};
use crate::oci::is_valid_namespace;
use crate::secrets::key::SecretsKey;
use crate::secrets::sealing::{Sealed, SealedFor, SealingError};
use crate::storage::auth::NewAudit;
use crate::storage::webhooks::{WebhookChange, WebhookRecord, WebhookStore};

pub use delivery::{Dispatcher, RetryPolicy};

pub const API_VERSION: &str = "berth.io/v1";
const MAX_URL_BYTES: usize = 2048;
const MAX_SECRET_BYTES: usize = 1024;

/// A subscription, as the API shows and takes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: WebhookSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSpec {
    #[serde(default)]
    pub url: String,
    /// `push`, `delete`, `imagestream`; empty for all.
    #[serde(default)]
    pub events: Vec<String>,
    /// `distribution` (the default) or `cloudevents`.
    #[serde(default)]
    pub format: String,
    /// Given at creation, or generated and shown in the creation's answer only. Given in an
    /// update, it replaces the secret; left out, the secret is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// No deliveries are made for events while it is true, and pending ones wait.
    #[serde(default)]
    pub disabled: bool,
}

/// A receiver's URL as stored: http or https, with a host, without credentials.
fn check_url(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("Required value: the URL to send events to".into());
    }
    if text.len() > MAX_URL_BYTES {
        return Err(format!("Too long: must have at most {MAX_URL_BYTES} bytes"));
    }
    // The text is not repeated back: it may hold credentials.
    let url = reqwest::Url::parse(text).map_err(|err| format!("is not a URL: {err}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "Unsupported value: {:?}: an http or https URL is needed",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "must not hold credentials (user:password@): receivers check the signature instead"
                .into(),
        );
    }
    Ok(url.to_string())
}

/// A subscription's spec, checked: every field at fault is named.
struct Checked {
    url: String,
    events: Vec<EventName>,
    format: Format,
}

fn check(name: &str, spec: &WebhookSpec) -> Result<Checked, Vec<FieldError>> {
    let mut causes = Vec::new();
    // Names are RFC 1123 labels, as namespace names are.
    if !is_valid_namespace(name) {
        causes.push(FieldError::new(
            "metadata.name",
            format!(
                "{name:?} is not a valid name: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
            ),
        ));
    }
    let url = check_url(&spec.url)
        .map_err(|why| causes.push(FieldError::new("spec.url", why)))
        .unwrap_or_default();
    let mut events = Vec::new();
    for (index, event) in spec.events.iter().enumerate() {
        match EventName::parse(event) {
            Some(name) => events.push(name),
            None => causes.push(FieldError::new(
                format!("spec.events[{index}]"),
                format!(
                    "Unsupported value: {event:?}: supported values: \"push\", \"delete\", \"imagestream\""
                ),
            )),
        }
    }
    events.sort();
    events.dedup();
    let format = if spec.format.is_empty() {
        Format::Distribution
    } else {
        Format::parse(&spec.format).unwrap_or_else(|| {
            causes.push(FieldError::new(
                "spec.format",
                format!(
                    "Unsupported value: {:?}: supported values: \"distribution\", \"cloudevents\"",
                    spec.format
                ),
            ));
            Format::Distribution
        })
    };
    if let Some(secret) = &spec.secret
        && (secret.is_empty() || secret.len() > MAX_SECRET_BYTES)
    {
        causes.push(FieldError::new(
            "spec.secret",
            format!("must have 1 to {MAX_SECRET_BYTES} bytes, or be left out to have one made"),
        ));
    }
    if causes.is_empty() {
        Ok(Checked {
            url,
            events,
            format,
        })
    } else {
        Err(causes)
    }
}

/// A signing secret made for a subscription: 32 random bytes in hex.
fn new_secret() -> String {
    hex::encode(crate::auth::credentials::new_key())
}

/// A subscription's signing secret, decrypted.
pub(crate) fn open_secret(
    key: &SecretsKey,
    webhook: &WebhookRecord,
) -> Result<Vec<u8>, SealingError> {
    key.open(
        SealedFor::Webhook {
            namespace: &webhook.namespace,
            name: &webhook.name,
        },
        &webhook.secret_nonce,
        &webhook.secret_ciphertext,
    )
}

/// A stored subscription as the API shows it: never its secret.
fn webhook_object(record: &WebhookRecord) -> Webhook {
    Webhook {
        api_version: API_VERSION.into(),
        kind: "Webhook".into(),
        metadata: ObjectMeta {
            name: record.name.clone(),
            namespace: Some(record.namespace.clone()),
            uid: record.uid.clone(),
            creation_timestamp: Some(record.created_at),
            ..ObjectMeta::default()
        },
        spec: WebhookSpec {
            url: record.url.clone(),
            events: record.events.clone(),
            format: record.format.clone(),
            secret: None,
            disabled: record.disabled,
        },
    }
}

/// Subscriptions of every namespace: the API's rules.
pub struct Webhooks {
    store: Arc<dyn WebhookStore>,
    key: SecretsKey,
    /// Namespaces, the event log's position, and the decision function with its Forbidden
    /// answer, as the image stream API has them.
    image_streams: Arc<ImageStreamApi>,
    /// Woken when a delivery is made by hand.
    dispatcher: Arc<Dispatcher>,
}

impl Webhooks {
    pub fn new(
        store: Arc<dyn WebhookStore>,
        key: SecretsKey,
        image_streams: Arc<ImageStreamApi>,
        dispatcher: Arc<Dispatcher>,
    ) -> Self {
        Webhooks {
            store,
            key,
            image_streams,
            dispatcher,
        }
    }

    async fn require_admin(&self, who: &Subject, namespace: &str, name: &str) -> ApiResult<()> {
        self.image_streams
            .require_namespace_admin(who, namespace, WEBHOOKS, name)
            .await
    }

    async fn audit(
        &self,
        who: &Subject,
        action: &'static str,
        namespace: &str,
        name: &str,
        detail: Option<String>,
    ) {
        self.image_streams
            .auth
            .audit(NewAudit {
                actor: who.display_name(),
                action,
                target: format!("{namespace}/{name}"),
                success: true,
                address: None,
                detail,
            })
            .await;
    }

    /// A spec's fields checked, and its URL against the egress policy: an address the policy
    /// refuses is refused now; a name, when a delivery resolves it.
    fn checked(&self, name: &str, spec: &WebhookSpec) -> ApiResult<Checked> {
        check(name, spec)
            .and_then(
                |checked| match self.dispatcher.check_destination(&checked.url) {
                    Ok(()) => Ok(checked),
                    Err(refused) => Err(vec![FieldError::new("spec.url", refused.to_string())]),
                },
            )
            .map_err(|causes| ApiError::Invalid {
                resource: WEBHOOKS,
                name: name.to_owned(),
                causes,
            })
    }

    /// A signing secret sealed for this subscription: (nonce, ciphertext).
    fn seal(&self, namespace: &str, name: &str, secret: &str) -> ApiResult<(Vec<u8>, Vec<u8>)> {
        let Sealed { nonce, ciphertext } = self
            .key
            .seal(SealedFor::Webhook { namespace, name }, secret.as_bytes())?;
        Ok((nonce, ciphertext))
    }

    async fn change(
        &self,
        namespace: &str,
        name: &str,
        change: &WebhookChange,
    ) -> ApiResult<WebhookRecord> {
        self.store
            .change_webhook(namespace, name, change)
            .await?
            .ok_or_else(|| ApiError::not_found(WEBHOOKS, name))
    }

    async fn record(&self, namespace: &str, name: &str) -> ApiResult<WebhookRecord> {
        self.store
            .webhook(namespace, name)
            .await?
            .ok_or_else(|| ApiError::not_found(WEBHOOKS, name))
    }

    /// Stores a subscription for the events that follow; answers with it, and with its secret
    /// when one was made.
    pub async fn create(
        &self,
        who: &Subject,
        namespace: &str,
        webhook: Webhook,
    ) -> ApiResult<Webhook> {
        let name = webhook.metadata.name.clone();
        self.require_admin(who, namespace, &name).await?;
        if let Some(given) = webhook.metadata.namespace.as_deref()
            && !given.is_empty()
            && given != namespace
        {
            return Err(ApiError::BadRequest(format!(
                "the namespace of the object ({given}) does not match the namespace on the request ({namespace})"
            )));
        }
        let checked = self.checked(&name, &webhook.spec)?;
        let (secret, made) = match webhook.spec.secret {
            Some(secret) => (secret, false),
            None => (new_secret(), true),
        };
        let (secret_nonce, secret_ciphertext) = self.seal(namespace, &name, &secret)?;
        let record = WebhookRecord {
            id: 0,
            namespace: namespace.to_owned(),
            name: name.clone(),
            uid: uuid::Uuid::new_v4().to_string(),
            url: checked.url,
            events: checked
                .events
                .iter()
                .map(|e| e.as_str().to_owned())
                .collect(),
            format: checked.format.as_str().to_owned(),
            secret_nonce,
            secret_ciphertext,
            // The store reads the log's newest entry as it stores the subscription.
            since_event: 0,
            created_at: Utc::now(),
            disabled: webhook.spec.disabled,
        };
        if !self.store.put_webhook(&record).await? {
            return Err(ApiError::AlreadyExists {
                resource: WEBHOOKS,
                name,
            });
        }
        self.audit(who, "webhook-create", namespace, &name, None)
            .await;
        let mut shown = webhook_object(&record);
        shown.spec.secret = made.then_some(secret);
        Ok(shown)
    }

    pub async fn list(&self, who: &Subject, namespace: &str) -> ApiResult<List<Webhook>> {
        self.require_admin(who, namespace, "").await?;
        let records = self.store.webhooks(namespace).await?;
        Ok(List {
            kind: "WebhookList",
            api_version: API_VERSION,
            metadata: ListMeta::default(),
            items: records.iter().map(webhook_object).collect(),
        })
    }

    pub async fn get(&self, who: &Subject, namespace: &str, name: &str) -> ApiResult<Webhook> {
        self.require_admin(who, namespace, name).await?;
        Ok(webhook_object(&self.record(namespace, name).await?))
    }

    /// Replaces a subscription's URL, events, format and `disabled`, checked as at creation;
    /// its secret too when one is given, else the secret is kept. Enabling a disabled
    /// subscription starts it after the newest event.
    pub async fn update(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
        webhook: Webhook,
    ) -> ApiResult<Webhook> {
        self.require_admin(who, namespace, name).await?;
        for (field, given, expected) in [
            ("name", webhook.metadata.name.as_str(), name),
            (
                "namespace",
                webhook.metadata.namespace.as_deref().unwrap_or_default(),
                namespace,
            ),
        ] {
            if !given.is_empty() && given != expected {
                return Err(ApiError::BadRequest(format!(
                    "the {field} of the object ({given}) does not match the {field} on the request ({expected})"
                )));
            }
        }
        let before = self.record(namespace, name).await?;
        let checked = self.checked(name, &webhook.spec)?;
        let secret = match &webhook.spec.secret {
            Some(secret) => Some(self.seal(namespace, name, secret)?),
            None => None,
        };
        let record = self
            .change(
                namespace,
                name,
                &WebhookChange {
                    url: Some(checked.url),
                    events: Some(
                        checked
                            .events
                            .iter()
                            .map(|e| e.as_str().to_owned())
                            .collect(),
                    ),
                    format: Some(checked.format.as_str().to_owned()),
                    secret,
                    disabled: Some(webhook.spec.disabled),
                },
            )
            .await?;
        let mut changed = Vec::new();
        if record.url != before.url {
            changed.push("url");
        }
        if record.events != before.events {
            changed.push("events");
        }
        if record.format != before.format {
            changed.push("format");
        }
        if webhook.spec.secret.is_some() {
            changed.push("secret");
        }
        if record.disabled != before.disabled {
            changed.push(if record.disabled {
                "disabled"
            } else {
                "enabled"
            });
        }
        self.audit(
            who,
            "webhook-update",
            namespace,
            name,
            (!changed.is_empty()).then(|| changed.join(", ")),
        )
        .await;
        if before.disabled && !record.disabled {
            // What waited while it was disabled is due.
            self.dispatcher.wake().await;
        }
        Ok(webhook_object(&record))
    }

    /// A PATCH (merge, JSON or strategic) of the subscription as the API shows it, applied as
    /// an update.
    pub async fn patch(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
        patch: &Patch,
    ) -> ApiResult<Webhook> {
        let current = self.get(who, namespace, name).await?;
        let patched = patch.apply(&current, WEBHOOKS, name)?;
        self.update(who, namespace, name, patched).await
    }

    /// Makes a new signing secret for the subscription; answers with the subscription and the
    /// secret, shown this once.
    pub async fn regenerate_secret(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
    ) -> ApiResult<Webhook> {
        self.require_admin(who, namespace, name).await?;
        let secret = new_secret();
        let sealed = self.seal(namespace, name, &secret)?;
        let record = self
            .change(
                namespace,
                name,
                &WebhookChange {
                    secret: Some(sealed),
                    ..WebhookChange::default()
                },
            )
            .await?;
        self.audit(who, "webhook-secret", namespace, name, None)
            .await;
        let mut shown = webhook_object(&record);
        shown.spec.secret = Some(secret);
        Ok(shown)
    }

    /// Deletes a subscription with its deliveries (pending ones are not sent).
    pub async fn delete(&self, who: &Subject, namespace: &str, name: &str) -> ApiResult<Status> {
        self.require_admin(who, namespace, name).await?;
        if !self.store.delete_webhook(namespace, name).await? {
            return Err(ApiError::not_found(WEBHOOKS, name));
        }
        self.audit(who, "webhook-delete", namespace, name, None)
            .await;
        Ok(deleted(WEBHOOKS, name))
    }
}

// The HTTP surface: every path, and the handlers of the webhooks themselves.

type Api = State<Arc<Webhooks>>;

async fn list(
    State(api): Api,
    caller: Caller,
    Path(namespace): Path<String>,
) -> ApiResult<Json<List<Webhook>>> {
    api.list(&caller.subject, &namespace).await.map(Json)
}

async fn create(
    State(api): Api,
    caller: Caller,
    Path(namespace): Path<String>,
    ApiJson(body): ApiJson<Webhook>,
) -> ApiResult<(StatusCode, Json<Webhook>)> {
    let created = api.create(&caller.subject, &namespace, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn get_one(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<Webhook>> {
    api.get(&caller.subject, &namespace, &name).await.map(Json)
}

async fn update(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
    ApiJson(body): ApiJson<Webhook>,
) -> ApiResult<Json<Webhook>> {
    api.update(&caller.subject, &namespace, &name, body)
        .await
        .map(Json)
}

async fn patch(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
    patch: Patch,
) -> ApiResult<Json<Webhook>> {
    api.patch(&caller.subject, &namespace, &name, &patch)
        .await
        .map(Json)
}

/// A new secret; answers 201 with the subscription and the secret, shown this once.
async fn regenerate_secret(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Webhook>)> {
    let shown = api
        .regenerate_secret(&caller.subject, &namespace, &name)
        .await?;
    Ok((StatusCode::CREATED, Json(shown)))
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

pub fn router(webhooks: Arc<Webhooks>) -> Router {
    Router::new()
        .route(
            "/apis/berth.io/v1/namespaces/{namespace}/webhooks",
            get(list).post(create),
        )
        .route(
            "/apis/berth.io/v1/namespaces/{namespace}/webhooks/{name}",
            get(get_one).put(update).patch(patch).delete(delete),
        )
        .route(
            "/apis/berth.io/v1/namespaces/{namespace}/webhooks/{name}/secret",
            post(regenerate_secret),
        )
        .route(
            "/apis/berth.io/v1/namespaces/{namespace}/webhooks/{name}/ping",
            post(deliveries::ping),
        )
        .route(
            "/apis/berth.io/v1/namespaces/{namespace}/webhooks/{name}/deliveries",
            get(deliveries::list),
        )
        .route(
            "/apis/berth.io/v1/namespaces/{namespace}/webhooks/{name}/deliveries/{id}/redeliver",
            post(deliveries::redeliver),
        )
        .with_state(webhooks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str, events: &[&str], format: &str) -> WebhookSpec {
        WebhookSpec {
            url: url.into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            format: format.into(),
            secret: None,
            disabled: false,
        }
    }

    fn fields(result: Result<Checked, Vec<FieldError>>) -> Vec<String> {
        match result {
            Ok(_) => Vec::new(),
            Err(causes) => causes.into_iter().map(|c| c.field).collect(),
        }
    }

    #[test]
    fn names_are_rfc_1123_labels() {
        let name_refused = |name: &str| {
            fields(check(name, &spec("http://127.0.0.1/", &[], ""))) == ["metadata.name"]
        };
        for good in ["ci", "ci-2", "a", &"a".repeat(63)] {
            assert!(!name_refused(good), "{good}");
        }
        for bad in ["", "CI", "-ci", "ci-", "c.i", "c_i", "c/i", &"a".repeat(64)] {
            assert!(name_refused(bad), "{bad}");
        }
    }

    #[test]
    fn urls_are_http_or_https_without_credentials() {
        assert_eq!(
            check_url("http://127.0.0.1:8080/hook").as_deref(),
            Ok("http://127.0.0.1:8080/hook")
        );
        assert_eq!(
            check_url("https://hooks.example.com").as_deref(),
            Ok("https://hooks.example.com/")
        );
        assert!(check_url("http://[::1]:9000/x?y=1").is_ok());
        for (bad, why) in [
            ("", "Required"),
            ("not a url", "is not a URL"),
            ("ftp://example.com/", "http or https"),
            ("file:///etc/passwd", "http or https"),
            ("http://user:pass@example.com/", "credentials"),
            ("http://token@example.com/", "credentials"),
            ("http://:pass@example.com/", "credentials"),
        ] {
            let err = check_url(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        assert!(check_url(&format!("http://example.com/{}", "a".repeat(2048))).is_err());
    }

    #[test]
    fn a_spec_is_checked_field_by_field() {
        let ok = check(
            "ci",
            &spec("http://127.0.0.1/", &["imagestream", "push", "push"], ""),
        )
        .ok()
        .unwrap();
        assert_eq!(ok.events, [EventName::Push, EventName::ImageStream]);
        assert_eq!(ok.format, Format::Distribution);
        assert_eq!(
            check("ci", &spec("http://127.0.0.1/", &[], "cloudevents"))
                .ok()
                .unwrap()
                .format,
            Format::CloudEvents
        );
        assert_eq!(
            fields(check(
                "Bad Name",
                &spec("http://u:p@127.0.0.1/", &["push", "pull"], "xml")
            )),
            ["metadata.name", "spec.url", "spec.events[1]", "spec.format"]
        );
        let mut empty_secret = spec("http://127.0.0.1/", &[], "");
        empty_secret.secret = Some(String::new());
        assert_eq!(fields(check("ci", &empty_secret)), ["spec.secret"]);
    }

    #[test]
    fn secrets_open_only_as_the_subscription_they_were_sealed_for() {
        let key = SecretsKey::generate();
        let Sealed { nonce, ciphertext } = key
            .seal(
                SealedFor::Webhook {
                    namespace: "team",
                    name: "ci",
                },
                b"s3cret",
            )
            .unwrap();
        let record = WebhookRecord {
            id: 1,
            namespace: "team".into(),
            name: "ci".into(),
            uid: "u".into(),
            url: "http://127.0.0.1/".into(),
            events: Vec::new(),
            format: "distribution".into(),
            secret_nonce: nonce,
            secret_ciphertext: ciphertext,
            since_event: 0,
            created_at: Utc::now(),
            disabled: false,
        };
        assert_eq!(open_secret(&key, &record).unwrap(), b"s3cret");
        let mut other = record.clone();
        other.name = "cd".into();
        assert!(open_secret(&key, &other).is_err());
        assert!(open_secret(&SecretsKey::generate(), &record).is_err());
    }
}
