//! PATCH, as Kubernetes clients send it: RFC 6902 JSON patch (`kubectl patch --type=json`),
//! RFC 7386 JSON merge patch (`--type=merge`, and `kubectl apply` for kinds it has no schema
//! of), and strategic merge patch (`kubectl apply` and `kubectl patch` for kinds whose OpenAPI
//! schema offers it; lists merged by the `x-kubernetes-patch-merge-key` the schema declares,
//! `spec.tags` by `name`). Server-side apply (`application/apply-patch+yaml`) is refused with a
//! 415 that says what to use instead. A patch is applied to the object as the API renders it,
//! and the result read back as the resource's type under the request's field validation, so it
//! then goes through the resource's own update: its checks, permissions and history.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::{ApiError, ApiResult, FieldError};
use super::fields::{FieldValidation, Warnings, decode};
use super::resource::Resource;

pub const JSON_PATCH: &str = "application/json-patch+json";
pub const MERGE_PATCH: &str = "application/merge-patch+json";
pub const STRATEGIC_MERGE_PATCH: &str = "application/strategic-merge-patch+json";
pub const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// The patch media types Berth reads, as its OpenAPI documents declare them.
pub const PATCH_TYPES: [&str; 3] = [JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH];

const MAX_BODY: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
}

/// A PATCH request's body, with the request's field validation.
#[derive(Debug)]
pub struct Patch {
    pub patch_type: PatchType,
    body: Value,
    validation: FieldValidation,
    warnings: Option<Warnings>,
}

impl<S: Send + Sync> FromRequest<S> for Patch {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let media = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let patch_type = match media.as_str() {
            JSON_PATCH => PatchType::Json,
            MERGE_PATCH => PatchType::Merge,
            STRATEGIC_MERGE_PATCH => PatchType::Strategic,
            APPLY_PATCH | "application/apply-patch+cbor" => {
                return Err(ApiError::UnsupportedMediaType(
                    "server-side apply is not supported by Berth: apply without --server-side, or patch with --type=merge, --type=json or --type=strategic".into(),
                ));
            }
            other => {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "the media type {other:?} is not supported for PATCH; use one of {}",
                    PATCH_TYPES.join(", ")
                )));
            }
        };
        let validation = FieldValidation::of_query(request.uri().query())?;
        let warnings = request.extensions().get::<Warnings>().cloned();
        let bytes: Bytes = axum::body::to_bytes(request.into_body(), MAX_BODY)
            .await
            .map_err(|err| {
                ApiError::BadRequest(format!("reading the request body failed: {err}"))
            })?;
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|err| ApiError::BadRequest(format!("the patch is not valid JSON: {err}")))?;
        let shape_ok = match patch_type {
            PatchType::Json => body.is_array(),
            PatchType::Merge | PatchType::Strategic => body.is_object(),
        };
        if !shape_ok {
            return Err(ApiError::BadRequest(match patch_type {
                PatchType::Json => "a JSON patch is a list of operations".into(),
                _ => "a merge patch is a JSON object".into(),
            }));
        }
        Ok(Patch {
            patch_type,
            body,
            validation,
            warnings,
        })
    }
}

impl Patch {
    /// `current` with the patch applied, read back as `T`: a field of the wrong shape or (under
    /// `fieldValidation=Strict`) one `T` does not know is a 422 naming it.
    pub fn apply<T: Serialize + DeserializeOwned + JsonSchema>(
        &self,
        current: &T,
        resource: Resource,
        name: &str,
    ) -> ApiResult<T> {
        let mut document = serde_json::to_value(current).map_err(ApiError::internal)?;
        match self.patch_type {
            PatchType::Json => {
                let operations: json_patch::Patch = serde_json::from_value(self.body.clone())
                    .map_err(|err| ApiError::BadRequest(format!("invalid JSON patch: {err}")))?;
                // On an error the document is dropped, so nothing needs undoing.
                json_patch::patch_unsafe(&mut document, &operations).map_err(|err| {
                    ApiError::invalid(
                        resource,
                        name,
                        FieldError::new(pointer_path(err.path.as_str()), err.to_string()),
                    )
                })?;
            }
            PatchType::Merge => json_patch::merge(&mut document, &self.body),
            PatchType::Strategic => {
                let schema =
                    serde_json::to_value(schemars::schema_for!(T)).map_err(ApiError::internal)?;
                strategic_merge(&mut document, &self.body, &schema, Some(&schema));
            }
        }
        decode(document, self.validation, self.warnings.as_ref())
            .map_err(|err| err.invalid(resource, name))
    }
}

