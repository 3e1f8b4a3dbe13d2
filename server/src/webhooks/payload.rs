//! What a subscriber is sent: which of its event names an entry of the event log is, the body in
//! the subscription's format (distribution's notification envelope, Berth's image stream event,
//! or either inside a CloudEvents 1.0 structured envelope), and the signature over it.

use std::str::FromStr as _;

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, KeyInit as _, Mac as _};
use serde::Serialize;
use sha2::Sha256;

use crate::oci::Digest;
use crate::storage::webhooks::WebhookRecord;
use crate::storage::{EventKind, EventRecord, EventType};

/// The distribution notification envelope's media type.
pub const DISTRIBUTION_EVENTS: &str = "application/vnd.docker.distribution.events.v1+json";
/// A CloudEvent in structured mode, JSON.
pub const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";
pub const JSON: &str = "application/json";
/// `sha256=<hex of HMAC-SHA256(secret, body)>`, as GitHub's `X-Hub-Signature-256`.
pub const SIGNATURE_HEADER: &str = "x-berth-signature-256";
/// The delivery's id: the same on every attempt, so that a receiver can drop repeats.
pub const DELIVERY_HEADER: &str = "x-berth-delivery";
/// The event name: `push`, `delete`, `imagestream`, or `ping` for a test event.
pub const EVENT_HEADER: &str = "x-berth-event";

/// The event name of a test event, sent by hand to every subscription that asks, whatever
/// its events (as Harbor's and GitHub's `ping`).
pub const PING: &str = "ping";

/// What a subscription can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventName {
    /// A manifest pushed with a tag (distribution's `push`).
    Push,
    /// A manifest deleted, or a tag removed (distribution's `delete`).
    Delete,
    /// A change to an image stream: a tag moved (tagging, imports), removed, a stream created
    /// or deleted.
    ImageStream,
}

impl EventName {
    pub const ALL: [EventName; 3] = [EventName::Push, EventName::Delete, EventName::ImageStream];

    pub fn as_str(self) -> &'static str {
        match self {
            EventName::Push => "push",
            EventName::Delete => "delete",
            EventName::ImageStream => "imagestream",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        EventName::ALL
            .into_iter()
            .find(|name| name.as_str() == text)
    }
}

/// How a subscription's bodies are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Registry events in distribution's envelope, image stream events as plain JSON.
    Distribution,
    /// Either inside a CloudEvents 1.0 structured JSON envelope.
    CloudEvents,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Distribution => "distribution",
            Format::CloudEvents => "cloudevents",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Format::Distribution, Format::CloudEvents]
            .into_iter()
            .find(|format| format.as_str() == text)
    }
}

/// The event names an entry of the log is. The registry's tags *are* the streams' tags, so the
/// log cannot tell a tag removed through `/v2/` from one removed through the image stream API:
/// a removal is both a registry `delete` and an `imagestream` event.
pub fn event_names(event: &EventRecord) -> Vec<EventName> {
    if event.kind != EventKind::ImageStream {
        return Vec::new();
    }
    match event.reason.as_str() {
        // A push that created a stream without a tag (by digest) names no image to send.
        "push" if event.new_image.is_some() => vec![EventName::Push],
        "push" => Vec::new(),
        "delete-image" => vec![EventName::Delete],
        "untag" => vec![EventName::Delete, EventName::ImageStream],
        _ => vec![EventName::ImageStream],
    }
}

/// Where the registry is, as notifications name it.
#[derive(Debug, Clone)]
pub struct Origin {
    /// `host[:port]` (the registry's name in pull specs): distribution's `source.addr`.
    pub registry_host: String,
    /// `scheme://host[:port]`, for a pushed manifest's URL.
    pub base_url: String,
}

/// What the registry keeps of a pushed manifest, for the notification's target.
#[derive(Debug, Clone, PartialEq)]
pub struct PushedManifest {
    pub media_type: String,
    pub size: u64,
}

/// A body to send and its `Content-Type`.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// The kinds of image stream events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamEventType {
    TagChanged,
    TagDeleted,
    Created,
    Deleted,
    Changed,
}

