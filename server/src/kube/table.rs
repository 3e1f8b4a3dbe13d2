//! Server-side printing: a list, an object or a watch's events answered as `meta.k8s.io/v1`
//! `Table`s when the client asks for them (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`,
//! which `kubectl get` and `kubectl describe` send), with the columns OpenShift's and Kubernetes'
//! printers show. One layer ([`tables`]) converts the JSON every API already answers with, so a
//! table shows exactly what the list showed the same caller; each resource's columns are in its
//! row of [`super::discovery::RESOURCES`].

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde_json::{Map, Value, json};

use super::discovery::by_kind;
use super::error::ApiError;
use super::http::accepts_json_as;

/// The largest answer turned into a table (lists are paged well below it).
const MAX_TABLE_SOURCE: usize = 64 * 1024 * 1024;

/// One column of a resource's table: its definition and how a cell is read from an object.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    /// `string`, `integer` or `date`.
    pub kind: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    /// 0 is always shown; 1 only with `-o wide`.
    pub priority: u8,
    pub cell: fn(&Value, DateTime<Utc>) -> Value,
}

const fn column(
    name: &'static str,
    description: &'static str,
    cell: fn(&Value, DateTime<Utc>) -> Value,
) -> Column {
    Column {
        name,
        kind: "string",
        format: "",
        description,
        priority: 0,
        cell,
    }
}

const fn wide(mut column: Column) -> Column {
    column.priority = 1;
    column
}

const NAME: Column = Column {
    format: "name",
    ..column(
        "Name",
        "Name must be unique within a namespace.",
        |object, _| object["metadata"]["name"].clone(),
    )
};

const AGE: Column = column(
    "Age",
    "The time since the object was created.",
    |object, now| {
        time_of(&object["metadata"]["creationTimestamp"])
            .map(|t| Value::from(age(now - t)))
            .unwrap_or(Value::from("<unknown>"))
    },
);

const CREATED_AT: Column = Column {
    kind: "date",
    ..column(
        "Created At",
        "The time the object was created.",
        |object, _| object["metadata"]["creationTimestamp"].clone(),
    )
};

/// The default table of a resource without columns of its own, as Kubernetes' default.
const DEFAULT_COLUMNS: &[Column] = &[NAME, CREATED_AT];

pub const NAMESPACE_COLUMNS: &[Column] = &[
    NAME,
    column("Status", "The phase of the namespace.", |object, _| {
        object["status"]["phase"].clone()
    }),
    AGE,
];

pub const SECRET_COLUMNS: &[Column] = &[
    NAME,
    column("Type", "The type of the secret.", |object, _| {
        object["type"].clone()
    }),
    Column {
        kind: "integer",
        ..column(
            "Data",
            "The number of items in the secret (Berth never shows them again).",
            |object, _| Value::from(object["data"].as_object().map_or(0, Map::len)),
        )
    },
    AGE,
];

pub const SERVICE_ACCOUNT_COLUMNS: &[Column] = &[
    NAME,
    Column {
        kind: "integer",
        ..column(
            "Secrets",
            "The number of secrets of the service account.",
            |object, _| Value::from(object["secrets"].as_array().map_or(0, Vec::len)),
        )
    },
    AGE,
];

