//! Who asks (a [`Subject`]), what for (an [`Action`]), on what (a [`Target`]), and the roles that
//! allow it.

use std::fmt;
use std::net::IpAddr;

/// A role, from least to most: each allows what the ones before it do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Pull images; list and get streams and tags (OpenShift's `registry-viewer`).
    Viewer,
    /// Viewer plus push, tag and import (`registry-editor`, `system:image-pusher`).
    Editor,
    /// Editor plus delete and managing bindings and service accounts (`admin`).
    Admin,
    /// Everything, everywhere (`cluster-admin`).
    ClusterAdmin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Editor, Role::Admin, Role::ClusterAdmin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
            Role::ClusterAdmin => "cluster-admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// Whether this role allows `action`.
    pub fn allows(self, action: Action) -> bool {
        self >= action.least_role()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Pull images; list, get and watch streams, tags and images.
    Pull,
    /// Push images; create streams; tag and import.
    Push,
    /// Delete images, tags, streams and namespaces.
    Delete,
    /// List, add and remove bindings; manage service accounts and their tokens.
    ManageAccess,
    /// Create, change and delete a namespace's `ResourceQuota`s and `LimitRange`s: cluster
    /// administrators only, as in OpenShift, so that no project admin raises their own quota.
    ManageQuotas,
}

impl Action {
    /// The verb Kubernetes names for this action in a Forbidden message.
    pub fn verb(self) -> &'static str {
        match self {
            Action::Pull => "get",
            Action::Push => "update",
            Action::Delete => "delete",
            Action::ManageAccess => "manage",
            Action::ManageQuotas => "update",
        }
    }

    pub const ALL: [Action; 5] = [
        Action::Pull,
        Action::Push,
        Action::Delete,
        Action::ManageAccess,
        Action::ManageQuotas,
    ];

    pub fn least_role(self) -> Role {
        match self {
            Action::Pull => Role::Viewer,
            Action::Push => Role::Editor,
            Action::Delete | Action::ManageAccess => Role::Admin,
            Action::ManageQuotas => Role::ClusterAdmin,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
            Action::ManageAccess => "manage-access",
            Action::ManageQuotas => "manage-quotas",
        }
    }

    pub fn parse(text: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

/// Groups every subject of a kind belongs to, as in OpenShift.
pub const AUTHENTICATED: &str = "system:authenticated";
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
pub const SERVICE_ACCOUNTS: &str = "system:serviceaccounts";

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Anonymous,
    User { name: String, groups: Vec<String> },
    ServiceAccount { namespace: String, name: String },
}

impl Subject {
    /// Who this is, as one stable key (`User:alice`, `ServiceAccount:team:ci`, `Anonymous`): what
    /// a list's `continue` token is bound to.
    pub fn key(&self) -> String {
        match self {
            Subject::Anonymous => "Anonymous".to_owned(),
            Subject::User { name, .. } => format!("User:{name}"),
            Subject::ServiceAccount { namespace, name } => {
                format!("ServiceAccount:{namespace}:{name}")
            }
        }
    }

    /// The binding subjects that apply to this subject: itself and its groups, as
    /// `Kind:name` keys of the binding index. What is granted to anonymous callers
    /// (`system:unauthenticated`) is granted to everyone: signing in never takes access away.
    pub fn binding_keys(&self) -> Vec<String> {
        match self {
            Subject::Anonymous => vec![format!("Group:{UNAUTHENTICATED}")],
            Subject::User { name, groups } => {
                let mut keys = Vec::with_capacity(groups.len() + 3);
                keys.push(format!("User:{name}"));
                keys.push(format!("Group:{AUTHENTICATED}"));
                keys.push(format!("Group:{UNAUTHENTICATED}"));
                keys.extend(groups.iter().map(|g| format!("Group:{g}")));
                keys
            }
            Subject::ServiceAccount { namespace, name } => vec![
                format!("ServiceAccount:{namespace}:{name}"),
                format!("Group:{AUTHENTICATED}"),
                format!("Group:{UNAUTHENTICATED}"),
                format!("Group:{SERVICE_ACCOUNTS}"),
                format!("Group:{SERVICE_ACCOUNTS}:{namespace}"),
            ],
        }
    }

    /// The name OpenShift would show: `alice`, `system:serviceaccount:ns:builder`,
    /// `system:anonymous`.
    pub fn display_name(&self) -> String {
        match self {
            Subject::Anonymous => "system:anonymous".into(),
            Subject::User { name, .. } => name.clone(),
            Subject::ServiceAccount { namespace, name } => {
                format!("system:serviceaccount:{namespace}:{name}")
            }
        }
    }

    pub fn is_anonymous(&self) -> bool {
        matches!(self, Subject::Anonymous)
    }

    /// Whom a watch is counted against (by the limits on open watches): the subject, or for
    /// anonymous callers their address (an IPv6 client by its /64, which one host commonly
    /// holds whole).
    pub fn watch_key(&self, address: Option<IpAddr>) -> String {
        match self {
            Subject::User { name, .. } => format!("User:{name}"),
            Subject::ServiceAccount { namespace, name } => {
                format!("ServiceAccount:{namespace}:{name}")
            }
            Subject::Anonymous => format!("Address:{}", AddressKey::of(address)),
        }
    }
}

