//! The audit log, for cluster administrators: who did what to what, and when, the newest first,
//! a page at a time, filtered by who acted and by namespace.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::ConsoleResult;
#[cfg(feature = "ssr")]
use super::console_data;

/// Entries a page of the audit log shows at most.
pub const AUDIT_PAGE: u32 = 50;

/// An entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEventRow {
    /// Its place in the log: the cursor of the page after it (`?before=`).
    pub id: i64,
    pub time: String,
    /// Who acted: a user's name, `system:serviceaccount:ns:name`, or the name tried at a
    /// failed sign-in.
    pub actor: String,
    /// `namespace-create`, `token-revoke`, `login-console`...
    pub action: String,
    /// What it was done to, as the log names it (`team/app:v1`, `personal token 0b6f…`).
    pub target: String,
    /// The namespace the target is in, when it names one.
    pub namespace: Option<String>,
    pub success: bool,
    /// The client's address, for sign-ins.
    pub address: Option<String>,
    pub detail: Option<String>,
}

/// A page of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuditEvents {
    pub events: Vec<AuditEventRow>,
    /// Where the next older page starts, when there may be one.
    pub older: Option<i64>,
    /// A filtered page was searched for among this many entries at most (the store does not
    /// filter, so the server does, a slice of the log at a time); 0 when not filtered.
    pub filtered_among: u32,
}

/// The audit log.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait AuditData: Send + Sync {
    /// Up to [`AUDIT_PAGE`] entries older than `before`, the newest first; only those by `user`
    /// and about `namespace` when they are not empty. Refused to all but cluster administrators.
    async fn audit_events(
        &self,
        before: Option<i64>,
        user: &str,
        namespace: &str,
    ) -> ConsoleResult<AuditEvents>;
    /// Whether the caller may read the audit log (the console links it then).
    async fn may_read_audit(&self) -> ConsoleResult<bool>;
}

#[server(prefix = "/console/api", endpoint = "audit_events", input = GetUrl)]
pub async fn list_audit_events(
    before: Option<i64>,
    user: String,
    namespace: String,
) -> ConsoleResult<AuditEvents> {
    console_data()?
        .audit_events(before, user.trim(), namespace.trim())
        .await
}

#[server(prefix = "/console/api", endpoint = "may_read_audit", input = GetUrl)]
pub async fn may_read_audit() -> ConsoleResult<bool> {
    console_data()?.may_read_audit().await
}
