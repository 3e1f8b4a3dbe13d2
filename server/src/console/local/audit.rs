//! The audit log inside Berth, through the access API's service (cluster administrators only).

use app::api::ConsoleResult;
use app::api::audit::{AUDIT_PAGE, AuditData, AuditEventRow, AuditEvents};
use async_trait::async_trait;

use super::LocalConsoleData;
use crate::auth::api::{AUDIT_SCAN, AuditSearch, namespace_of};
use crate::console::session::caller;
use crate::console::views::time;
use crate::storage::auth::AuditRecord;

fn audit_row(entry: AuditRecord) -> AuditEventRow {
    AuditEventRow {
        namespace: namespace_of(&entry.action, &entry.target).map(str::to_owned),
        id: entry.id,
        time: time(entry.time),
        success: entry.outcome == "success",
        actor: entry.actor,
        action: entry.action,
        target: entry.target,
        address: entry.address,
        detail: entry.detail,
    }
}

/// A filter as the form gives it: empty is none.
fn given(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

#[async_trait]
impl AuditData for LocalConsoleData {
    async fn audit_events(
        &self,
        before: Option<i64>,
        user: &str,
        namespace: &str,
    ) -> ConsoleResult<AuditEvents> {
        let who = caller().await?;
        let search = AuditSearch {
            before,
            actor: given(user),
            namespace: given(namespace),
            page: AUDIT_PAGE,
        };
        let page = self.access.audit_page(&who, &search).await?;
        Ok(AuditEvents {
            events: page.entries.into_iter().map(audit_row).collect(),
            older: page.older,
            filtered_among: if search.filtered() { AUDIT_SCAN } else { 0 },
        })
    }

    async fn may_read_audit(&self) -> ConsoleResult<bool> {
        Ok(self.access.is_cluster_admin(&caller().await?))
    }
}