/// An address as the key it is counted under (sign-in throttling, an anonymous caller's
/// watches): IPv6 by its /64 (one host usually holds a whole /64), an IPv4-mapped address as
/// IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressKey {
    V4([u8; 4]),
    V6([u8; 8]),
    Unknown,
}

impl AddressKey {
    pub fn of(address: Option<IpAddr>) -> Self {
        match address.map(|a| a.to_canonical()) {
            Some(IpAddr::V4(v4)) => AddressKey::V4(v4.octets()),
            Some(IpAddr::V6(v6)) => {
                let octets = v6.octets();
                let mut prefix = [0; 8];
                prefix.copy_from_slice(&octets[..8]);
                AddressKey::V6(prefix)
            }
            None => AddressKey::Unknown,
        }
    }
}

impl fmt::Display for AddressKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressKey::V4([a, b, c, d]) => write!(f, "{a}.{b}.{c}.{d}"),
            AddressKey::V6(prefix) => {
                let segment = |i: usize| u16::from_be_bytes([prefix[2 * i], prefix[2 * i + 1]]);
                let (a, b, c, d) = (segment(0), segment(1), segment(2), segment(3));
                write!(f, "{a:x}:{b:x}:{c:x}:{d:x}::/64")
            }
            AddressKey::Unknown => f.write_str("unknown"),
        }
    }
}

/// What a request acts on: the registry, a namespace, or one stream of a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    pub namespace: Option<&'a str>,
    pub stream: Option<&'a str>,
}

impl<'a> Target<'a> {
    pub const REGISTRY: Target<'static> = Target {
        namespace: None,
        stream: None,
    };

    pub fn namespace(namespace: &'a str) -> Self {
        Target {
            namespace: Some(namespace),
            stream: None,
        }
    }

    pub fn stream(namespace: &'a str, stream: &'a str) -> Self {
        Target {
            namespace: Some(namespace),
            stream: Some(stream),
        }
    }
}

impl fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.namespace, self.stream) {
            (None, _) => f.write_str("the registry"),
            (Some(namespace), None) => write!(f, "namespace {namespace}"),
            (Some(namespace), Some(stream)) => write!(f, "{namespace}/{stream}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_include_the_ones_below() {
        assert!(Role::Viewer.allows(Action::Pull));
        assert!(!Role::Viewer.allows(Action::Push));
        assert!(Role::Editor.allows(Action::Push));
        assert!(!Role::Editor.allows(Action::Delete));
        assert!(Role::Admin.allows(Action::ManageAccess));
        assert!(!Role::Admin.allows(Action::ManageQuotas));
        assert!(Role::ClusterAdmin.allows(Action::ManageQuotas));
        assert!(Role::ClusterAdmin.allows(Action::Delete));
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
    }

    /// The console's role menu says what each role allows: exactly what this model decides.
    #[test]
    fn the_role_menu_says_what_each_role_allows() {
        for (name, listed) in app::api::access::GRANTABLE_ROLES {
            let role = Role::parse(name).unwrap();
            let allowed: Vec<&str> = Action::ALL
                .into_iter()
                .filter(|action| role.allows(*action))
                .map(Action::as_str)
                .collect();
            assert_eq!(listed, allowed.as_slice(), "the menu's {name}");
        }
    }

    #[test]
    fn subjects_carry_their_implied_groups() {
        let user = Subject::User {
            name: "alice".into(),
            groups: vec!["devs".into()],
        };
        assert_eq!(
            user.binding_keys(),
            [
                "User:alice",
                "Group:system:authenticated",
                "Group:system:unauthenticated",
                "Group:devs"
            ]
        );
        assert_eq!(
            Subject::Anonymous.binding_keys(),
            ["Group:system:unauthenticated"]
        );
        let account = Subject::ServiceAccount {
            namespace: "ci".into(),
            name: "builder".into(),
        };
        assert!(
            account
                .binding_keys()
                .contains(&"Group:system:serviceaccounts:ci".to_owned())
        );
        assert_eq!(account.display_name(), "system:serviceaccount:ci:builder");
    }

    #[test]
    fn anonymous_callers_are_counted_by_address() {
        let v6 = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(
            Subject::Anonymous.watch_key(v6("2001:db8:1:2:3:4:5:6")),
            Subject::Anonymous.watch_key(v6("2001:db8:1:2:ffff::1"))
        );
        assert_ne!(
            Subject::Anonymous.watch_key(v6("10.0.0.1")),
            Subject::Anonymous.watch_key(v6("10.0.0.2"))
        );
        assert_eq!(
            Subject::Anonymous.watch_key(v6("::ffff:10.0.0.1")),
            "Address:10.0.0.1"
        );
        assert_eq!(
            Subject::Anonymous.watch_key(v6("2001:db8:a:b0c::1")),
            "Address:2001:db8:a:b0c::/64"
        );
        assert_eq!(Subject::Anonymous.watch_key(None), "Address:unknown");
        let alice = Subject::User {
            name: "alice".into(),
            groups: vec![],
        };
        assert_eq!(alice.watch_key(v6("10.0.0.1")), "User:alice");
    }
}
