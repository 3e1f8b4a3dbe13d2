//! `ResourceQuota`: a namespace's hard limits, `openshift.io/imagestreams` (its image streams)
//! and `berth.io/storage` (bytes of what its images reference, each layer once), with `status`
//! saying each limit and what is used of it.
//!
//! The storage quota is named `berth.io/storage`, not Kubernetes' `requests.storage`: on a
//! cluster that one sums the storage persistent volume claims request, so a quota copied from
//! a cluster would limit pushes by a volume budget (and this one, applied to a cluster, would
//! limit volumes).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{QuotaResource, object_meta, read_quantities, stored_spec};
use crate::kube::{ApiResult, CORE_API_VERSION, FieldError, ObjectMeta, RESOURCE_QUOTAS, Resource};
use crate::storage::quotas::{
    IMAGE_STREAMS_RESOURCE, Limited, QuotaKind, QuotaLimit, QuotaObject, QuotaUsage,
    STORAGE_RESOURCE,
};

/// Kubernetes' `ResourceQuota`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceQuota {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ResourceQuotaSpec,
    /// Shown; read from a request (a patch starts from the object as shown) and ignored.
    #[serde(default)]
    pub status: ResourceQuotaStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceQuotaSpec {
    /// Each resource's limit: a quantity as a string (`"10Gi"`) or a number (`20`).
    #[serde(default)]
    pub hard: BTreeMap<String, serde_json::Value>,
    /// Kubernetes' quota scopes (pods by priority class...): none of them is about images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_selector: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResourceQuotaStatus {
    #[serde(default)]
    pub hard: BTreeMap<String, String>,
    #[serde(default)]
    pub used: BTreeMap<String, String>,
}

/// What `spec.hard` may name, and what each limits.
fn limited(resource: &str) -> Option<Limited> {
    match resource {
        IMAGE_STREAMS_RESOURCE => Some(Limited::ImageStreams),
        STORAGE_RESOURCE => Some(Limited::Storage),
        _ => None,
    }
}

impl QuotaResource for ResourceQuota {
    const KIND: QuotaKind = QuotaKind::ResourceQuota;
    const RESOURCE: Resource = RESOURCE_QUOTAS;
    const LIST_KIND: &'static str = "ResourceQuotaList";
    const AUDITED: [&'static str; 3] = [
        "resourcequota-create",
        "resourcequota-update",
        "resourcequota-delete",
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
        let hard = read_quantities(
            "spec.hard",
            &self.spec.hard,
            limited,
            &format!("\"{IMAGE_STREAMS_RESOURCE}\", \"{STORAGE_RESOURCE}\""),
            &mut limits,
            &mut causes,
        );
        if !self.spec.scopes.is_empty() || self.spec.scope_selector.is_some() {
            causes.push(FieldError::new(
                "spec.scopes",
                "Forbidden: scopes select pods; Berth's quotas count a namespace's images",
            ));
        }
        if causes.is_empty() {
            Ok((limits, serde_json::json!({ "hard": hard })))
        } else {
            Err(causes)
        }
    }

    fn render(object: &QuotaObject, usage: &QuotaUsage) -> ApiResult<Self> {
        let hard: BTreeMap<String, String> = stored_spec::<ResourceQuotaSpecShown>(object)?.hard;
        let used = object
            .limits
            .iter()
            .filter_map(|limit| {
                let amount = usage.of(limit.limited)?;
                Some((
                    limit.limited.resource().to_owned(),
                    limit.limited.quantity(amount).to_string(),
                ))
            })
            .collect();
        Ok(ResourceQuota {
            kind: Self::KIND.as_str().into(),
            api_version: CORE_API_VERSION.into(),
            metadata: object_meta(object),
            spec: ResourceQuotaSpec {
                hard: hard
                    .iter()
                    .map(|(resource, quantity)| {
                        (
                            resource.clone(),
                            serde_json::Value::String(quantity.clone()),
                        )
                    })
                    .collect(),
                scopes: Vec::new(),
                scope_selector: None,
            },
            status: ResourceQuotaStatus { hard, used },
        })
    }

    fn shows_usage() -> bool {
        true
    }
}

/// The spec as stored: quantities in their canonical form.
#[derive(Deserialize)]
struct ResourceQuotaSpecShown {
    hard: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(hard: serde_json::Value) -> ResourceQuota {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "registry"},
            "spec": {"hard": hard},
        }))
        .unwrap()
    }

    #[test]
    fn hard_limits_are_read_in_kubernetes_notation_and_kept_canonical() {
        let (limits, spec) = quota(serde_json::json!({
            "openshift.io/imagestreams": 20,
            "berth.io/storage": "10240Mi",
        }))
        .check()
        .unwrap();
        assert_eq!(
            limits,
            [
                QuotaLimit {
                    limited: Limited::Storage,
                    max: 10 << 30
                },
                QuotaLimit {
                    limited: Limited::ImageStreams,
                    max: 20
                },
            ]
        );
        assert_eq!(
            spec,
            serde_json::json!({"hard": {"berth.io/storage": "10Gi", "openshift.io/imagestreams": "20"}})
        );
    }

    #[test]
    fn every_field_at_fault_is_named() {
        let causes = quota(serde_json::json!({
            "pods": "10",
            "berth.io/storage": "10GB",
            "openshift.io/imagestreams": "1.5",
        }))
        .check()
        .unwrap_err();
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.hard[berth.io/storage]",
                "spec.hard[openshift.io/imagestreams]",
                "spec.hard[pods]"
            ]
        );
        assert!(causes[1].message.contains("whole number"), "{causes:?}");
    }
}
