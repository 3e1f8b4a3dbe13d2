//! Field validation, as Kubernetes' `fieldValidation` query parameter asks for it on create,
//! update and patch: a field of a body that its type does not know is refused (`Strict`, a 422
//! naming it), reported in a `Warning` header (`Warn`, Kubernetes' default) or dropped
//! (`Ignore`). Which fields are known is what the resource types themselves read, so it cannot
//! drift from them.

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::discovery::by_kind;
use super::error::{ApiError, ApiResult, FieldError};
use super::http::parse_query;
use super::resource::Resource;

/// What to do with fields a body names that its type does not know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

impl FieldValidation {
    /// The request's `fieldValidation` (`Warn` when absent, as Kubernetes has it).
    pub fn of_query(query: Option<&str>) -> ApiResult<Self> {
        #[derive(Deserialize)]
        struct Query {
            #[serde(rename = "fieldValidation")]
            field_validation: Option<String>,
        }
        let query: Query = parse_query(query)?;
        match query.field_validation.as_deref() {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(ApiError::BadRequest(format!(
                "fieldValidation must be Strict, Warn or Ignore, not {other:?}"
            ))),
        }
    }
}

/// Warnings for the answer, each sent as a `Warning: 299 - "..."` header (kubectl prints them
/// as `Warning: ...`); [`warnings`] puts one in every request's extensions.
#[derive(Debug, Clone, Default)]
pub struct Warnings(Arc<Mutex<Vec<String>>>);

impl Warnings {
    pub fn add(&self, warning: String) {
        if let Ok(mut list) = self.0.lock() {
            list.push(warning);
        }
    }

    fn take(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|mut list| std::mem::take(&mut *list))
            .unwrap_or_default()
    }
}

/// The layer that turns the [`Warnings`] a handler added into `Warning` headers.
pub async fn warnings(mut request: Request, next: Next) -> Response {
    let warnings = Warnings::default();
    request.extensions_mut().insert(warnings.clone());
    let mut response = next.run(request).await;
    for warning in warnings.take() {
        // RFC 7234's warn-text is a quoted string; client-go unquotes it.
        let text = format!(
            "299 - \"{}\"",
            warning.replace('\\', "\\\\").replace('"', "\\\"")
        );
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append("warning", value);
        }
    }
    response
}

/// Why a body did not read as its type.
#[derive(Debug, PartialEq)]
pub enum DecodeError {
    /// Fields the type does not know (under `Strict`), as paths: `spec.tags[0].frm`.
    Unknown(Vec<String>),
    /// A field of the wrong shape: its path and why.
    Invalid(FieldError),
}

impl DecodeError {
    /// As the API answers it about `name` of `resource`: 422 naming the fields.
    pub fn invalid(self, resource: Resource, name: &str) -> ApiError {
        let causes = match self {
            DecodeError::Unknown(fields) => fields
                .into_iter()
                .map(|field| FieldError::new(field, "field not declared in schema"))
                .collect(),
            DecodeError::Invalid(cause) => vec![cause],
        };
        ApiError::Invalid {
            resource,
            name: name.to_owned(),
            causes,
        }
    }

    /// As a create or update answers it: 422 about the object when its kind names a resource
    /// Berth serves, else a 400 with Kubernetes' wording.
    pub fn of_body(self, body: &Value) -> ApiError {
        let name = body["metadata"]["name"].as_str().unwrap_or_default();
        match (self, body["kind"].as_str().and_then(by_kind)) {
            (DecodeError::Unknown(fields), Some(resource)) => {
                DecodeError::Unknown(fields).invalid(resource.resource, name)
            }
            (DecodeError::Unknown(fields), None) => ApiError::BadRequest(format!(
                "strict decoding error: {}",
                fields
                    .iter()
                    .map(|f| format!("unknown field \"{f}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            (DecodeError::Invalid(cause), _) => ApiError::BadRequest(format!(
                "the request body is not a valid object: {}: {}",
                cause.field, cause.message
            )),
        }
    }
}

/// A path of `serde_ignored` as Kubernetes writes field paths: `spec.tags[0].name`.
fn field_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        Path::Map { parent, key } => match field_path(parent) {
            parent if parent.is_empty() => key.clone(),
            parent => format!("{parent}.{key}"),
        },
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => field_path(parent),
    }
}

/// `body` read as `T` under `validation`; unknown fields reported to `warnings` under `Warn`.
/// `kind` and `apiVersion` are every object's, known or not to its Rust type.
pub fn decode<T: DeserializeOwned>(
    body: Value,
    validation: FieldValidation,
    warnings: Option<&Warnings>,
) -> Result<T, DecodeError> {
    let mut unknown = Vec::new();
    let read: Result<T, _> = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
        body,
        &mut |path: serde_ignored::Path<'_>| {
            let path = field_path(&path);
            if path != "kind" && path != "apiVersion" {
                unknown.push(path);
            }
        },
    ));
    unknown.sort();
    let value = read.map_err(|err| {
        let field = err.path().to_string();
        DecodeError::Invalid(FieldError::new(
            if field == "." { String::new() } else { field },
            err.into_inner().to_string(),
        ))
    })?;
    match validation {
        FieldValidation::Strict if !unknown.is_empty() => Err(DecodeError::Unknown(unknown)),
        FieldValidation::Warn => {
            if let Some(warnings) = warnings {
                for field in unknown {
                    warnings.add(format!("unknown field \"{field}\""));
                }
            }
            Ok(value)
        }
        _ => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Tag {
        name: String,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Spec {
        #[serde(default)]
        tags: Vec<Tag>,
        #[serde(default)]
        local: Option<bool>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Object {
        spec: Spec,
    }

    #[test]
    fn unknown_fields_are_named_by_their_path() {
        let body = json!({
            "kind": "Object", "apiVersion": "v1",
            "spec": {"tags": [{"name": "a"}, {"name": "b", "frm": 1}], "extra": true, "local": true}
        });
        assert_eq!(
            decode::<Object>(body.clone(), FieldValidation::Strict, None),
            Err(DecodeError::Unknown(vec![
                "spec.extra".into(),
                "spec.tags[1].frm".into()
            ]))
        );
        let warnings = Warnings::default();
        let object: Object = decode(body.clone(), FieldValidation::Warn, Some(&warnings)).unwrap();
        assert_eq!(object.spec.tags.len(), 2);
        assert_eq!(
            warnings.take(),
            [
                "unknown field \"spec.extra\"",
                "unknown field \"spec.tags[1].frm\""
            ]
        );
        assert!(decode::<Object>(body, FieldValidation::Ignore, None).is_ok());
    }

    #[test]
    fn a_field_of_the_wrong_shape_is_named() {
        let body = json!({"spec": {"tags": [{"name": 5}]}});
        match decode::<Object>(body, FieldValidation::Strict, None) {
            Err(DecodeError::Invalid(cause)) => assert_eq!(cause.field, "spec.tags[0].name"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_query_names_the_validation() {
        assert_eq!(
            FieldValidation::of_query(Some("fieldManager=kubectl&fieldValidation=Strict")).unwrap(),
            FieldValidation::Strict
        );
        assert_eq!(
            FieldValidation::of_query(None).unwrap(),
            FieldValidation::Warn
        );
        assert!(FieldValidation::of_query(Some("fieldValidation=Loose")).is_err());
    }
}
