//! `LimitRange`: OpenShift's image limits of a namespace, as `spec.limits[]` items of type
//! `openshift.io/Image` (`max.storage`: the largest image pushed, its config and layers) and
//! `openshift.io/ImageStream` (`max` of `openshift.io/images`, the distinct images a stream's
//! tags have named, and `openshift.io/image-tags`, a stream's tags). Only `max` is enforced,
//! so only `max` is taken.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{QuotaResource, object_meta, read_quantities, stored_spec};
use crate::kube::{ApiResult, CORE_API_VERSION, FieldError, LIMIT_RANGES, ObjectMeta, Resource};
use crate::storage::quotas::{
    IMAGE_LIMIT, IMAGE_SIZE_RESOURCE, IMAGE_STREAM_LIMIT, Limited, QuotaKind, QuotaLimit,
    QuotaObject, QuotaUsage, STREAM_IMAGES_RESOURCE, STREAM_TAGS_RESOURCE,
};

/// Kubernetes' `LimitRange`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LimitRange {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: LimitRangeSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LimitRangeSpec {
    #[serde(default)]
    pub limits: Vec<LimitRangeItem>,
}

type Quantities = BTreeMap<String, serde_json::Value>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LimitRangeItem {
    #[serde(rename = "type", default)]
    pub limit_type: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub max: Quantities,
    // Kubernetes' other bounds, for containers and pods: refused, since nothing would enforce
    // them here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub min: Quantities,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub default: Quantities,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub default_request: Quantities,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub max_limit_request_ratio: Quantities,
}

/// What `max` may name for an item type, and what each limits.
fn limited(limit_type: &str, resource: &str) -> Option<Limited> {
    match (limit_type, resource) {
        (IMAGE_LIMIT, IMAGE_SIZE_RESOURCE) => Some(Limited::ImageSize),
        (IMAGE_STREAM_LIMIT, STREAM_IMAGES_RESOURCE) => Some(Limited::StreamImages),
        (IMAGE_STREAM_LIMIT, STREAM_TAGS_RESOURCE) => Some(Limited::StreamTags),
        _ => None,
    }
}

/// The resources `max` may name for an item type, as a message lists them.
fn supported(limit_type: &str) -> &'static str {
    if limit_type == IMAGE_LIMIT {
        "\"storage\""
    } else {
        "\"openshift.io/images\", \"openshift.io/image-tags\""
    }
}

impl QuotaResource for LimitRange {
    const KIND: QuotaKind = QuotaKind::LimitRange;
    const RESOURCE: Resource = LIMIT_RANGES;
    const LIST_KIND: &'static str = "LimitRangeList";
    const AUDITED: [&'static str; 3] = [
        "limitrange-create",
        "limitrange-update",
        "limitrange-delete",
    ];

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn kind(&self) -> &str {
        &self.kind
    }

    fn check(&self) -> Result<(Vec<QuotaLimit>, serde_json::Value), Vec<FieldError>> {
        let mut causes = Vec::new();
        let mut limits = Vec::new();
        let mut shown = Vec::new();
        for (index, item) in self.spec.limits.iter().enumerate() {
            let at = format!("spec.limits[{index}]");
            if item.limit_type != IMAGE_LIMIT && item.limit_type != IMAGE_STREAM_LIMIT {
                causes.push(FieldError::new(
                    format!("{at}.type"),
                    format!(
                        "Unsupported value: {:?}: supported values: \"{IMAGE_LIMIT}\", \"{IMAGE_STREAM_LIMIT}\"",
                        item.limit_type
                    ),
                ));
                continue;
            }
            for (field, bounds) in [
                ("min", &item.min),
                ("default", &item.default),
                ("defaultRequest", &item.default_request),
                ("maxLimitRequestRatio", &item.max_limit_request_ratio),
            ] {
                if !bounds.is_empty() {
                    causes.push(FieldError::new(
                        format!("{at}.{field}"),
                        format!("Forbidden: {} limits take max only", item.limit_type),
                    ));
                }
            }
            let limit_type = item.limit_type.as_str();
            let max = read_quantities(
                &format!("{at}.max"),
                &item.max,
                |resource| limited(limit_type, resource),
                supported(limit_type),
                &mut limits,
                &mut causes,
            );
            shown.push(ShownItem {
                limit_type: item.limit_type.clone(),
                max,
            });
        }
        if !causes.is_empty() {
            return Err(causes);
        }
        serde_json::to_value(ShownSpec { limits: shown })
            .map(|spec| (limits, spec))
            .map_err(|err| vec![FieldError::new("spec", err.to_string())])
    }

    fn render(object: &QuotaObject, _usage: &QuotaUsage) -> ApiResult<Self> {
        let spec: ShownSpec = stored_spec(object)?;
        Ok(LimitRange {
            kind: Self::KIND.as_str().into(),
            api_version: CORE_API_VERSION.into(),
            metadata: object_meta(object),
            spec: LimitRangeSpec {
                limits: spec
                    .limits
                    .into_iter()
                    .map(|item| LimitRangeItem {
                        limit_type: item.limit_type,
                        max: item
                            .max
                            .into_iter()
                            .map(|(resource, quantity)| {
                                (resource, serde_json::Value::String(quantity))
                            })
                            .collect(),
                        ..LimitRangeItem::default()
                    })
                    .collect(),
            },
        })
    }

    fn shows_usage() -> bool {
        false
    }
}

/// The spec as stored: each item's type and `max`, quantities in their canonical form.
#[derive(Serialize, Deserialize)]
struct ShownSpec {
    limits: Vec<ShownItem>,
}

#[derive(Serialize, Deserialize)]
struct ShownItem {
    #[serde(rename = "type")]
    limit_type: String,
    max: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(limits: serde_json::Value) -> LimitRange {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": {"name": "images"},
            "spec": {"limits": limits},
        }))
        .unwrap()
    }

    #[test]
    fn image_and_stream_limits_are_read_as_openshift_writes_them() {
        let (limits, spec) = range(serde_json::json!([
            {"type": "openshift.io/Image", "max": {"storage": "1024Mi"}},
            {"type": "openshift.io/ImageStream",
             "max": {"openshift.io/images": 30, "openshift.io/image-tags": "20"}},
        ]))
        .check()
        .unwrap();
        assert_eq!(
            limits,
            [
                QuotaLimit {
                    limited: Limited::ImageSize,
                    max: 1 << 30
                },
                QuotaLimit {
                    limited: Limited::StreamTags,
                    max: 20
                },
                QuotaLimit {
                    limited: Limited::StreamImages,
                    max: 30
                },
            ]
        );
        assert_eq!(
            spec,
            serde_json::json!({"limits": [
                {"type": "openshift.io/Image", "max": {"storage": "1Gi"}},
                {"type": "openshift.io/ImageStream",
                 "max": {"openshift.io/image-tags": "20", "openshift.io/images": "30"}},
            ]})
        );
    }

    #[test]
    fn container_limits_and_other_bounds_are_refused_by_field() {
        let causes = range(serde_json::json!([
            {"type": "Container", "max": {"cpu": "1"}},
            {"type": "openshift.io/Image", "max": {"cpu": "1", "storage": "x"}, "min": {"storage": "1"}},
        ]))
        .check()
        .unwrap_err();
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.limits[0].type",
                "spec.limits[1].min",
                "spec.limits[1].max[cpu]",
                "spec.limits[1].max[storage]"
            ]
        );
    }
}
