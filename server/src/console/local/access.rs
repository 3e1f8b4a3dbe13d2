//! Access inside Berth: bindings, who can pull and push, and service accounts with their tokens,
//! through the access API.

use app::api::ConsoleResult;
use app::api::access::{AccessData, AccessView, ServiceAccountRow, WhoCanRow};
use app::api::tokens::NewToken;
use async_trait::async_trait;

use super::LocalConsoleData;
use crate::auth::api::access_api_version;
use crate::auth::api::bindings::{BindingSubject, RoleBinding, RoleRef};
use crate::auth::{Action, Target};
use crate::console::session::{authenticated, caller};
use crate::console::views::{binding_row, token_row};
use crate::kube::ObjectMeta;

#[async_trait]
impl AccessData for LocalConsoleData {
    async fn access(&self, namespace: &str, stream: Option<&str>) -> ConsoleResult<AccessView> {
        let who = caller().await?;
        let bindings = self
            .access
            .list_bindings(&who, Some(namespace), stream)
            .await?
            .into_iter()
            .map(|b| binding_row(b, namespace))
            .collect();
        let target = Target {
            namespace: Some(namespace),
            stream,
        };
        let who_can = |subjects: Vec<(String, String, crate::auth::Role)>| {
            subjects
                .into_iter()
                .map(|(kind, name, role)| WhoCanRow {
                    // As the bindings name subjects: `User:alice`, `ServiceAccount:ci:robot`.
                    subject: format!("{kind}:{name}"),
                    role: role.as_str().to_owned(),
                })
                .collect::<Vec<_>>()
        };
        let who_can_pull = who_can(self.access.who_can(&who, Action::Pull, target).await?);
        let who_can_push = who_can(self.access.who_can(&who, Action::Push, target).await?);
        // Service accounts belong to the namespace: its page shows them, a stream's does not.
        let mut service_accounts = Vec::new();
        if stream.is_none() {
            for account in self.access.service_accounts(&who, namespace).await? {
                let tokens = self
                    .access
                    .service_account_tokens(&who, namespace, &account.name)
                    .await?;
                service_accounts.push(ServiceAccountRow {
                    name: account.name,
                    tokens: tokens.iter().map(token_row).collect(),
                });
            }
        }
        Ok(AccessView {
            namespace: namespace.to_owned(),
            stream: stream.map(str::to_owned),
            bindings,
            who_can_pull,
            who_can_push,
            service_accounts,
        })
    }

    async fn add_binding(
        &self,
        namespace: &str,
        stream: Option<&str>,
        role: &str,
        subject_kind: &str,
        subject_name: &str,
    ) -> ConsoleResult<Vec<String>> {
        let who = caller().await?;
        let subject_kind = subject_kind.trim();
        let subject_name = subject_name.trim();
        // A service account is of this namespace unless named `namespace:name` (or
        // `system:serviceaccount:namespace:name`).
        let subject = if subject_kind == "ServiceAccount" {
            let name = subject_name
                .strip_prefix("system:serviceaccount:")
                .unwrap_or(subject_name);
            let (account_namespace, name) = name.split_once(':').unwrap_or((namespace, name));
            BindingSubject {
                kind: subject_kind.to_owned(),
                name: name.to_owned(),
                namespace: Some(account_namespace.to_owned()),
            }
        } else {
            BindingSubject {
                kind: subject_kind.to_owned(),
                name: subject_name.to_owned(),
                namespace: None,
            }
        };
        let body = RoleBinding {
            kind: "RoleBinding".into(),
            api_version: access_api_version(),
            // No name: the API names it after its role and subject.
            metadata: ObjectMeta::default(),
            role_ref: RoleRef {
                name: role.trim().to_owned(),
            },
            subject,
            image_stream: stream
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        };
        let subject = body.subject.clone();
        self.access
            .create_binding(&who, Some(namespace), body)
            .await?;
        Ok(self.access.binding_warnings(&subject).await?)
    }

    async fn remove_binding(&self, namespace: &str, name: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.access
            .delete_binding(&who, Some(namespace), name)
            .await?;
        Ok(())
    }

    async fn create_service_account(&self, namespace: &str, name: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.access
            .create_service_account(&who, namespace, name.trim())
            .await?;
        Ok(())
    }

    async fn delete_service_account(&self, namespace: &str, name: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.access
            .delete_service_account(&who, namespace, name)
            .await?;
        Ok(())
    }

    async fn create_service_account_token(
        &self,
        namespace: &str,
        account: &str,
    ) -> ConsoleResult<NewToken> {
        let who = authenticated().await?;
        let (record, secret) = self
            .access
            .create_service_account_token(&who, namespace, account, "", None)
            .await?;
        Ok(NewToken {
            token: token_row(&record),
            secret,
        })
    }

    async fn revoke_service_account_token(
        &self,
        namespace: &str,
        account: &str,
        uid: &str,
    ) -> ConsoleResult<()> {
        let who = caller().await?;
        self.access
            .revoke_service_account_token(&who, namespace, account, uid)
            .await?;
        Ok(())
    }
}