/// `oc get is`: NAME, IMAGE REPOSITORY, TAGS, UPDATED.
pub const IMAGE_STREAM_COLUMNS: &[Column] = &[
    NAME,
    column(
        "Image Repository",
        "Where the stream's images are pulled from.",
        |object, _| {
            let status = &object["status"];
            [
                &status["publicDockerImageRepository"],
                &object["spec"]["dockerImageRepository"],
                &status["dockerImageRepository"],
            ]
            .into_iter()
            .filter_map(Value::as_str)
            .find(|repository| !repository.is_empty())
            .map_or(Value::from(""), Value::from)
        },
    ),
    column("Tags", "Human readable list of tags.", |object, _| {
        Value::from(tags_up_to_width(object, TAGS_WIDTH))
    }),
    column("Updated", "Last update time.", |object, now| {
        let latest = object["status"]["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|tag| time_of(&tag["items"][0]["created"]))
            .max();
        Value::from(latest.map_or(String::new(), |t| ago(now - t)))
    }),
];

/// `oc get istag`: NAME, IMAGE REFERENCE, UPDATED, and IMAGE NAME with `-o wide`.
pub const IMAGE_STREAM_TAG_COLUMNS: &[Column] = &[
    NAME,
    IMAGE_REFERENCE_OF_IMAGE,
    UPDATED_SINCE_CREATED,
    wide(IMAGE_NAME),
];

/// `oc get isimage`: NAME, UPDATED, and with `-o wide` IMAGE REFERENCE, IMAGE NAME.
pub const IMAGE_STREAM_IMAGE_COLUMNS: &[Column] = &[
    NAME,
    UPDATED_SINCE_CREATED,
    wide(IMAGE_REFERENCE_OF_IMAGE),
    wide(IMAGE_NAME),
];

/// `oc get images`: NAME, IMAGE REFERENCE.
pub const IMAGE_COLUMNS: &[Column] = &[
    NAME,
    column("Image Reference", "The image's pull spec.", |object, _| {
        object["dockerImageReference"].clone()
    }),
];

const IMAGE_REFERENCE_OF_IMAGE: Column =
    column("Image Reference", "The image's pull spec.", |object, _| {
        object["image"]["dockerImageReference"].clone()
    });

const IMAGE_NAME: Column = column("Image Name", "The image's digest.", |object, _| {
    object["image"]["metadata"]["name"].clone()
});

const UPDATED_SINCE_CREATED: Column = column("Updated", "Last update time.", |object, now| {
    Value::from(
        time_of(&object["metadata"]["creationTimestamp"]).map_or(String::new(), |t| ago(now - t)),
    )
});

/// How wide the tags of a stream's row may be, as `oc` budgets them.
const TAGS_WIDTH: usize = 40;

/// A stream's tags, newest first, as many as fit in about `width` characters (always one), and
/// how many more there are: `latest,v2 + 3 more...`.
fn tags_up_to_width(stream: &Value, width: usize) -> String {
    let mut tags: Vec<(Option<DateTime<Utc>>, &str)> = stream["status"]["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|tag| {
            let name = tag["tag"].as_str()?;
            Some((time_of(&tag["items"][0]["created"]), name))
        })
        .collect();
    tags.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let total = tags.len();
    let mut shown = Vec::new();
    let mut used = 0;
    for (_, tag) in tags {
        let wanted = used + tag.len() + 1;
        // Past the budget a tag still goes in when the row would otherwise end a quarter short
        // and this one keeps it within a quarter over, so rows end less ragged.
        let fits =
            wanted <= width || (width - used.min(width) > width / 4 && wanted <= width + width / 4);
        if !shown.is_empty() && !fits {
            break;
        }
        used = wanted;
        shown.push(tag);
    }
    let hidden = total - shown.len();
    let shown = shown.join(",");
    if hidden > 0 {
        format!("{shown} + {hidden} more...")
    } else {
        shown
    }
}

fn time_of(value: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// An age as Kubernetes' printers write it: `45s`, `3m20s`, `75m`, `5h12m`, `3d4h`, `2y10d`.
pub fn age(elapsed: chrono::TimeDelta) -> String {
    let seconds = elapsed.num_seconds().max(0);
    let (minutes, hours, days) = (seconds / 60, seconds / 3600, seconds / 86_400);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if minutes < 10 && s % 60 != 0 => format!("{minutes}m{}s", s % 60),
        _ if minutes < 180 => format!("{minutes}m"),
        _ if hours < 8 && minutes % 60 != 0 => format!("{hours}h{}m", minutes % 60),
        _ if hours < 48 => format!("{hours}h"),
        _ if hours < 192 && hours % 24 != 0 => format!("{days}d{}h", hours % 24),
        _ if days < 730 => format!("{days}d"),
        _ if days < 2920 && days % 365 != 0 => format!("{}y{}d", days / 365, days % 365),
        _ => format!("{}y", days / 365),
    }
}

/// A time in the past as `oc` words it: `About a minute ago`, `3 hours ago`, `2 weeks ago`.
pub fn ago(elapsed: chrono::TimeDelta) -> String {
    let seconds = elapsed.num_seconds().max(0);
    let (minutes, hours, days) = (seconds / 60, seconds / 3600, seconds / 86_400);
    let words = match seconds {
        0 => "Less than a second".to_owned(),
        1 => "1 second".to_owned(),
        s if s < 60 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".to_owned(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".to_owned(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if days < 14 => format!("{days} days"),
        _ if days < 90 => format!("{} weeks", days / 7),
        _ if days < 730 => format!("{} months", days / 30),
        _ => format!("{} years", days / 365),
    };
    format!("{words} ago")
}

/// What the client asked a table to carry of each object (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Include {
    None,
    Metadata,
    Object,
}

/// How a request wants its answer printed, when it wants a table.
#[derive(Debug, Clone, Copy)]
struct TableRequest {
    include: Include,
    watch: bool,
}