impl StreamEventType {
    fn of(event: &EventRecord) -> Self {
        if event.event_type == EventType::Deleted {
            StreamEventType::Deleted
        } else if event.reason == "untag" {
            StreamEventType::TagDeleted
        } else if event.tag.is_some() && event.new_image.is_some() {
            StreamEventType::TagChanged
        } else if event.event_type == EventType::Added {
            StreamEventType::Created
        } else {
            StreamEventType::Changed
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            StreamEventType::TagChanged => "ImageStreamTagChanged",
            StreamEventType::TagDeleted => "ImageStreamTagDeleted",
            StreamEventType::Created => "ImageStreamCreated",
            StreamEventType::Deleted => "ImageStreamDeleted",
            StreamEventType::Changed => "ImageStreamChanged",
        }
    }

    /// The CloudEvents `type`.
    fn cloud_type(self) -> &'static str {
        match self {
            StreamEventType::TagChanged => "io.berth.imagestream.tag",
            StreamEventType::TagDeleted => "io.berth.imagestream.untag",
            StreamEventType::Created => "io.berth.imagestream.create",
            StreamEventType::Deleted => "io.berth.imagestream.delete",
            StreamEventType::Changed => "io.berth.imagestream.change",
        }
    }
}

#[derive(Serialize)]
struct Envelope {
    events: Vec<RegistryEvent>,
}

/// One event of distribution's envelope (its `request` and `actor` are not known to the log).
#[derive(Serialize)]
struct RegistryEvent {
    id: String,
    timestamp: String,
    action: &'static str,
    target: Target,
    source: Source,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Target {
    #[serde(skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    length: Option<u64>,
    repository: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<String>,
}

#[derive(Serialize)]
struct Source {
    addr: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StreamEvent<'a> {
    #[serde(rename = "type")]
    event_type: &'static str,
    id: &'a str,
    namespace: &'a str,
    stream: &'a str,
    tag: Option<&'a str>,
    old_image: Option<&'a str>,
    new_image: Option<&'a str>,
    reason: &'a str,
    time: &'a str,
}

#[derive(Serialize)]
struct CloudEvent<'a> {
    specversion: &'static str,
    id: &'a str,
    source: String,
    #[serde(rename = "type")]
    event_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    time: &'a str,
    datacontenttype: &'static str,
    data: serde_json::Value,
}

/// A digest named by the log (an image may also be an external pull spec).
fn digest(image: Option<&str>) -> Option<String> {
    image
        .and_then(|text| Digest::from_str(text).ok())
        .map(|d| d.to_string())
}

/// The notification's id: the log entry's id and the event name, the same on every attempt
/// and unique when one entry is two events (a tag removal).
pub fn notification_id(event: &EventRecord, name: EventName) -> String {
    format!("{}-{}", event.id, name.as_str())
}

/// The body of event `name` of log entry `event` in `format`. `pushed` is what the registry
/// keeps of a pushed manifest (absent when it is gone already).
pub fn payload(
    event: &EventRecord,
    name: EventName,
    format: Format,
    origin: &Origin,
    pushed: Option<&PushedManifest>,
) -> Result<Payload, serde_json::Error> {
    let id = notification_id(event, name);
    let time = event
        .created_at
        .to_rfc3339_opts(SecondsFormat::Millis, true);
    let repository = format!("{}/{}", event.namespace, event.name);
    let (content_type, data, cloud_type) = match name {
        EventName::Push | EventName::Delete => {
            let pushing = name == EventName::Push;
            let digest = digest(if pushing {
                event.new_image.as_deref()
            } else {
                event.old_image.as_deref()
            });
            let url = digest
                .as_ref()
                .filter(|_| pushing)
                .map(|d| format!("{}/v2/{repository}/manifests/{d}", origin.base_url));
            let pushed = pushed.filter(|_| pushing);
            let envelope = Envelope {
                events: vec![RegistryEvent {
                    id: id.clone(),
                    timestamp: time.clone(),
                    action: name.as_str(),
                    target: Target {
                        media_type: pushed.map(|m| m.media_type.clone()),
                        size: pushed.map(|m| m.size),
                        digest,
                        length: pushed.map(|m| m.size),
                        repository,
                        url,
                        tag: event.tag.clone(),
                    },
                    source: Source {
                        addr: origin.registry_host.clone(),
                    },
                }],
            };
            let cloud_type = if pushing {
                "io.berth.registry.push"
            } else {
                "io.berth.registry.delete"
            };
            (
                DISTRIBUTION_EVENTS,
                serde_json::to_value(envelope)?,
                cloud_type,
            )
        }
        EventName::ImageStream => {
            let kind = StreamEventType::of(event);
            let body = StreamEvent {
                event_type: kind.as_str(),
                id: &id,
                namespace: &event.namespace,
                stream: &event.name,
                tag: event.tag.as_deref(),
                old_image: event.old_image.as_deref(),
                new_image: event.new_image.as_deref(),
                reason: &event.reason,
                time: &time,
            };
            (JSON, serde_json::to_value(body)?, kind.cloud_type())
        }
    };
    shaped(
        format,
        content_type,
        data,
        CloudEvent {
            specversion: "1.0",
            id: &id,
            source: format!(
                "/namespaces/{}/imagestreams/{}",
                event.namespace, event.name
            ),
            event_type: cloud_type,
            subject: event.tag.as_deref(),
            time: &time,
            datacontenttype: content_type,
            data: serde_json::Value::Null,
        },
    )
}

