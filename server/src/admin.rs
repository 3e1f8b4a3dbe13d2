//! Commands for operators on the data folder: add users, reset passwords, make tokens. They work
//! on the metadata store directly, so they need no running server (SQLite lets them run beside
//! one).

use std::io::Read;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::Utc;

use crate::auth::credentials::{hash_password, new_password, new_token_secret, secret_hash};
use crate::auth::names::{managed_group_name_error, token_name_error, user_name_error};
use crate::auth::tokens::{MAX_TOKEN_DAYS, token_expiry};
use crate::cli::{TokenCommand, UserCommand};
use crate::config::Config;
use crate::storage::Stores;
use crate::storage::auth::{AuthStore, BindingRecord, NewAudit, TokenKind, TokenOwner};
use crate::storage::coordination::Topic;

async fn open_stores(config: &Config) -> anyhow::Result<Stores> {
    Stores::open(config).await.context("opening storage")
}

async fn open(config: &Config) -> anyhow::Result<Arc<dyn AuthStore>> {
    Ok(open_stores(config).await?.auth)
}

/// `berth migrate`: applies the database's migrations (serialised with any replica starting at
/// the same time) and exits.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    Stores::migrate(config)
        .await
        .context("migrating the metadata database")?;
    println!("berth: the metadata database is up to date");
    Ok(())
}

fn password(given: Option<String>, from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if from_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the password")?;
        let text = text.trim_end_matches(['\r', '\n']).to_owned();
        if text.is_empty() {
            bail!("the password read from standard input is empty");
        }
        return Ok((text, false));
    }
    Ok(match given {
        Some(password) if !password.is_empty() => (password, false),
        Some(_) => bail!("the password must not be empty"),
        None => (new_password(), true),
    })
}

async fn audit(store: &Arc<dyn AuthStore>, action: &'static str, target: String) {
    let entry = NewAudit {
        actor: "berth (command line)".into(),
        action,
        target,
        success: true,
        address: None,
        detail: None,
    };
    if let Err(err) = store.append_audit(&entry).await {
        eprintln!("berth: writing the audit log failed: {err}");
    }
}

pub async fn user(command: UserCommand, config: &Config) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            name,
            password: given,
            password_stdin,
            groups,
            cluster_admin,
            ..
        } => {
            if let Some(message) = user_name_error(&name) {
                bail!("{name:?}: {message}");
            }
            for group in &groups {
                if let Some(message) = managed_group_name_error(group) {
                    bail!("group {group:?}: {message}");
                }
            }
            let stores = open_stores(config).await?;
            let store = stores.auth.clone();
            let (password, generated) = password(given, password_stdin)?;
            let hash = hash_password(&password)?;
            if store
                .create_user(&name, Some(&hash), "local", None)
                .await?
                .is_none()
            {
                bail!("user {name:?} exists already (reset the password with `berth user passwd`)");
            }
            for group in &groups {
                store.add_group_member(group, &name).await?;
            }
            if cluster_admin {
                store
                    .create_binding(&BindingRecord {
                        name: format!("cluster-admin-{name}"),
                        namespace: None,
                        stream: None,
                        role: "cluster-admin".into(),
                        subject_kind: "User".into(),
                        subject_name: name.clone(),
                        subject_namespace: None,
                        created_at: Utc::now(),
                    })
                    .await?;
                // Running replicas that share a notifier with this process (PostgreSQL) decide
                // with the binding at once; on SQLite a server sees it at its safety refresh.
                if let Err(err) = stores.notifier.publish(Topic::Bindings, "changed").await {
                    eprintln!("berth: telling running servers of the new binding failed: {err}");
                }
            }
            audit(&store, "user-create", name.clone()).await;
            if generated {
                println!("Added user {name:?} with the password {password} (shown once)");
            } else {
                println!("Added user {name:?}");
            }
        }
        UserCommand::Passwd {
            name,
            password: given,
            password_stdin,
            ..
        } => {
            let store = open(config).await?;
            let (password, generated) = password(given, password_stdin)?;
            if !store
                .set_password(&name, &hash_password(&password)?)
                .await?
            {
                bail!("no user {name:?}");
            }
            audit(&store, "password-reset", name.clone()).await;
            if generated {
                println!("The password of {name:?} is now {password} (shown once)");
            } else {
                println!("Changed the password of {name:?}");
            }
        }
        UserCommand::List { .. } => {
            let store = open(config).await?;
            for user in store.list_users().await? {
                println!(
                    "{}\t{}\t{}",
                    user.name,
                    user.identity_provider,
                    user.groups.join(",")
                );
            }
        }
    }
    Ok(())
}

pub async fn token(command: TokenCommand, config: &Config) -> anyhow::Result<()> {
    let TokenCommand::Create {
        user,
        name,
        expires_in_days,
        ..
    } = command;
    if let Some(message) = token_name_error(&name) {
        bail!("{name:?}: {message}");
    }
    // Zero days is allowed here (a token that is expired at once, for tests of expiry).
    let lifetime = match expires_in_days {
        Some(days) if u64::from(days) > MAX_TOKEN_DAYS => {
            bail!("--expires-in-days is at most {MAX_TOKEN_DAYS}")
        }
        Some(days) => Some(chrono::TimeDelta::days(i64::from(days))),
        None => None,
    };
    let store = open(config).await?;
    let record = store
        .user(&user)
        .await?
        .with_context(|| format!("no user {user:?}"))?;
    let secret = new_token_secret();
    let expires_at = token_expiry(Utc::now(), lifetime, None);
    let token = store
        .create_token(
            TokenKind::Personal,
            &TokenOwner::User(record.id),
            &name,
            &secret_hash(&secret),
            expires_at,
        )
        .await?;
    audit(
        &store,
        "token-create",
        format!("personal token {} of {user}", token.uid),
    )
    .await;
    println!("{secret}");
    Ok(())
}