impl TableRequest {
    fn of(request: &Request) -> Result<Option<Self>, ApiError> {
        if !wants_table(request.headers()) {
            return Ok(None);
        }
        let mut include = Include::Metadata;
        let mut watch = false;
        for (key, value) in
            url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
        {
            match (&*key, &*value) {
                ("includeObject", "None") => include = Include::None,
                ("includeObject", "Object") => include = Include::Object,
                ("includeObject", "PartialObjectMetadata" | "") => include = Include::Metadata,
                ("includeObject", other) => {
                    return Err(ApiError::BadRequest(format!(
                        "includeObject {other:?} is not one of None, Object, PartialObjectMetadata"
                    )));
                }
                ("watch", "true" | "1") => watch = true,
                _ => {}
            }
        }
        Ok(Some(TableRequest { include, watch }))
    }
}

/// Whether `Accept` names `Table` of `meta.k8s.io` (v1 or v1beta1; answered as v1).
fn wants_table(headers: &HeaderMap) -> bool {
    accepts_json_as(headers, &["as=Table", "g=meta.k8s.io"])
}

fn row(object: &Value, columns: &[Column], include: Include, now: DateTime<Utc>) -> Value {
    let cells: Vec<Value> = columns.iter().map(|c| (c.cell)(object, now)).collect();
    let mut row = json!({ "cells": cells });
    match include {
        Include::None => {}
        Include::Object => row["object"] = object.clone(),
        Include::Metadata => {
            row["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": object["metadata"],
            })
        }
    }
    row
}

/// `document` (a list or one object) as a `Table`; `None` for what is not a resource's object
/// (a `Status`, a review's answer), which is answered as it is.
fn table(document: &Value, include: Include, headers: bool, now: DateTime<Utc>) -> Option<Value> {
    let kind = document["kind"].as_str()?;
    if kind == "Status" || kind == "Table" {
        return None;
    }
    let columns = match by_kind(kind) {
        Some(resource) if !resource.columns.is_empty() => resource.columns,
        _ => DEFAULT_COLUMNS,
    };
    let objects: Vec<&Value> = match document.get("items") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(_) => return None,
        None => vec![document],
    };
    let metadata = if document.get("items").is_some() {
        document["metadata"].clone()
    } else {
        json!({ "resourceVersion": document["metadata"]["resourceVersion"] })
    };
    let definitions: Vec<Value> = if headers {
        columns
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "type": c.kind,
                    "format": c.format,
                    "description": c.description,
                    "priority": c.priority,
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    Some(json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": definitions,
        "rows": objects.into_iter().map(|o| row(o, columns, include, now)).collect::<Vec<_>>(),
    }))
}

/// One watch line with its object as a one-row table (column definitions with the first only,
/// as Kubernetes sends them); bookmarks and errors pass as they are.
fn table_event(line: &[u8], include: Include, first: &mut bool) -> Vec<u8> {
    let Ok(mut event) = serde_json::from_slice::<Value>(line) else {
        return line.to_vec();
    };
    if !matches!(
        event["type"].as_str(),
        Some("ADDED" | "MODIFIED" | "DELETED")
    ) {
        return line.to_vec();
    }
    match table(&event["object"], include, *first, Utc::now()) {
        Some(object) => {
            *first = false;
            event["object"] = object;
            let mut out = serde_json::to_vec(&event).unwrap_or_else(|_| line.to_vec());
            out.push(b'\n');
            out
        }
        None => line.to_vec(),
    }
}