impl Patch {
    /// The patch as an update: `read` gives the object as the API shows it, the patched object
    /// goes to `write` (the resource's own update, with its checks, permission and history)
    /// carrying the resourceVersion it was read at, so a change meanwhile is a conflict; then
    /// the patch is applied again to a fresh read, as Kubernetes does, unless the patch named
    /// a resourceVersion of its own. `version` reads an object's resourceVersion.
    pub async fn update<T, U, Read, Write>(
        &self,
        resource: Resource,
        name: &str,
        version: fn(&T) -> &str,
        read: impl Fn() -> Read,
        write: impl Fn(T) -> Write,
    ) -> ApiResult<U>
    where
        T: Serialize + DeserializeOwned + JsonSchema,
        Read: Future<Output = ApiResult<T>>,
        Write: Future<Output = ApiResult<U>>,
    {
        const ATTEMPTS: usize = 5;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = read().await?;
            let patched = self.apply(&current, resource, name)?;
            let pinned = version(&patched) != version(&current);
            match write(patched).await {
                Err(ApiError::Conflict { .. }) if !pinned && attempt < ATTEMPTS => {}
                other => return other,
            }
        }
    }
}

/// A JSON pointer (`/spec/tags/0/name`) as a field path (`spec.tags[0].name`).
fn pointer_path(pointer: &str) -> String {
    let mut path = String::new();
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if token.parse::<usize>().is_ok() {
            path.push_str(&format!("[{token}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&token);
        }
    }
    path
}

/// `schema` with `$ref`s followed (within `root`'s definitions) and an optional value's
/// `anyOf: [schema, null]` unwrapped.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    let mut schema = schema;
    for _ in 0..16 {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let name = reference.rsplit('/').next().unwrap_or_default();
            let found = ["$defs", "definitions"]
                .iter()
                .find_map(|defs| root.get(defs).and_then(|d| d.get(name)));
            match found {
                Some(found) => schema = found,
                None => return schema,
            }
        } else if let Some(first) = ["anyOf", "oneOf", "allOf"].iter().find_map(|key| {
            schema.get(key).and_then(Value::as_array).and_then(|list| {
                list.iter()
                    .find(|s| s.get("type").and_then(Value::as_str) != Some("null"))
            })
        }) {
            schema = first;
        } else {
            return schema;
        }
    }
    schema
}

fn property<'a>(root: &'a Value, schema: &'a Value, key: &str) -> Option<&'a Value> {
    resolve(root, schema).get("properties")?.get(key)
}

