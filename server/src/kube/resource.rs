//! The resource types of Berth's APIs, as Kubernetes names them in messages and `Status`
//! details (`imagestreams.image.openshift.io`).

use std::fmt;

/// A resource type, as Kubernetes names it in messages: `imagestreams.image.openshift.io`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    pub plural: &'static str,
    pub group: &'static str,
}

pub const IMAGE_STREAMS: Resource = Resource {
    plural: "imagestreams",
    group: "image.openshift.io",
};

pub const IMAGE_STREAM_TAGS: Resource = Resource {
    plural: "imagestreamtags",
    group: "image.openshift.io",
};

pub const IMAGE_STREAM_IMAGES: Resource = Resource {
    plural: "imagestreamimages",
    group: "image.openshift.io",
};

pub const IMAGE_STREAM_MAPPINGS: Resource = Resource {
    plural: "imagestreammappings",
    group: "image.openshift.io",
};

pub const IMAGE_STREAM_IMPORTS: Resource = Resource {
    plural: "imagestreamimports",
    group: "image.openshift.io",
};

pub const IMAGES: Resource = Resource {
    plural: "images",
    group: "image.openshift.io",
};

pub const NAMESPACES: Resource = Resource {
    plural: "namespaces",
    group: "",
};

pub const SECRETS: Resource = Resource {
    plural: "secrets",
    group: "",
};

pub const RESOURCE_QUOTAS: Resource = Resource {
    plural: "resourcequotas",
    group: "",
};

pub const LIMIT_RANGES: Resource = Resource {
    plural: "limitranges",
    group: "",
};

pub const WEBHOOKS: Resource = Resource {
    plural: "webhooks",
    group: "berth.io",
};

pub const IMMUTABLE_TAG_RULES: Resource = Resource {
    plural: "immutabletagrules",
    group: "berth.io",
};

pub const TRUSTED_KEYS: Resource = Resource {
    plural: "trustedkeys",
    group: "berth.io",
};

pub const WEBHOOK_DELIVERIES: Resource = Resource {
    plural: "webhookdeliveries",
    group: "berth.io",
};

pub const IMAGE_PRUNES: Resource = Resource {
    plural: "imageprunes",
    group: "berth.io",
};

pub const IMAGE_PRUNERS: Resource = Resource {
    plural: "imagepruners",
    group: "berth.io",
};

pub const RETENTION_POLICIES: Resource = Resource {
    plural: "retentionpolicies",
    group: "berth.io",
};

pub const ACCESS_REVIEWS: Resource = Resource {
    plural: "selfsubjectaccessreviews",
    group: "authorization.k8s.io",
};

pub const AUDIT_EVENTS: Resource = Resource {
    plural: "auditevents",
    group: "access.berth.io",
};

pub const ROLE_BINDINGS: Resource = Resource {
    plural: "rolebindings",
    group: "access.berth.io",
};

pub const GROUPS: Resource = Resource {
    plural: "groups",
    group: "user.openshift.io",
};

pub const IDENTITIES: Resource = Resource {
    plural: "identities",
    group: "user.openshift.io",
};

pub const PERSONAL_TOKENS: Resource = Resource {
    plural: "personaltokens",
    group: "access.berth.io",
};

pub const RULES_REVIEWS: Resource = Resource {
    plural: "selfsubjectrulesreviews",
    group: "authorization.k8s.io",
};

pub const SERVICE_ACCOUNTS: Resource = Resource {
    plural: "serviceaccounts",
    group: "",
};

pub const PROJECTS: Resource = Resource {
    plural: "projects",
    group: "project.openshift.io",
};

pub const USERS: Resource = Resource {
    plural: "users",
    group: "user.openshift.io",
};

pub const WHO_CAN: Resource = Resource {
    plural: "whocan",
    group: "access.berth.io",
};

pub const PERMISSIONS: Resource = Resource {
    plural: "permissions",
    group: "access.berth.io",
};

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(self.plural)
        } else {
            write!(f, "{}.{}", self.plural, self.group)
        }
    }
}
