//! Berth: an OCI registry with image streams and a web console, in one axum server.
//!
//! - [`registry`]: the OCI Distribution API at `/v2/`.
//! - [`imagestream`]: the registry's content as OpenShift image streams, at `/apis/...`.
//! - [`events`]: the event log as a live feed (watches, the console's event stream).
//! - [`storage`]: blob and metadata stores (filesystem and SQLite by default).
//! - [`console`]: the Leptos console's data source, answered by the same services as the APIs.
//! - [`webhooks`]: per-namespace subscriptions to the event log, delivered signed with retries.
//! - [`prune`]: pruning as `oc adm prune images` does it, the scheduled pruner, and
//!   per-namespace retention policies.
//! - [`immutability`]: per-namespace tag immutability rules (enforced by the stores).
//! - [`signatures`]: signatures, SBOMs and attestations of images, and per-namespace trusted
//!   keys.
//! - [`secrets`]: the key file and sealing of secrets at rest, and registry pull secrets.
//! - [`egress`]: where Berth's own outbound calls may go, for every client that makes them.
//! - [`ops`]: logs, metrics and health endpoints.
//! - [`web`]: the HTTP edge: how a request arrived (trusted proxies), the address clients reach
//!   Berth at, security headers and the pages' script nonce.
//! - [`config`]: settings from defaults, file, environment and flags.

// The console's pages are deeply nested view types, laid out here where they are rendered.
#![recursion_limit = "256"]

pub mod admin;
mod assets;
pub mod auth;
pub mod cli;
pub mod config;
pub mod console;
pub mod egress;
pub mod events;
pub mod gc;
pub mod imagestream;
pub mod immutability;
pub mod import;
pub mod kube;
pub mod layers;
pub mod limits;
pub mod oci;
pub mod openapi;
pub mod ops;
pub mod prune;
pub mod quota;
pub mod registry;
pub mod secrets;
pub mod signatures;
pub mod storage;
pub mod upstream;
pub mod web;
pub mod webhooks;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;

use crate::auth::credentials::RegistryTokens;
use crate::auth::{AuthContext, Authorizer};
use crate::config::Config;
use crate::registry::{Registry, RegistryLimits};
use crate::storage::auth::AuthStore;

/// Opens storage and builds the whole application: registry, image stream API, console and
/// operations endpoints. `address` is where it is served (the listen address once bound).
pub async fn build_app(config: &Config, address: std::net::SocketAddr) -> anyhow::Result<Router> {
    if let Some(upstream) = &config.upstream {
        return upstream::build_app(config, upstream, address).await;
    }
    let stores = storage::Stores::open(config)
        .await
        .context("opening storage")?;
    let coordination = stores.coordination();
    build_app_on(config, address, stores, coordination).await
}