/// Removes strategic merge patch's directives (`$patch`, `$setElementOrder/...`) from a value
/// that is set whole.
fn without_directives(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| !key.starts_with('$'))
                .map(|(key, value)| (key.clone(), without_directives(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|item| item.get("$patch").is_none())
                .map(without_directives)
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Kubernetes' strategic merge patch of `document` by `patch`: maps merge, `null` removes,
/// lists whose schema declares `x-kubernetes-patch-merge-key` merge item by item on that key
/// (`$patch: delete` removes one, `$setElementOrder/FIELD` orders them), other lists are
/// replaced; `$patch: replace`, `$retainKeys` and `$deleteFromPrimitiveList/FIELD` as
/// Kubernetes reads them.
pub fn strategic_merge(document: &mut Value, patch: &Value, root: &Value, schema: Option<&Value>) {
    let Value::Object(patch) = patch else {
        *document = without_directives(patch);
        return;
    };
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *document = without_directives(&Value::Object(patch.clone()));
            return;
        }
        Some("delete") => {
            *document = Value::Object(Map::new());
            return;
        }
        _ => {}
    }
    if !document.is_object() {
        *document = Value::Object(Map::new());
    }
    let Value::Object(target) = document else {
        return;
    };
    if let Some(keep) = patch.get("$retainKeys").and_then(Value::as_array) {
        target.retain(|key, _| keep.iter().any(|k| k.as_str() == Some(key)));
    }
    let mut orders = Vec::new();
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix("$setElementOrder/") {
            orders.push((field, value));
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Some(gone)) =
                (target.get_mut(field), value.as_array())
            {
                items.retain(|item| !gone.contains(item));
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        let child = schema.and_then(|s| property(root, s, key));
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(_) => {
                let entry = target.entry(key.clone()).or_insert(Value::Null);
                strategic_merge(entry, value, root, child);
            }
            Value::Array(items) => {
                let merge_key = child
                    .map(|c| resolve(root, c))
                    .and_then(|c| c.get("x-kubernetes-patch-merge-key"))
                    .and_then(Value::as_str);
                let item_schema = child.map(|c| resolve(root, c)).and_then(|c| c.get("items"));
                match (merge_key, target.get_mut(key)) {
                    (Some(merge_key), Some(Value::Array(existing))) => {
                        merge_list(existing, items, merge_key, root, item_schema);
                    }
                    _ => {
                        target.insert(key.clone(), without_directives(value));
                    }
                }
            }
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
    for (field, order) in orders {
        if let (Some(Value::Array(items)), Some(order)) = (target.get_mut(field), order.as_array())
        {
            let rank = |item: &Value| {
                order.iter().position(|o| match o {
                    Value::Object(keys) => keys.iter().all(|(k, v)| item.get(k) == Some(v)),
                    other => other == item,
                })
            };
            // Items the order names first, in its order; the others after, as they were.
            items.sort_by_key(|item| rank(item).unwrap_or(usize::MAX));
        }
    }
}

fn merge_list(
    existing: &mut Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    root: &Value,
    item_schema: Option<&Value>,
) {
    if patch
        .iter()
        .any(|item| item.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *existing = patch
            .iter()
            .filter(|item| item.get("$patch").is_none())
            .map(without_directives)
            .collect();
        return;
    }
    for item in patch {
        let key = item.get(merge_key);
        let found = key.and_then(|key| existing.iter().position(|e| e.get(merge_key) == Some(key)));
        match (item.get("$patch").and_then(Value::as_str), found) {
            (Some("delete"), Some(at)) => {
                existing.remove(at);
            }
            (Some("delete"), None) => {}
            (_, Some(at)) => strategic_merge(&mut existing[at], item, root, item_schema),
            (_, None) => existing.push(without_directives(item)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {"$ref": "#/$defs/Spec"},
                "metadata": {"type": "object"}
            },
            "$defs": {
                "Spec": {
                    "type": "object",
                    "properties": {
                        "tags": {
                            "type": "array",
                            "items": {"$ref": "#/$defs/Tag"},
                            "x-kubernetes-patch-merge-key": "name",
                            "x-kubernetes-patch-strategy": "merge"
                        }
                    }
                },
                "Tag": {"type": "object", "properties": {"from": {"type": "object"}}}
            }
        })
    }

    fn merged(document: Value, patch: Value) -> Value {
        let schema = schema();
        let mut document = document;
        strategic_merge(&mut document, &patch, &schema, Some(&schema));
        document
    }

    #[test]
    fn tags_merge_by_name() {
        let document = json!({"spec": {"tags": [
            {"name": "a", "from": {"name": "x:1"}},
            {"name": "b", "from": {"name": "x:2"}}
        ]}, "metadata": {"labels": {"keep": "1", "drop": "2"}}});
        let result = merged(
            document,
            json!({
                "metadata": {"labels": {"drop": null, "new": "3"}},
                "spec": {
                    "$setElementOrder/tags": [{"name": "c"}, {"name": "b"}],
                    "tags": [
                        {"name": "b", "from": {"name": "x:9"}},
                        {"name": "a", "$patch": "delete"},
                        {"name": "c", "from": {"name": "y:1"}}
                    ]
                }
            }),
        );
        assert_eq!(
            result,
            json!({"spec": {"tags": [
                {"name": "c", "from": {"name": "y:1"}},
                {"name": "b", "from": {"name": "x:9"}}
            ]}, "metadata": {"labels": {"keep": "1", "new": "3"}}})
        );
    }

    #[test]
    fn a_list_without_a_merge_key_is_replaced() {
        let result = merged(
            json!({"metadata": {"finalizers": ["a", "b"]}}),
            json!({"metadata": {"finalizers": ["c"]}}),
        );
        assert_eq!(result, json!({"metadata": {"finalizers": ["c"]}}));
        let replaced = merged(
            json!({"spec": {"tags": [{"name": "a"}, {"name": "b"}]}}),
            json!({"spec": {"tags": [{"$patch": "replace"}, {"name": "z"}]}}),
        );
        assert_eq!(replaced, json!({"spec": {"tags": [{"name": "z"}]}}));
    }

    #[test]
    fn json_pointers_read_as_field_paths() {
        assert_eq!(pointer_path("/spec/tags/0/name"), "spec.tags[0].name");
        assert_eq!(
            pointer_path("/metadata/annotations/a~1b"),
            "metadata.annotations.a/b"
        );
    }
}
