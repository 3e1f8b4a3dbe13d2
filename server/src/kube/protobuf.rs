//! Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`),
//! which client-go's typed clients send for built-in kinds (`kubectl auth can-i`, `kubectl
//! create token`, `kubectl create serviceaccount`): the `k8s\0` envelope around a
//! `runtime.Unknown`, and the few kinds Berth takes that way read into the JSON its handlers
//! read. Answers stay JSON, which those clients also read. Other kinds are refused with 415.

use serde_json::{Map, Value, json};

use super::error::ApiError;

pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\0";

/// One field of a protobuf message: its number and its value (numbers or bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Wire<'a> {
    Number(u64),
    Bytes(&'a [u8]),
}

fn malformed() -> ApiError {
    ApiError::BadRequest("the request body is not a valid protobuf object".into())
}

fn varint(bytes: &mut &[u8]) -> Result<u64, ApiError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first().ok_or_else(malformed)?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(malformed())
}

fn take<'a>(bytes: &mut &'a [u8], count: usize) -> Result<&'a [u8], ApiError> {
    if bytes.len() < count {
        return Err(malformed());
    }
    let (taken, rest) = bytes.split_at(count);
    *bytes = rest;
    Ok(taken)
}

/// A message's fields in order.
fn fields(mut bytes: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, ApiError> {
    let mut fields = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes)?;
        let value = match key & 7 {
            0 => Wire::Number(varint(&mut bytes)?),
            1 => Wire::Bytes(take(&mut bytes, 8)?),
            2 => {
                let length = usize::try_from(varint(&mut bytes)?).map_err(|_| malformed())?;
                Wire::Bytes(take(&mut bytes, length)?)
            }
            5 => Wire::Bytes(take(&mut bytes, 4)?),
            _ => return Err(malformed()),
        };
        fields.push((key >> 3, value));
    }
    Ok(fields)
}

/// A message's text fields, by number, as JSON fields named `names[number - 1]`.
fn strings(bytes: &[u8], names: &[&str]) -> Result<Map<String, Value>, ApiError> {
    let mut object = Map::new();
    for (number, value) in fields(bytes)? {
        let name = usize::try_from(number)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|n| names.get(n));
        if let (Some(name), Wire::Bytes(text)) = (name, value) {
            let text = std::str::from_utf8(text).map_err(|_| malformed())?;
            object.insert((*name).to_owned(), Value::from(text));
        }
    }
    Ok(object)
}

/// The message of field `number`, if present.
fn message<'a>(fields: &[(u64, Wire<'a>)], number: u64) -> Option<&'a [u8]> {
    fields.iter().find_map(|(n, value)| match value {
        Wire::Bytes(bytes) if *n == number => Some(*bytes),
        _ => None,
    })
}

/// `ObjectMeta`: its name, generateName and namespace are all these requests carry.
fn metadata(bytes: Option<&[u8]>) -> Result<Value, ApiError> {
    Ok(Value::Object(match bytes {
        Some(bytes) => strings(bytes, &["name", "generateName", "namespace"])?,
        None => Map::new(),
    }))
}

/// The kind's fields (after `metadata`, field 1 of every object) as JSON.
fn object(kind: &str, raw: &[u8]) -> Result<Value, ApiError> {
    let top = fields(raw)?;
    let mut object = json!({ "kind": kind, "metadata": metadata(message(&top, 1))? });
    let spec = message(&top, 2)
        .map(fields)
        .transpose()?
        .unwrap_or_default();
    match kind {
        "ServiceAccount" => {}
        "TokenRequest" => {
            let mut out = Map::new();
            let audiences: Vec<Value> = spec
                .iter()
                .filter_map(|(n, value)| match value {
                    Wire::Bytes(text) if *n == 1 => std::str::from_utf8(text).ok().map(Value::from),
                    _ => None,
                })
                .collect();
            if !audiences.is_empty() {
                out.insert("audiences".into(), Value::from(audiences));
            }
            for (n, value) in &spec {
                if let (4, Wire::Number(seconds)) = (n, value) {
                    out.insert("expirationSeconds".into(), Value::from(*seconds));
                }
            }
            object["spec"] = Value::Object(out);
        }
        "SelfSubjectAccessReview" => {
            let mut out = Map::new();
            if let Some(attributes) = message(&spec, 1) {
                let names = [
                    "namespace",
                    "verb",
                    "group",
                    "version",
                    "resource",
                    "subresource",
                    "name",
                ];
                out.insert(
                    "resourceAttributes".into(),
                    Value::Object(strings(attributes, &names)?),
                );
            }
            if let Some(attributes) = message(&spec, 2) {
                out.insert(
                    "nonResourceAttributes".into(),
                    Value::Object(strings(attributes, &["path", "verb"])?),
                );
            }
            object["spec"] = Value::Object(out);
        }
        "SelfSubjectRulesReview" => {
            object["spec"] = Value::Object(match message(&top, 2) {
                Some(spec) => strings(spec, &["namespace"])?,
                None => Map::new(),
            });
        }
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "{other} is not taken as protobuf; send it as application/json"
            )));
        }
    }
    Ok(object)
}