/// `data` (of `content_type`) as `format` sends it: as it is, or as the data of `cloud`.
fn shaped(
    format: Format,
    content_type: &'static str,
    data: serde_json::Value,
    cloud: CloudEvent<'_>,
) -> Result<Payload, serde_json::Error> {
    Ok(match format {
        Format::Distribution => Payload {
            content_type,
            body: serde_json::to_vec(&data)?,
        },
        Format::CloudEvents => Payload {
            content_type: CLOUDEVENTS_JSON,
            body: serde_json::to_vec(&CloudEvent { data, ..cloud })?,
        },
    })
}

#[derive(Serialize)]
struct Ping<'a> {
    #[serde(rename = "type")]
    event_type: &'static str,
    id: &'a str,
    namespace: &'a str,
    webhook: &'a str,
    /// What the subscription asks for; empty for every event.
    events: &'a [String],
    time: &'a str,
}

/// The body of a test event to `webhook` in `format`: who it is for, no image.
pub fn ping(
    webhook: &WebhookRecord,
    format: Format,
    now: DateTime<Utc>,
) -> Result<Payload, serde_json::Error> {
    let id = format!("ping-{}", uuid::Uuid::new_v4());
    let time = now.to_rfc3339_opts(SecondsFormat::Millis, true);
    let data = serde_json::to_value(Ping {
        event_type: "Ping",
        id: &id,
        namespace: &webhook.namespace,
        webhook: &webhook.name,
        events: &webhook.events,
        time: &time,
    })?;
    shaped(
        format,
        JSON,
        data,
        CloudEvent {
            specversion: "1.0",
            id: &id,
            source: format!(
                "/namespaces/{}/webhooks/{}",
                webhook.namespace, webhook.name
            ),
            event_type: "io.berth.webhook.ping",
            subject: None,
            time: &time,
            datacontenttype: JSON,
            data: serde_json::Value::Null,
        },
    )
}