/// Builds the application on stores already open, its work done once run under `coordination`
/// (this process's one).
async fn build_app_on(
    config: &Config,
    address: std::net::SocketAddr,
    stores: storage::Stores,
    coordination: storage::coordination::Coordination,
) -> anyhow::Result<Router> {
    let metadata = stores.metadata.clone();
    let streams = stores.streams.clone();
    let auth_store = stores.auth.clone();
    let auth = auth_context(config, &stores, &coordination).await?;
    storage::coordination::spawn_pruning(&coordination, stores.throttle.clone());
    let base_url = config.base_url(address);
    let sessions = console::router::sessions(config, stores.sessions.clone()).await?;
    let egress = egress::EgressPolicy::from_config(&config.egress)?;
    let (oauth_server, console_sign_in) =
        sign_in(config, &auth, &auth_store, &base_url, address, &egress).await?;
    let blobs = stores.blobs.clone();
    // Abandoned uploads, and what a crash left in uploads/ (and the spool) without a session.
    Arc::new(gc::uploads::UploadCollector {
        metadata: metadata.clone(),
        blobs: blobs.clone(),
        spool: stores.spool.clone(),
        ttl: Duration::from_secs(config.gc.upload_ttl_seconds),
    })
    .spawn(&coordination);
    Arc::new(gc::logs::LogCollector {
        streams: streams.clone(),
        webhooks: stores.webhooks.clone(),
        event_retention: Duration::from_secs(config.gc.event_retention_seconds),
        delivery_retention: Duration::from_secs(config.gc.webhook_delivery_retention_seconds),
    })
    .spawn(&coordination);
    // Blobs and manifests nothing references any more.
    Arc::new(gc::content::ContentCollector {
        metadata: metadata.clone(),
        blobs: blobs.clone(),
        grace: Duration::from_secs(config.gc.grace_seconds),
    })
    .spawn(&coordination);
    let mut registry = Registry::new(
        metadata.clone(),
        blobs.clone(),
        auth.clone(),
        RegistryLimits {
            max_manifest_bytes: config.registry.max_manifest_bytes,
        },
    );
    let health = ops::Health {
        parts: Arc::new(ops::StoreReadiness {
            metadata: metadata.clone(),
            blobs: blobs.clone(),
        }),
        metrics: ops::metrics_handle(),
    };
    let image_streams = Arc::new(imagestream::ImageStreamApi {
        store: streams.clone(),
        auth: auth.clone(),
        registry_host: config
            .registry
            .hostname
            .clone()
            .unwrap_or_else(|| address.to_string()),
        public_host: config.registry.public_hostname.clone(),
        continue_tokens: kube::ContinueTokens::new(
            &auth_store
                .server_secret("continue-token-key", &auth::credentials::new_key())
                .await
                .context("loading the continue token key")?,
        ),
        watches: limits::WatchLimits::new(&config.limits),
    });
    // Credentials for other registries, encrypted under a key kept apart from the database.
    let secrets_key = secrets::key::SecretsKey::load_or_create(
        &config.secrets_key_path(),
        config.secrets.key_file.is_none(),
    )?;
    let registry_secrets = Arc::new(secrets::api::RegistrySecrets::new(
        stores.secrets.clone(),
        secrets_key.clone(),
        image_streams.clone(),
    ));
    // Webhooks: the event log's entries delivered to each namespace's subscribers, signed with
    // secrets kept under the same key.
    let webhook_store = stores.webhooks.clone();
    let dispatcher = Arc::new(
        webhooks::Dispatcher::new(
            webhook_store.clone(),
            streams.clone(),
            secrets_key.clone(),
            webhooks::payload::Origin {
                registry_host: image_streams.registry_host.clone(),
                base_url: base_url.clone(),
            },
            webhooks::RetryPolicy::new(Duration::from_millis(config.webhooks.retry_base_millis)),
            &egress,
            coordination.clone(),
        )
        .context("setting up webhook deliveries")?,
    );
    dispatcher
        .clone()
        .start()
        .await
        .context("starting webhook deliveries")?;
    let webhook_api = Arc::new(webhooks::Webhooks::new(
        webhook_store,
        secrets_key,
        image_streams.clone(),
        dispatcher,
    ));
    let tag_rules = Arc::new(immutability::ImmutableTagRules::new(
        stores.immutability.clone(),
        image_streams.clone(),
    ));
    let trusted_keys = Arc::new(signatures::trusted_keys::TrustedKeys::new(
        stores.trusted_keys.clone(),
        image_streams.clone(),
    ));
    let importer = Arc::new(import::importer::Importer {
        image_streams: image_streams.clone(),
        metadata: metadata.clone(),
        blobs: blobs.clone(),
        secrets: registry_secrets.clone(),
        http: import::remote::http_client(&egress)?,
        limits: Arc::new(import::limits::NamespaceLimits::new(
            config.import.namespace_concurrency,
        )),
        tag_timeout: Duration::from_secs(config.import.tag_timeout_seconds),
    });
    import::importer::schedule(
        importer.clone(),
        Duration::from_secs(config.import.scheduled_interval_seconds),
        &coordination,
    );
    if storage::Stores::shared(config) {
        registry.upload_leases = Some(coordination.clone());
    }
    // Pull times for retention, written once a minute.
    let pulls = storage::pulls::PullRecorder::new(stores.lifecycle.clone());
    pulls.spawn(Duration::from_secs(config.prune.pull_flush_seconds.max(1)));
    registry.pulls = Some(pulls);
    // Pruning and retention: the API, and the scheduled runs on one replica.
    let pruning = Arc::new(prune::Pruning {
        store: stores.lifecycle.clone(),
        quotas: stores.quotas.clone(),
        image_streams: image_streams.clone(),
        retention_grace: i64::try_from(config.prune.retention_grace_seconds)
            .ok()
            .and_then(chrono::TimeDelta::try_seconds)
            .unwrap_or(chrono::TimeDelta::MAX),
    });
    pruning.spawn_scheduled(
        &coordination,
        Duration::from_secs(config.prune.schedule_check_seconds.max(1)),
    );
    registry.pull_through = Some(Arc::new(import::pull_through::PullThrough::new(
        importer.clone(),
        Duration::from_secs(config.import.pull_through_timeout_seconds),
        coordination,
        stores.spool.clone(),
    )));
    let registry = Arc::new(registry);
    // ResourceQuotas and LimitRanges: kept and shown here, enforced by the stores.
    let quotas = Arc::new(quota::Quotas {
        store: stores.quotas.clone(),
        auth: auth.clone(),
    });
    let access = Arc::new(auth::api::AccessApi {
        auth: auth.clone(),
        streams: streams.clone(),
    });
    let layer_files = Arc::new(layers::Layers::new(blobs.clone(), config.layers.clone()));
    let local_console = Arc::new(console::local::LocalConsoleData {
        image_streams: image_streams.clone(),
        access: access.clone(),
        metadata: metadata.clone(),
        blobs,
        auth: auth.clone(),
        importer: importer.clone(),
        webhooks: webhook_api.clone(),
        secrets: registry_secrets.clone(),
        tag_rules: tag_rules.clone(),
        trusted_keys: trusted_keys.clone(),
        quotas: quotas.clone(),
        pruning: pruning.clone(),
        layers: layer_files,
    });
    let console_data: Arc<dyn app::api::ConsoleData> = local_console.clone();

    // What people reach with a browser session; the registry, OAuth and operations endpoints
    // take no session.
    let apis = Router::new()
        .merge(registry::token::router(auth.clone(), metadata.clone()))
        .merge(auth::api::router(access))
        .merge(imagestream::router(image_streams.clone()))
        .merge(secrets::routes::router(registry_secrets.clone()))
        .merge(import::importer::router(importer.clone()))
        .merge(webhooks::router(webhook_api))
        .merge(prune::router(pruning))
        .merge(immutability::router(tag_rules))
        .merge(signatures::trusted_keys::router(trusted_keys))
        .merge(quota::router(quotas))
        .merge(kube::discovery::router())
        .merge(openapi::router())
        .merge(kube::unknown_api_paths())
        // Every API route answers a method it does not take with a `Status`, not an empty 405.
        .method_not_allowed_fallback(kube::method_not_allowed)
        // `kubectl get`'s tables, from what each API answers.
        .layer(axum::middleware::from_fn(kube::table::tables))
        // Field validation's `Warning` headers.
        .layer(axum::middleware::from_fn(kube::fields::warnings));
    let with_sessions = apis
        .route(
            "/console/api/events",
            axum::routing::get(imagestream::watch::console_feed).with_state(image_streams),
        )
        .route(
            app::api::layers::FILE_DOWNLOAD_PATH,
            axum::routing::get(console::local::layers::download).with_state(local_console),
        )
        .merge(auth::sign_in::router(console_sign_in))
        .merge(console::router::router(config, console_data))
        .layer(sessions);

    Ok(ops::served(
        Router::new()
            .merge(registry::router().with_state(registry))
            .merge(auth::oauth::router(oauth_server))
            .merge(ops::router(health))
            .merge(with_sessions)
            .layer(axum::Extension(auth)),
        config,
        address,
    ))
}

