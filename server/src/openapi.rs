//! OpenAPI documents, as kubectl reads them: `/openapi/v3` (the index of group versions) and
//! `/openapi/v3/api/v1`, `/openapi/v3/apis/{group}/v1` (each group version's paths and
//! schemas), for `kubectl explain`, for `kubectl apply`'s strategic merge patches (the merge
//! keys the schemas declare) and for its server-side field validation (the `fieldValidation`
//! parameter each PATCH operation declares). Paths and verbs come from discovery's table
//! ([`crate::kube::discovery::RESOURCES`]); schemas are derived from the resource types
//! themselves ([`SCHEMAS`], with their doc comments as descriptions), so neither can drift from
//! what is served. A kind without a Rust schema here is published as an object that keeps any
//! field. `/openapi/v2` is a document with no definitions, in the protobuf kubectl asks for:
//! kubectl reads it before any `apply` or `create`, and with no schema there it leaves field
//! validation to the server.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::imagestream::model::{
    Image, ImageStream, ImageStreamImage, ImageStreamImport, ImageStreamMapping, ImageStreamTag,
};
use crate::immutability::ImmutableTagRule;
use crate::kube::discovery::{ApiResource, RESOURCES, groups};
use crate::kube::patch::PATCH_TYPES;
use crate::kube::{ApiError, Namespace, Secret, method_not_allowed};
use crate::prune::pruner::ImagePruner;
use crate::prune::retention::RetentionPolicy;
use crate::quota::{LimitRange, ResourceQuota};
use crate::webhooks::Webhook;

/// A kind's schema, registered in the generator's definitions; answers its reference.
type SchemaOf = fn(&mut SchemaGenerator) -> schemars::Schema;

fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> schemars::Schema {
    generator.subschema_for::<T>()
}

/// The kinds whose schemas are derived from their Rust types, by (group, kind).
const SCHEMAS: &[(&str, &str, SchemaOf)] = &[
    ("", "Namespace", schema::<Namespace>),
    ("", "Secret", schema::<Secret>),
    ("", "ResourceQuota", schema::<ResourceQuota>),
    ("", "LimitRange", schema::<LimitRange>),
    ("image.openshift.io", "ImageStream", schema::<ImageStream>),
    (
        "image.openshift.io",
        "ImageStreamTag",
        schema::<ImageStreamTag>,
    ),
    (
        "image.openshift.io",
        "ImageStreamImage",
        schema::<ImageStreamImage>,
    ),
    (
        "image.openshift.io",
        "ImageStreamMapping",
        schema::<ImageStreamMapping>,
    ),
    (
        "image.openshift.io",
        "ImageStreamImport",
        schema::<ImageStreamImport>,
    ),
    ("image.openshift.io", "Image", schema::<Image>),
    ("berth.io", "ImmutableTagRule", schema::<ImmutableTagRule>),
    ("berth.io", "RetentionPolicy", schema::<RetentionPolicy>),
    ("berth.io", "ImagePruner", schema::<ImagePruner>),
    ("berth.io", "Webhook", schema::<Webhook>),
];

const COMPONENTS: &str = "#/components/schemas/";

/// `api/v1` or `apis/{group}/v1`, as the index names a group version.
fn group_version_path(group: &str) -> String {
    if group.is_empty() {
        "api/v1".into()
    } else {
        format!("apis/{group}/v1")
    }
}

fn gvk(resource: &ApiResource) -> Value {
    json!({"group": resource.resource.group, "version": resource.version, "kind": resource.kind})
}

fn query_parameter(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}})
}

/// The parameters of a write: `fieldValidation` (which kubectl looks for on PATCH before it
/// asks for server-side validation), `fieldManager` and `dryRun` (accepted and ignored).
fn write_parameters() -> Value {
    json!([
        query_parameter(
            "fieldValidation",
            "What to do with fields of the body that the kind does not have: Strict refuses them (422), Warn (the default) answers a Warning header for each, Ignore drops them."
        ),
        query_parameter(
            "fieldManager",
            "Accepted for compatibility; Berth keeps no managed fields."
        ),
        query_parameter("dryRun", "Not supported: a request with it is carried out."),
    ])
}

