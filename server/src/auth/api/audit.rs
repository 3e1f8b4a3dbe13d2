//! The audit log (`GET /apis/access.berth.io/v1/auditevents`), for cluster administrators; and
//! the console's pages of it, filtered by who acted and on which namespace.

use crate::kube::AUDIT_EVENTS;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Access, AccessApi, list, require_cluster_admin};
use crate::auth::Subject;
use crate::auth::http::Caller;
use crate::kube::{ApiQuery, ApiResult};
use crate::oci::is_valid_namespace;
use crate::storage::auth::AuditRecord;

/// Entries a filtered page reads at most. The store filters nothing (no column holds the
/// namespace, no index the actor), so a filter is applied here to this many entries at a time:
/// a page may show fewer matches than the log holds, and "Older" searches on.
pub const AUDIT_SCAN: u32 = 1000;

/// Actions whose target is a namespace's name itself (the others name `namespace/object`).
const ON_A_NAMESPACE: &[&str] = &["namespace-create", "namespace-delete", "prune-images"];

#[derive(Debug, Default, Deserialize)]
pub(super) struct AuditQuery {
    limit: Option<u32>,
    before: Option<i64>,
}

/// Which entries of the audit log a page shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditSearch {
    /// Entries older than this one (its id), the newest first.
    pub before: Option<i64>,
    /// Entries whose actor is this (a user's name, `system:serviceaccount:ns:name`).
    pub actor: Option<String>,
    /// Entries about this namespace or something in it.
    pub namespace: Option<String>,
    /// Entries a page shows at most.
    pub page: u32,
}

impl AuditSearch {
    /// Whether the page is filtered (by the server, [`AUDIT_SCAN`] entries at a time).
    pub fn filtered(&self) -> bool {
        self.actor.is_some() || self.namespace.is_some()
    }

    fn matches(&self, entry: &AuditRecord) -> bool {
        self.actor
            .as_ref()
            .is_none_or(|actor| entry.actor == *actor)
            && self.namespace.as_deref().is_none_or(|namespace| {
                namespace_of(&entry.action, &entry.target) == Some(namespace)
            })
    }
}

/// A page of the audit log, the newest entry first.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPage {
    pub entries: Vec<AuditRecord>,
    /// Where the next older page starts (`before`), when there may be older entries.
    pub older: Option<i64>,
}

/// The namespace an entry is about, read from its target: the namespace itself for
/// [`ON_A_NAMESPACE`]'s actions, else the part before the first `/` (`team/app:v1`, `team/ci`);
/// none for tokens, groups, sign-ins and registry-wide bindings (`-/name`).
pub fn namespace_of<'a>(action: &str, target: &'a str) -> Option<&'a str> {
    let namespace = if ON_A_NAMESPACE.contains(&action) {
        target
    } else {
        target.split_once('/')?.0
    };
    is_valid_namespace(namespace).then_some(namespace)
}

impl AccessApi {
    /// Up to `limit` entries older than `before`, the newest first.
    pub async fn audit_events(
        &self,
        who: &Subject,
        before: Option<i64>,
        limit: u32,
    ) -> ApiResult<Vec<AuditRecord>> {
        require_cluster_admin(self, who, AUDIT_EVENTS)?;
        Ok(self.auth.store.list_audit(before, limit).await?)
    }

    /// A page of the entries `search` asks for. Unfiltered, one more entry than the page is
    /// read, to know whether there are older ones; filtered, [`AUDIT_SCAN`] entries are read
    /// and filtered here, and `older` goes on after the last one read when the page is not full.
    pub async fn audit_page(&self, who: &Subject, search: &AuditSearch) -> ApiResult<AuditPage> {
        let page = search.page.clamp(1, AUDIT_SCAN - 1);
        let scan = if search.filtered() {
            AUDIT_SCAN
        } else {
            page + 1
        };
        let read = self.audit_events(who, search.before, scan).await?;
        let whole_rest = read.len() < scan as usize;
        let last_read = read.last().map(|entry| entry.id);
        let mut matching = read.into_iter().filter(|entry| search.matches(entry));
        let entries: Vec<AuditRecord> = matching.by_ref().take(page as usize).collect();
        let more = matching.next().is_some();
        let older = if entries.len() == page as usize && (more || !whole_rest) {
            entries.last().map(|entry| entry.id)
        } else if whole_rest {
            None
        } else {
            last_read
        };
        Ok(AuditPage { entries, older })
    }
}

pub(super) async fn audit_events(
    State(api): Access,
    caller: Caller,
    ApiQuery(params): ApiQuery<AuditQuery>,
) -> Response {
    let limit = params.limit.unwrap_or(100).min(1000);
    match api
        .audit_events(&caller.subject, params.before, limit)
        .await
    {
        Ok(entries) => list("AuditEventList", "access.berth.io/v1", entries),
        Err(err) => err.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_about_the_namespace_its_target_names() {
        assert_eq!(namespace_of("namespace-create", "team"), Some("team"));
        assert_eq!(namespace_of("prune-images", "team"), Some("team"));
        assert_eq!(namespace_of("prune-images", "*"), None);
        assert_eq!(namespace_of("imagestream-delete", "team/app"), Some("team"));
        assert_eq!(
            namespace_of("manifest-delete", "team/app@sha256:abc"),
            Some("team")
        );
        assert_eq!(namespace_of("binding-create", "-/admins"), None);
        assert_eq!(namespace_of("token-create", "personal token 0b6f"), None);
        assert_eq!(namespace_of("group-update", "developers"), None);
        assert_eq!(namespace_of("login-console", "console"), None);
    }

    #[test]
    fn a_search_matches_actor_and_namespace_together() {
        let entry = AuditRecord {
            id: 1,
            time: chrono::Utc::now(),
            actor: "alice".into(),
            action: "imagestream-delete".into(),
            target: "team/app".into(),
            outcome: "success".into(),
            address: None,
            detail: None,
        };
        let search = |actor: Option<&str>, namespace: Option<&str>| AuditSearch {
            actor: actor.map(str::to_owned),
            namespace: namespace.map(str::to_owned),
            ..AuditSearch::default()
        };
        assert!(search(None, None).matches(&entry));
        assert!(search(Some("alice"), Some("team")).matches(&entry));
        assert!(!search(Some("bob"), Some("team")).matches(&entry));
        assert!(!search(Some("alice"), Some("tea")).matches(&entry));
    }
}