/// Sign-in: the embedded OAuth server (always there, for the console and other clients) and
/// the console's login as a client of the configured provider.
async fn sign_in(
    config: &Config,
    auth: &Arc<AuthContext>,
    store: &Arc<dyn AuthStore>,
    base_url: &str,
    address: std::net::SocketAddr,
    egress: &Arc<egress::EgressPolicy>,
) -> anyhow::Result<(
    Arc<auth::oauth::OAuthServer>,
    Arc<auth::sign_in::SignIn<auth::sign_in::oidc::Oidc>>,
)> {
    let console_secret = hex::encode(
        store
            .server_secret("console-client-secret", &auth::credentials::new_key())
            .await
            .context("loading the console's client secret")?,
    );
    let form_key = store
        .server_secret("oauth-form-key", &auth::credentials::new_key())
        .await
        .context("loading the sign-in form key")?;
    let console_client = auth::oauth::OAuthClient {
        id: auth::oauth::CONSOLE_CLIENT_ID.into(),
        secret: console_secret.clone(),
        redirect_uri: format!("{base_url}{}", auth::sign_in::CONSOLE_CALLBACK),
    };
    let mut clients = vec![console_client];
    clients.extend(
        config
            .auth
            .clients
            .iter()
            .map(|c| auth::oauth::OAuthClient {
                id: c.id.clone(),
                secret: c.secret.clone(),
                redirect_uri: c.redirect_uri.clone(),
            }),
    );
    let oauth_server = Arc::new(auth::oauth::OAuthServer::new(
        auth.clone(),
        base_url.to_owned(),
        clients,
        form_key,
        config.auth.access_token_seconds,
        config.auth.oidc.as_ref().map(|oidc| oidc.issuer.clone()),
    ));
    let (issuer, client_id, client_secret) = match &config.auth.oidc {
        Some(oidc) => (
            auth::sign_in::oidc::Issuer::External {
                issuer: oidc.issuer.clone(),
                groups_claim: oidc.groups_claim.clone(),
                username_claim: oidc.username_claim.clone(),
                scopes: oidc.scopes.clone(),
                mapping_method: oidc.mapping_method,
            },
            oidc.client_id.clone(),
            oidc.client_secret.clone(),
        ),
        None => (
            auth::sign_in::oidc::Issuer::Embedded {
                issuer: base_url.to_owned(),
                internal: format!("http://{address}"),
            },
            auth::oauth::CONSOLE_CLIENT_ID.to_owned(),
            console_secret,
        ),
    };
    let provider = auth::sign_in::oidc::Oidc::new(auth.clone(), issuer, egress)
        .context("setting up console sign-in")?;
    let console_sign_in = Arc::new(auth::sign_in::SignIn::new(
        provider,
        client_id,
        client_secret,
        base_url.to_owned(),
    ));
    Ok((oauth_server, console_sign_in))
}