/// One operation of `resource`: its action, its kind, its body and its answer.
fn operation(resource: &ApiResource, action: &str, reference: &str) -> Value {
    let object = json!({"$ref": reference});
    let mut operation = json!({
        "operationId": format!("{action}{}", resource.kind),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(resource),
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": object}}}},
    });
    match action {
        "post" | "put" => {
            operation["parameters"] = write_parameters();
            operation["requestBody"] =
                json!({"content": {"application/json": {"schema": object}}, "required": true});
        }
        "patch" => {
            operation["parameters"] = write_parameters();
            let content: Map<String, Value> = PATCH_TYPES
                .iter()
                .map(|media| ((*media).to_owned(), json!({"schema": {"type": "object"}})))
                .collect();
            operation["requestBody"] = json!({"content": content, "required": true});
        }
        "list" => {
            operation["responses"] = json!({"200": {"description": "OK"}});
        }
        _ => {}
    }
    operation
}

fn path_parameter(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
}

/// The collection's and the item's paths of `resource`, with the operations its verbs allow.
fn paths_of(resource: &ApiResource, reference: &str, paths: &mut Map<String, Value>) {
    let group = resource.resource.group;
    let base = format!("/{}", group_version_path(group));
    let collection = if resource.namespaced {
        format!(
            "{base}/namespaces/{{namespace}}/{}",
            resource.resource.plural
        )
    } else {
        format!("{base}/{}", resource.resource.plural)
    };
    let scope: Vec<Value> = if resource.namespaced {
        vec![path_parameter("namespace")]
    } else {
        Vec::new()
    };
    let allows = |verb: &str| resource.verbs.contains(&verb);
    let mut collection_item = Map::new();
    if allows("list") {
        collection_item.insert("get".into(), operation(resource, "list", reference));
    }
    if allows("create") {
        collection_item.insert("post".into(), operation(resource, "post", reference));
    }
    if !collection_item.is_empty() {
        collection_item.insert("parameters".into(), Value::Array(scope.clone()));
        paths.insert(collection.clone(), Value::Object(collection_item));
    }
    let mut item = Map::new();
    for (verb, method, action) in [
        ("get", "get", "get"),
        ("update", "put", "put"),
        ("patch", "patch", "patch"),
        ("delete", "delete", "delete"),
    ] {
        if allows(verb) {
            item.insert(method.into(), operation(resource, action, reference));
        }
    }
    if !item.is_empty() {
        let mut parameters = scope;
        parameters.insert(0, path_parameter("name"));
        item.insert("parameters".into(), Value::Array(parameters));
        paths.insert(format!("{collection}/{{name}}"), Value::Object(item));
    }
}

/// The OpenAPI v3 document of `group`'s `v1`.
fn document(group: &str) -> Value {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let mut paths = Map::new();
    let mut kinds: BTreeMap<String, &ApiResource> = BTreeMap::new();
    let mut unschematised = Map::new();
    for resource in RESOURCES.iter().filter(|r| r.resource.group == group) {
        let derived = SCHEMAS
            .iter()
            .find(|(g, kind, _)| *g == group && *kind == resource.kind)
            .map(|(_, _, of)| of(&mut generator));
        let name = match derived
            .as_ref()
            .and_then(|s| s.get("$ref"))
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix(COMPONENTS))
        {
            Some(name) => name.to_owned(),
            None => {
                unschematised.insert(
                    resource.kind.to_owned(),
                    json!({
                        "type": "object",
                        "description": format!("{}: Berth publishes no schema of this kind yet; its fields are those of Berth's API documentation.", resource.kind),
                        "x-kubernetes-preserve-unknown-fields": true,
                    }),
                );
                resource.kind.to_owned()
            }
        };
        paths_of(resource, &format!("{COMPONENTS}{name}"), &mut paths);
        kinds.insert(name, resource);
    }
    let mut schemas = generator.take_definitions(true);
    schemas.extend(unschematised);
    for (name, resource) in kinds {
        if let Some(Value::Object(schema)) = schemas.get_mut(&name) {
            // A list: kubectl looks a kind up among every schema's kinds.
            schema.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([gvk(resource)]),
            );
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Berth", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

/// Every group version's document, serialized once, with the hash the index names it by.
fn documents() -> &'static BTreeMap<String, (String, Vec<u8>)> {
    static DOCUMENTS: OnceLock<BTreeMap<String, (String, Vec<u8>)>> = OnceLock::new();
    DOCUMENTS.get_or_init(|| {
        std::iter::once("")
            .chain(groups())
            .map(|group| {
                let bytes = serde_json::to_vec(&document(group)).unwrap_or_default();
                let hash = hex::encode(Sha256::digest(&bytes)).to_ascii_uppercase();
                (group_version_path(group), (hash, bytes))
            })
            .collect()
    })
}