/// The layer that answers table requests: every JSON answer of the APIs beneath it, lists,
/// objects and watch streams, converted when `Accept` asks for a `Table`.
pub async fn tables(request: Request, next: Next) -> Response {
    let wanted = match TableRequest::of(&request) {
        Ok(Some(wanted)) => wanted,
        Ok(None) => return next.run(request).await,
        Err(err) => return err.into_response(),
    };
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !response.status().is_success() || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    if wanted.watch {
        let mut pending: Vec<u8> = Vec::new();
        let mut first = true;
        let include = wanted.include;
        let lines = body.into_data_stream().map(move |chunk| {
            let chunk = chunk?;
            pending.extend_from_slice(&chunk);
            let mut out = Vec::new();
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                out.extend(table_event(&line, include, &mut first));
            }
            Ok::<_, axum::Error>(Bytes::from(out))
        });
        return Response::from_parts(parts, Body::from_stream(lines));
    }
    let bytes = match axum::body::to_bytes(body, MAX_TABLE_SOURCE).await {
        Ok(bytes) => bytes,
        Err(err) => return ApiError::internal(err).into_response(),
    };
    let converted = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|document| table(&document, wanted.include, true, Utc::now()));
    match converted {
        Some(table) => (parts.status, parts.headers, axum::Json(table)).into_response(),
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-10T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    fn stream(tags: &[(&str, &str)]) -> Value {
        json!({
            "kind": "ImageStream",
            "apiVersion": "image.openshift.io/v1",
            "metadata": {"name": "web", "namespace": "team", "resourceVersion": "7"},
            "spec": {},
            "status": {
                "dockerImageRepository": "registry.local/team/web",
                "tags": tags.iter().map(|(tag, created)| json!({
                    "tag": tag,
                    "items": [{"created": created, "image": "sha256:ab"}],
                })).collect::<Vec<_>>(),
            },
        })
    }

    #[test]
    fn an_image_stream_prints_as_oc_get_is() {
        let list = json!({
            "kind": "ImageStreamList",
            "apiVersion": "image.openshift.io/v1",
            "metadata": {"resourceVersion": "9", "continue": "next"},
            "items": [stream(&[("v1", "2026-01-10T09:00:00Z"), ("latest", "2026-01-10T11:59:00Z")])],
        });
        let table = table(&list, Include::Metadata, true, now()).expect("a table");
        let names: Vec<&str> = table["columnDefinitions"]
            .as_array()
            .expect("columns")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, ["Name", "Image Repository", "Tags", "Updated"]);
        assert_eq!(
            table["rows"][0]["cells"],
            json!([
                "web",
                "registry.local/team/web",
                "latest,v1",
                "About a minute ago"
            ])
        );
        assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(table["rows"][0]["object"]["metadata"]["namespace"], "team");
        assert_eq!(table["metadata"]["continue"], "next");
    }

    #[test]
    fn many_tags_are_cut_with_a_count() {
        let tags: Vec<(String, &str)> = (0..20)
            .map(|i| (format!("release-{i:02}"), "2026-01-10T09:00:00Z"))
            .collect();
        let tags: Vec<(&str, &str)> = tags.iter().map(|(t, c)| (t.as_str(), *c)).collect();
        let text = tags_up_to_width(&stream(&tags), TAGS_WIDTH);
        assert!(
            text.starts_with("release-00,release-01,release-02"),
            "{text}"
        );
        assert!(text.ends_with(" more..."), "{text}");
        assert_eq!(tags_up_to_width(&stream(&[]), TAGS_WIDTH), "");
        let long = "x".repeat(60);
        assert_eq!(
            tags_up_to_width(
                &stream(&[
                    (&long, "2026-01-10T09:00:00Z"),
                    ("b", "2026-01-09T09:00:00Z")
                ]),
                TAGS_WIDTH
            ),
            format!("{long} + 1 more...")
        );
    }

    #[test]
    fn ages_read_as_kubernetes_prints_them() {
        let s = chrono::TimeDelta::seconds;
        assert_eq!(age(s(45)), "45s");
        assert_eq!(age(s(200)), "3m20s");
        assert_eq!(age(s(75 * 60)), "75m");
        assert_eq!(age(s(5 * 3600 + 12 * 60)), "5h12m");
        assert_eq!(age(s(30 * 3600)), "30h");
        assert_eq!(age(s(3 * 86_400 + 4 * 3600)), "3d4h");
        assert_eq!(age(s(400 * 86_400)), "400d");
        assert_eq!(ago(s(0)), "Less than a second ago");
        assert_eq!(ago(s(90)), "About a minute ago");
        assert_eq!(ago(s(3 * 3600)), "3 hours ago");
        assert_eq!(ago(s(20 * 86_400)), "2 weeks ago");
    }

    #[test]
    fn statuses_and_unknown_shapes_are_not_tables() {
        let table_of = |document: Value| table(&document, Include::Metadata, true, now());
        assert!(table_of(json!({"kind": "Status", "code": 404})).is_none());
        assert!(table_of(json!({"allowed": true})).is_none());
        let default = table_of(json!({"kind": "WhoCan", "metadata": {"name": "x"}}));
        assert_eq!(
            default.map(|t| t["columnDefinitions"][1]["name"].clone()),
            Some(json!("Created At"))
        );
    }

    #[test]
    fn watch_events_become_one_row_tables_with_headers_once() {
        let mut first = true;
        let line =
            serde_json::to_vec(&json!({"type": "ADDED", "object": stream(&[])})).expect("json");
        let one: Value =
            serde_json::from_slice(&table_event(&line, Include::None, &mut first)).expect("json");
        assert_eq!(one["object"]["kind"], "Table");
        assert_eq!(
            one["object"]["columnDefinitions"].as_array().map(Vec::len),
            Some(4)
        );
        let two: Value =
            serde_json::from_slice(&table_event(&line, Include::None, &mut first)).expect("json");
        assert_eq!(
            two["object"]["columnDefinitions"].as_array().map(Vec::len),
            Some(0)
        );
        assert_eq!(two["object"]["rows"][0]["cells"][0], "web");
        let bookmark = br#"{"type":"BOOKMARK","object":{"kind":"ImageStream","metadata":{"resourceVersion":"3"}}}"#;
        assert_eq!(
            table_event(bookmark, Include::None, &mut first),
            bookmark.to_vec()
        );
    }
}