/// Identity and access: the bootstrap administrator and seeded users on first start, the
/// decision function, and the keys the server signs with.
async fn auth_context(
    config: &Config,
    stores: &storage::Stores,
    coordination: &storage::coordination::Coordination,
) -> anyhow::Result<Arc<AuthContext>> {
    let store = stores.auth.clone();
    let done = auth::bootstrap::bootstrap(&store, &config.auth)
        .await
        .context("creating the bootstrap administrator and seeded users")?;
    match &done.admin {
        Some((name, Some(password))) => println!(
            "Created the administrator {name:?} with the password {password} (shown once; change it with `berth user passwd {name}`)"
        ),
        Some((name, None)) => {
            println!("Created the administrator {name:?} with the configured password")
        }
        None => {}
    }
    if !done.seeded.is_empty() {
        tracing::info!(users = ?done.seeded, "added users from the htpasswd file");
    }
    let authorizer = Authorizer::load(
        store.clone(),
        stores.notifier.clone(),
        config.auth.namespace_creation,
    )
    .await
    .context("loading role bindings")?;
    authorizer.spawn_refresh();
    let key = store
        .server_secret("registry-token-key", &auth::credentials::new_key())
        .await
        .context("loading the registry token key")?;
    let auth = Arc::new(AuthContext::new(
        store,
        authorizer,
        RegistryTokens::new(&key, "berth"),
        Duration::from_secs(config.auth.registry_token_seconds),
        stores.throttle.clone(),
        config.auth.login_attempts_per_minute,
        stores.notifier.clone(),
    ));
    auth.spawn_credential_follower();
    auth.spawn_upkeep(
        coordination,
        (config.auth.audit_retention_days > 0)
            .then(|| chrono::TimeDelta::days(i64::from(config.auth.audit_retention_days))),
    );
    Ok(auth)
}