async fn index() -> Response {
    let paths: Map<String, Value> = documents()
        .iter()
        .map(|(path, (hash, _))| {
            (
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
            )
        })
        .collect();
    axum::Json(json!({ "paths": paths })).into_response()
}

fn group_version(path: &str) -> Response {
    match documents().get(path) {
        Some((hash, bytes)) => (
            [
                (header::CONTENT_TYPE, "application/json".to_owned()),
                (header::ETAG, format!("\"{hash}\"")),
            ],
            bytes.clone(),
        )
            .into_response(),
        None => ApiError::NoSuchResource(format!("/openapi/v3/{path}")).into_response(),
    }
}

/// `/openapi/v2`: Swagger 2.0 with no paths or definitions, as protobuf (`swagger: "2.0"`,
/// `info: {title, version}`) when asked for it, else as JSON.
async fn v2(headers: HeaderMap) -> Response {
    let protobuf = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("protobuf"));
    if !protobuf {
        return axum::Json(json!({"swagger": "2.0", "info": {"title": "Berth", "version": env!("CARGO_PKG_VERSION")}, "paths": {}})).into_response();
    }
    fn field(number: u8, bytes: &[u8]) -> Vec<u8> {
        // Length-delimited fields of a few bytes: one-byte tag and length.
        let mut out = vec![(number << 3) | 2, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }
    let info = [
        field(1, b"Berth"),
        field(2, env!("CARGO_PKG_VERSION").as_bytes()),
    ]
    .concat();
    let body = [field(1, b"2.0"), field(2, &info)].concat();
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        // The type Kubernetes answers with: the `@` of the type asked for does not parse as a
        // media type in Go, and client-go parses the answer's.
        HeaderValue::from_static("application/com.github.proto-openapi.spec.v2.v1.0+protobuf"),
    );
    response
}

/// The OpenAPI routes.
pub fn router() -> Router {
    Router::new()
        .route("/openapi/v2", get(v2))
        .route("/openapi/v3", get(index))
        .route(
            "/openapi/v3/api/v1",
            get(|| async { group_version("api/v1") }),
        )
        .route(
            "/openapi/v3/apis/{group}/{version}",
            get(
                |Path((group, version)): Path<(String, String)>| async move {
                    group_version(&format!("apis/{group}/{version}"))
                },
            ),
        )
        .method_not_allowed_fallback(method_not_allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_of<'a>(document: &'a Value, kind: &str) -> &'a Value {
        document["components"]["schemas"]
            .as_object()
            .unwrap()
            .values()
            .find(|s| s["x-kubernetes-group-version-kind"][0]["kind"] == kind)
            .unwrap_or_else(|| panic!("no schema of {kind}"))
    }

    #[test]
    fn image_streams_have_a_schema_with_the_merge_key_of_their_tags() {
        let document = document("image.openshift.io");
        let stream = schema_of(&document, "ImageStream");
        assert_eq!(
            stream["x-kubernetes-group-version-kind"][0]["group"],
            "image.openshift.io"
        );
        let spec = stream["properties"]["spec"].to_string();
        let spec_name = spec
            .split(COMPONENTS)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap();
        let tags = &document["components"]["schemas"][spec_name]["properties"]["tags"];
        assert_eq!(tags["x-kubernetes-patch-merge-key"], "name");
        assert!(
            tags["description"].as_str().unwrap().contains("spec tags"),
            "{tags}"
        );
    }

    #[test]
    fn every_patch_operation_declares_field_validation_and_its_kind() {
        let document = document("image.openshift.io");
        let path = &document["paths"]["/apis/image.openshift.io/v1/namespaces/{namespace}/imagestreams/{name}"];
        let patch = &path["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "ImageStream"
        );
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
        );
        assert!(
            patch["requestBody"]["content"]
                .get("application/strategic-merge-patch+json")
                .is_some()
        );
        // Every kind of the group has a schema that names it.
        for resource in RESOURCES
            .iter()
            .filter(|r| r.resource.group == "image.openshift.io")
        {
            schema_of(&document, resource.kind);
        }
    }

    #[test]
    fn the_index_names_every_group_version() {
        let paths: Vec<&String> = documents().keys().collect();
        assert!(paths.contains(&&"api/v1".to_owned()));
        assert!(paths.contains(&&"apis/image.openshift.io/v1".to_owned()));
        assert!(paths.contains(&&"apis/berth.io/v1".to_owned()));
    }
}