/// The signature header's value for `body`: `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &[u8], body: &[u8]) -> Result<String, hmac::digest::InvalidLength> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)?;
    mac.update(body);
    Ok(format!(
        "sha256={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const V1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const V2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn event(
        reason: &str,
        event_type: EventType,
        tag: Option<&str>,
        old: Option<&str>,
        new: Option<&str>,
    ) -> EventRecord {
        EventRecord {
            id: 42,
            kind: EventKind::ImageStream,
            event_type,
            namespace: "team".into(),
            name: "app".into(),
            reason: reason.into(),
            tag: tag.map(Into::into),
            old_image: old.map(Into::into),
            new_image: new.map(Into::into),
            object: None,
            created_at: DateTime::<Utc>::from_timestamp(1_800_000_000, 250_000_000).unwrap(),
        }
    }

    fn origin() -> Origin {
        Origin {
            registry_host: "registry.example.com".into(),
            base_url: "https://registry.example.com".into(),
        }
    }

    fn body(payload: &Payload) -> Value {
        serde_json::from_slice(&payload.body).unwrap()
    }

    #[test]
    fn signatures_are_hmac_sha256_in_hex() {
        // GitHub's documented example for X-Hub-Signature-256.
        assert_eq!(
            signature(b"It's a Secret to Everybody", b"Hello, World!").unwrap(),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?").unwrap(),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // A key longer than SHA-256's block is hashed first (RFC 4231, test case 6).
        assert_eq!(
            signature(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )
            .unwrap(),
            "sha256=60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn log_entries_become_event_names() {
        let cases = [
            (
                event("push", EventType::Added, Some("v1"), None, Some(V1)),
                vec![EventName::Push],
            ),
            (event("push", EventType::Added, None, None, None), vec![]),
            (
                event("delete-image", EventType::Modified, None, Some(V1), None),
                vec![EventName::Delete],
            ),
            (
                event("untag", EventType::Modified, Some("v1"), Some(V1), None),
                vec![EventName::Delete, EventName::ImageStream],
            ),
            (
                event("tag", EventType::Modified, Some("prod"), Some(V1), Some(V2)),
                vec![EventName::ImageStream],
            ),
            (
                event("import", EventType::Added, Some("v1"), None, Some(V1)),
                vec![EventName::ImageStream],
            ),
            (
                event("create", EventType::Added, None, None, None),
                vec![EventName::ImageStream],
            ),
            (
                event("delete", EventType::Deleted, None, None, None),
                vec![EventName::ImageStream],
            ),
        ];
        for (event, names) in cases {
            assert_eq!(event_names(&event), names, "{}", event.reason);
        }
        let mut namespace = event("create", EventType::Added, None, None, None);
        namespace.kind = EventKind::Namespace;
        assert!(event_names(&namespace).is_empty());
        for name in EventName::ALL {
            assert_eq!(EventName::parse(name.as_str()), Some(name));
        }
        assert_eq!(EventName::parse("pull"), None);
        assert_eq!(Format::parse("cloudevents"), Some(Format::CloudEvents));
        assert_eq!(Format::parse("CloudEvents"), None);
    }

    #[test]
    fn a_push_in_distributions_envelope() {
        let pushed = PushedManifest {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 1234,
        };
        let push = event("push", EventType::Modified, Some("v1"), Some(V2), Some(V1));
        let made = payload(
            &push,
            EventName::Push,
            Format::Distribution,
            &origin(),
            Some(&pushed),
        )
        .unwrap();
        assert_eq!(made.content_type, DISTRIBUTION_EVENTS);
        assert_eq!(
            body(&made),
            json!({"events": [{
                "id": "42-push",
                "timestamp": "2027-01-15T08:00:00.250Z",
                "action": "push",
                "target": {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "size": 1234,
                    "digest": V1,
                    "length": 1234,
                    "repository": "team/app",
                    "url": format!("https://registry.example.com/v2/team/app/manifests/{V1}"),
                    "tag": "v1",
                },
                "source": {"addr": "registry.example.com"},
            }]})
        );
        // The manifest gone before the event was read: what the log knows is still sent.
        let bare = payload(
            &push,
            EventName::Push,
            Format::Distribution,
            &origin(),
            None,
        )
        .unwrap();
        let target = &body(&bare)["events"][0]["target"];
        assert_eq!(target["digest"], V1);
        assert!(target.get("mediaType").is_none() && target.get("size").is_none());
    }

    #[test]
    fn deletes_in_distributions_envelope() {
        let untag = event("untag", EventType::Modified, Some("v1"), Some(V1), None);
        let made = payload(
            &untag,
            EventName::Delete,
            Format::Distribution,
            &origin(),
            None,
        )
        .unwrap();
        assert_eq!(
            body(&made)["events"][0],
            json!({
                "id": "42-delete",
                "timestamp": "2027-01-15T08:00:00.250Z",
                "action": "delete",
                "target": {"digest": V1, "repository": "team/app", "tag": "v1"},
                "source": {"addr": "registry.example.com"},
            })
        );
        let deleted = event("delete-image", EventType::Modified, None, Some(V1), None);
        let made = payload(
            &deleted,
            EventName::Delete,
            Format::Distribution,
            &origin(),
            None,
        )
        .unwrap();
        assert_eq!(
            body(&made)["events"][0]["target"],
            json!({"digest": V1, "repository": "team/app"})
        );
    }

    #[test]
    fn image_stream_events_carry_the_stream_tag_and_images() {
        let tag = event("tag", EventType::Modified, Some("prod"), Some(V1), Some(V2));
        let made = payload(
            &tag,
            EventName::ImageStream,
            Format::Distribution,
            &origin(),
            None,
        )
        .unwrap();
        assert_eq!(made.content_type, JSON);
        assert_eq!(
            body(&made),
            json!({
                "type": "ImageStreamTagChanged",
                "id": "42-imagestream",
                "namespace": "team",
                "stream": "app",
                "tag": "prod",
                "oldImage": V1,
                "newImage": V2,
                "reason": "tag",
                "time": "2027-01-15T08:00:00.250Z",
            })
        );
        for (event, kind) in [
            (
                event("untag", EventType::Modified, Some("v1"), Some(V1), None),
                "ImageStreamTagDeleted",
            ),
            (
                event("create", EventType::Added, None, None, None),
                "ImageStreamCreated",
            ),
            (
                event("delete", EventType::Deleted, None, None, None),
                "ImageStreamDeleted",
            ),
            (
                event("update", EventType::Modified, None, None, None),
                "ImageStreamChanged",
            ),
            (
                event(
                    "import",
                    EventType::Modified,
                    Some("v1"),
                    None,
                    Some("quay.io/a/b:1"),
                ),
                "ImageStreamTagChanged",
            ),
        ] {
            let made = payload(
                &event,
                EventName::ImageStream,
                Format::Distribution,
                &origin(),
                None,
            )
            .unwrap();
            assert_eq!(body(&made)["type"], kind, "{}", event.reason);
        }
        let created = event("create", EventType::Added, None, None, None);
        let made = payload(
            &created,
            EventName::ImageStream,
            Format::Distribution,
            &origin(),
            None,
        )
        .unwrap();
        let created = body(&made);
        assert!(
            created["tag"].is_null() && created["oldImage"].is_null(),
            "{created}"
        );
    }

    #[test]
    fn cloudevents_wrap_the_same_payload() {
        let push = event("push", EventType::Added, Some("v1"), None, Some(V1));
        let plain = payload(
            &push,
            EventName::Push,
            Format::Distribution,
            &origin(),
            None,
        )
        .unwrap();
        let cloud = payload(&push, EventName::Push, Format::CloudEvents, &origin(), None).unwrap();
        assert_eq!(cloud.content_type, CLOUDEVENTS_JSON);
        assert_eq!(
            body(&cloud),
            json!({
                "specversion": "1.0",
                "id": "42-push",
                "source": "/namespaces/team/imagestreams/app",
                "type": "io.berth.registry.push",
                "subject": "v1",
                "time": "2027-01-15T08:00:00.250Z",
                "datacontenttype": DISTRIBUTION_EVENTS,
                "data": body(&plain),
            })
        );

        let untag = event("untag", EventType::Modified, Some("v1"), Some(V1), None);
        let delete = body(
            &payload(
                &untag,
                EventName::Delete,
                Format::CloudEvents,
                &origin(),
                None,
            )
            .unwrap(),
        );
        let stream = body(
            &payload(
                &untag,
                EventName::ImageStream,
                Format::CloudEvents,
                &origin(),
                None,
            )
            .unwrap(),
        );
        assert_eq!(delete["type"], "io.berth.registry.delete");
        assert_eq!(stream["type"], "io.berth.imagestream.untag");
        assert_eq!(stream["datacontenttype"], JSON);
        assert_eq!(stream["data"]["type"], "ImageStreamTagDeleted");
        // One log entry, two events: each its own id under the same source.
        assert_ne!(delete["id"], stream["id"]);

        let tag = event("tag", EventType::Modified, Some("prod"), None, Some(V1));
        let tagged = body(
            &payload(
                &tag,
                EventName::ImageStream,
                Format::CloudEvents,
                &origin(),
                None,
            )
            .unwrap(),
        );
        assert_eq!(tagged["type"], "io.berth.imagestream.tag");
        let deleted = event("delete", EventType::Deleted, None, None, None);
        let deleted = body(
            &payload(
                &deleted,
                EventName::ImageStream,
                Format::CloudEvents,
                &origin(),
                None,
            )
            .unwrap(),
        );
        assert_eq!(deleted["type"], "io.berth.imagestream.delete");
        assert!(deleted.get("subject").is_none());
    }
}