/// Serves `config` until `shutdown` resolves, then lets requests in flight finish for up to the
/// configured timeout. `on_listening` receives the bound address (the port may have been 0).
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_listening: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let address = listener.local_addr()?;
    let listener = listener.into_std()?;
    // This process's work done once, stopped and its leases given up after the last request.
    let mut leased_work = None;
    let app = match &config.upstream {
        Some(_) => build_app(&config, address).await?,
        None => {
            let stores = open_stores_answering_readiness(&config, &listener).await?;
            let coordination = stores.coordination();
            leased_work = Some(coordination.clone());
            build_app_on(&config, address, stores, coordination).await?
        }
    };
    on_listening(address);
    let grace = Duration::from_secs(config.shutdown_timeout);
    // One server for plain HTTP and HTTPS; a shutdown signal stops accepting and lets requests
    // in flight finish for up to the grace period.
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!(
            grace_seconds = grace.as_secs(),
            "shutting down: finishing requests in flight"
        );
        stopper.graceful_shutdown(Some(grace));
    });
    let served = serve_on(listener, app, &config, handle).await;
    if let Some(coordination) = leased_work {
        coordination.stop().await;
    }
    served
}

/// Opens the stores. When a shared database or store does not answer yet (a replica started
/// before PostgreSQL or the bucket), it serves `/healthz` and a 503 `/readyz` naming what is
/// missing, and tries again every few seconds, instead of exiting: an orchestrator then sees a
/// live replica that is not ready. Embedded storage that cannot be opened, and a bucket that
/// cannot be used, stop Berth at once.
async fn open_stores_answering_readiness(
    config: &Config,
    listener: &std::net::TcpListener,
) -> anyhow::Result<storage::Stores> {
    let failure = match storage::Stores::open(config).await {
        Ok(stores) => return Ok(stores),
        // Files that cannot be opened, or a bucket that cannot be used (missing, refused, out
        // of reach), stop Berth with the reason; a database that does not answer yet is waited
        // for.
        Err(err)
            if !storage::Stores::shared(config)
                || matches!(err, storage::StorageError::Unusable(_)) =>
        {
            return Err(anyhow::Error::new(err).context("opening storage"));
        }
        Err(err) => err,
    };
    tracing::warn!(%failure, "storage does not answer yet; serving /readyz as 503 until it does");
    let waiting = Arc::new(std::sync::Mutex::new(failure.to_string()));
    let handle = axum_server::Handle::new();
    let starting = tokio::spawn({
        let (listener, config) = (listener.try_clone()?, config.clone());
        let (router, handle) = (ops::starting_router(waiting.clone()), handle.clone());
        async move { serve_on(listener, router, &config, handle).await }
    });
    let stores = loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        match storage::Stores::open(config).await {
            Ok(stores) => break stores,
            Err(err) => {
                tracing::warn!(%err, "storage does not answer yet");
                if let Ok(mut waiting) = waiting.lock() {
                    *waiting = err.to_string();
                }
            }
        }
    };
    handle.graceful_shutdown(Some(Duration::from_secs(5)));
    let _ = starting.await;
    tracing::info!("storage answers; starting");
    Ok(stores)
}

/// Serves `app` on `listener`, over TLS when configured, until `handle` shuts it down.
async fn serve_on(
    listener: std::net::TcpListener,
    app: Router,
    config: &Config,
    handle: axum_server::Handle,
) -> anyhow::Result<()> {
    let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    // Without TCP_NODELAY, a response's headers and body written apart wait for the peer's
    // delayed ACK (about 40 ms on small blobs).
    let Some(tls) = &config.tls else {
        let mut server = axum_server::from_tcp(listener)
            .acceptor(axum_server::accept::NoDelayAcceptor::new())
            .handle(handle);
        limit_header_time(server.http_builder(), &config.http);
        return server.serve(service).await.context("serving");
    };
    // HTTPS: rustls with HTTP/2 and HTTP/1.1 offered through ALPN; axum-server gives a client
    // 10 s to finish the TLS handshake.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
        .await
        .with_context(|| {
            format!(
                "reading the TLS certificate {} and key {}",
                tls.cert.display(),
                tls.key.display()
            )
        })?;
    let mut server = axum_server::from_tcp_rustls(listener, rustls)
        .map(|tls| tls.acceptor(axum_server::accept::NoDelayAcceptor::new()))
        .handle(handle);
    limit_header_time(server.http_builder(), &config.http);
    server.serve(service).await.context("serving")
}

/// A client that stops sending a request's headers (or leaves its connection idle) for the
/// configured time loses the connection, so slow or abandoned clients cannot hold connections
/// open. hyper times header reads only with a timer.
fn limit_header_time(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    http: &config::http::HttpConfig,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(http.header_read_timeout());
}