/// A protobuf request body as the JSON object it stands for.
pub fn to_json(body: &[u8]) -> Result<Value, ApiError> {
    let envelope = body.strip_prefix(MAGIC).ok_or_else(malformed)?;
    let unknown = fields(envelope)?;
    let type_meta = strings(
        message(&unknown, 1).unwrap_or_default(),
        &["apiVersion", "kind"],
    )?;
    let kind = type_meta
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut object = object(kind, message(&unknown, 2).unwrap_or_default())?;
    if let Some(api_version) = type_meta.get("apiVersion") {
        object["apiVersion"] = api_version.clone();
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![
            u8::try_from((number << 3) | 2).expect("small"),
            u8::try_from(bytes.len()).expect("short"),
        ];
        out.extend_from_slice(bytes);
        out
    }

    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let type_meta = [field(1, api_version.as_bytes()), field(2, kind.as_bytes())].concat();
        [MAGIC.to_vec(), field(1, &type_meta), field(2, raw)].concat()
    }

    #[test]
    fn an_access_review_reads_as_its_json() {
        let attributes = [
            field(1, b"team"),
            field(2, b"update"),
            field(3, b"image.openshift.io"),
            field(5, b"imagestreams"),
            field(6, b"layers"),
        ]
        .concat();
        let raw = [field(1, &[]), field(2, &field(1, &attributes))].concat();
        let body = envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", &raw);
        assert_eq!(
            to_json(&body).expect("decoded"),
            json!({
                "kind": "SelfSubjectAccessReview",
                "apiVersion": "authorization.k8s.io/v1",
                "metadata": {},
                "spec": {"resourceAttributes": {
                    "namespace": "team", "verb": "update", "group": "image.openshift.io",
                    "resource": "imagestreams", "subresource": "layers",
                }},
            })
        );
    }

    #[test]
    fn a_token_request_and_a_service_account_read_as_their_json() {
        let spec = [field(1, b"berth"), vec![4 << 3, 0xb0, 0x1c]].concat();
        let raw = [field(1, &field(1, b"builder")), field(2, &spec)].concat();
        let token =
            to_json(&envelope("authentication.k8s.io/v1", "TokenRequest", &raw)).expect("decoded");
        assert_eq!(
            token["spec"],
            json!({"audiences": ["berth"], "expirationSeconds": 3632})
        );
        assert_eq!(token["metadata"]["name"], "builder");
        let account = to_json(&envelope(
            "v1",
            "ServiceAccount",
            &field(1, &field(1, b"ci")),
        ))
        .expect("decoded");
        assert_eq!(account["metadata"]["name"], "ci");
    }

    #[test]
    fn other_kinds_and_broken_bodies_are_refused() {
        assert!(matches!(
            to_json(&envelope("v1", "Pod", &[])),
            Err(ApiError::UnsupportedMediaType(_))
        ));
        assert!(matches!(to_json(b"{}"), Err(ApiError::BadRequest(_))));
        assert!(matches!(
            to_json(&[MAGIC, &[0x0a, 0x7f]].concat()),
            Err(ApiError::BadRequest(_))
        ));
    }
}
