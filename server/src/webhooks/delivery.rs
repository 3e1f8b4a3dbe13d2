//! From the event log to subscribers: the [`Dispatcher`] follows the log from a cursor it keeps
//! in the database and turns each entry into a pending delivery for every subscription of the
//! namespace that wants it (deliveries and cursor in one transaction); the sender posts each
//! subscription's oldest pending delivery, records the attempt, and schedules a retry with
//! exponential backoff until it is delivered or has failed [`RetryPolicy::max_attempts`] times.
//! A subscription's deliveries go out in order, one at a time; subscriptions do not wait for
//! each other. A delivery is claimed (its due time moved past the request's timeout) before it
//! is sent, so a crash mid-send only delays it. Both run on one replica at a time, the holder
//! of the `webhooks` lease; when it dies, a survivor takes the lease over and goes on from the
//! cursor. A redelivery made by hand on any replica wakes the holder's sender through the
//! notifier ([`Topic::Webhooks`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::StreamExt as _;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::open_secret;
use super::payload::{
    self, DELIVERY_HEADER, EVENT_HEADER, EventName, Format, Origin, PushedManifest,
    SIGNATURE_HEADER,
};
use crate::oci::Digest;
use crate::oci::RepositoryName;
use crate::secrets::key::SecretsKey;
use crate::storage::coordination::{Coordination, LeaseTiming, Topic};
use crate::storage::webhooks::{
    AttemptRecord, DeliveryRecord, DeliveryState, MAX_RESPONSE_BODY, NewDelivery, WebhookRecord,
    WebhookStore, response_excerpt,
};
use crate::storage::{
    EventFilter, EventKind, EventRecord, ImageStreamStore, StorageError, StorageResult,
};

/// How long a receiver has to answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed delivery stays with its sender before another may take it: past the
/// request's timeout, with time to record the attempt.
const CLAIM: Duration = Duration::from_secs(REQUEST_TIMEOUT.as_secs() + 5);
/// Requests in flight at once (one per subscription at most).
const MAX_IN_FLIGHT: usize = 16;
/// How often the sender looks for due deliveries without being woken (another replica's).
const IDLE_POLL: Duration = Duration::from_secs(5);
/// After a failed read of the log, how long the dispatcher waits before reading again.
const PAUSE_AFTER_ERROR: Duration = Duration::from_secs(2);
/// Log entries that make no delivery between two writes of the cursor.
const CURSOR_STRIDE: i64 = 1000;

/// When failed attempts are retried: after `base`, then twice as long each time up to `cap`,
/// until `max_attempts` attempts have been made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub cap: Duration,
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// 8 attempts, `base` then doubling up to 5 minutes.
    pub fn new(base: Duration) -> Self {
        RetryPolicy {
            base,
            cap: Duration::from_secs(300),
            max_attempts: 8,
        }
    }

    /// How long to wait after failed attempt `attempt` (from 1); `None` when it was the last.
    pub fn delay_after(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        Some(self.base.saturating_mul(factor).min(self.cap))
    }
}

/// A receiver's answer, as kept.
struct Answer {
    status: u16,
    /// The start of its body, as text.
    body: String,
    truncated: bool,
}

/// Why an attempt got no 2xx answer, or none at all.
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("the subscription's secret cannot be read: {0}")]
    Secret(#[from] crate::secrets::sealing::SealingError),
    #[error("signing failed")]
    Sign,
    #[error("no answer within {} s", REQUEST_TIMEOUT.as_secs())]
    Timeout,
    /// The egress policy refused the receiver's address (a name that resolves to one).
    #[error("{0}")]
    Refused(crate::egress::EgressError),
    #[error("{0}")]
    Transport(String),
}

/// Why an attempt got no answer: the policy's refusal, a timeout, or every cause of a transport
/// error without the URL (the subscriber knows it).
fn describe(err: crate::egress::OutboundError) -> SendError {
    use crate::egress::OutboundError;
    match err {
        OutboundError::Refused(refused) => SendError::Refused(refused),
        err if err.is_timeout() => SendError::Timeout,
        OutboundError::Http(err) => {
            SendError::Transport(crate::egress::error_chain(&err.without_url()))
        }
        other => SendError::Transport(other.to_string()),
    }
}

/// Follows the event log into deliveries, and sends them.
pub struct Dispatcher {
    store: Arc<dyn WebhookStore>,
    streams: Arc<dyn ImageStreamStore>,
    key: SecretsKey,
    origin: Origin,
    /// Under the egress policy; no redirects.
    http: crate::egress::HttpClient,
    policy: RetryPolicy,
    /// Woken when deliveries are added.
    wake: Notify,
    coordination: Coordination,
    lease_timing: LeaseTiming,
}

/// The lease whose holder follows the log and sends.
pub const LEASE: &str = "webhooks";

/// The dispatcher's background tasks on this replica, to stop them (a replica dying, in tests).
pub struct Running {
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Running {
    pub fn stop(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn WebhookStore>,
        streams: Arc<dyn ImageStreamStore>,
        key: SecretsKey,
        origin: Origin,
        policy: RetryPolicy,
        egress: &Arc<crate::egress::EgressPolicy>,
        coordination: Coordination,
    ) -> anyhow::Result<Self> {
        // No redirects: a redirect is an answer that is not a 2xx, and the subscription's URL
        // is to be fixed.
        let http = egress
            .client(concat!("berth-webhooks/", env!("CARGO_PKG_VERSION")))
            .with(|builder| builder.timeout(REQUEST_TIMEOUT))
            .build()?;
        Ok(Dispatcher {
            store,
            streams,
            key,
            origin,
            http,
            policy,
            wake: Notify::new(),
            coordination,
            lease_timing: LeaseTiming::STANDARD,
        })
    }

    /// Other lease timings than the standard (tests of a holder dying).
    pub fn with_lease_timing(mut self, timing: LeaseTiming) -> Self {
        self.lease_timing = timing;
        self
    }

    /// Places the cursor on the first start ever (at the newest entry: subscriptions are for
    /// what happens next); then, whenever this replica holds the `webhooks` lease, follows the
    /// log from the cursor and sends. Wakes the sender when another replica asks.
    pub async fn start(self: Arc<Self>) -> StorageResult<Running> {
        if self.store.webhook_cursor().await?.is_none() {
            let latest = self.streams.latest_event_id().await?;
            self.store.add_deliveries(&[], latest).await?;
        }
        let mut asked = self.coordination.notifier.subscribe(Topic::Webhooks);
        let woken = Arc::downgrade(&self);
        let listening = tokio::spawn(async move {
            while asked.next().await.is_some() {
                let Some(dispatcher) = woken.upgrade() else {
                    return;
                };
                dispatcher.wake.notify_one();
            }
        });
        let dispatcher = self.clone();
        let leased = self
            .coordination
            .spawn_leased(LEASE, self.lease_timing, move || {
                dispatcher.clone().follow_and_send()
            });
        Ok(Running {
            tasks: vec![listening.abort_handle(), leased.abort_handle()],
        })
    }

    /// The holder's work: the log followed from where the last holder left it, and the sender.
    async fn follow_and_send(self: Arc<Self>) {
        let cursor = match self.store.webhook_cursor().await {
            Ok(cursor) => cursor.unwrap_or_default(),
            Err(err) => {
                // The lease is given up, and taken again at the next try.
                tracing::error!(%err, "webhooks: reading the cursor failed");
                return;
            }
        };
        tokio::join!(self.clone().follow_log(cursor), self.send_due());
    }

    /// Whether a receiver's URL is refused by the egress policy before anything is sent (an
    /// address in it; a name is checked when a delivery resolves it).
    pub fn check_destination(&self, url: &str) -> Result<(), crate::egress::EgressError> {
        match reqwest::Url::parse(url) {
            Ok(url) => self.http.check_url(&url),
            Err(_) => Ok(()),
        }
    }

    /// Has the sender look for due deliveries now (one was just made by hand), on whichever
    /// replica sends.
    pub async fn wake(&self) {
        self.wake.notify_one();
        if let Err(err) = self
            .coordination
            .notifier
            .publish(Topic::Webhooks, "due")
            .await
        {
            // The sender finds it at its next look (within IDLE_POLL).
            tracing::warn!(%err, "webhooks: waking the sender of another replica failed");
        }
    }

    async fn follow_log(self: Arc<Self>, mut cursor: i64) {
        let filter = EventFilter {
            kind: Some(EventKind::ImageStream),
            ..EventFilter::default()
        };
        let mut written = cursor;
        loop {
            let events = crate::events::follow(self.streams.clone(), filter.clone(), cursor);
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.next().await {
                let handled = match event {
                    Ok(event) => self.fan_out(&event, &mut written).await.map(|()| event.id),
                    Err(err) => Err(err),
                };
                match handled {
                    Ok(id) => cursor = id,
                    Err(err) => {
                        tracing::error!(%err, after = cursor, "webhooks: reading the event log failed; trying again");
                        break;
                    }
                }
            }
            tokio::time::sleep(PAUSE_AFTER_ERROR).await;
        }
    }

    /// The deliveries one log entry makes, stored with the cursor moved past it. The cursor is
    /// written with every delivery, and otherwise every [`CURSOR_STRIDE`] entries: reading an
    /// entry twice (after a restart) makes no second delivery.
    async fn fan_out(&self, event: &EventRecord, written: &mut i64) -> StorageResult<()> {
        let names = payload::event_names(event);
        let subscriptions = if names.is_empty() {
            Vec::new()
        } else {
            self.store.webhooks(&event.namespace).await?
        };
        let mut deliveries = Vec::new();
        let mut bodies = HashMap::new();
        let mut pushed = None;
        // A disabled subscription gets nothing for the events while it is.
        for webhook in subscriptions
            .iter()
            .filter(|w| w.since_event < event.id && !w.disabled)
        {
            let Some(format) = Format::parse(&webhook.format) else {
                tracing::error!(namespace = %webhook.namespace, webhook = %webhook.name, format = %webhook.format, "webhooks: unknown format; skipped");
                continue;
            };
            for &name in names.iter().filter(|n| wants(webhook, **n)) {
                if name == EventName::Push && pushed.is_none() {
                    pushed = Some(self.pushed_manifest(event).await?);
                }
                let body = match bodies.entry((name, format)) {
                    std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                    std::collections::hash_map::Entry::Vacant(entry) => {
                        let made = payload::payload(
                            event,
                            name,
                            format,
                            &self.origin,
                            pushed.as_ref().and_then(Option::as_ref),
                        )
                        .map_err(|err| {
                            StorageError::Corrupt(format!("encoding an event: {err}"))
                        })?;
                        entry.insert(made)
                    }
                };
                deliveries.push(NewDelivery {
                    webhook_id: webhook.id,
                    event_id: event.id,
                    event: name.as_str().to_owned(),
                    content_type: body.content_type.to_owned(),
                    body: body.body.clone(),
                });
            }
        }
        if deliveries.is_empty() && event.id - *written < CURSOR_STRIDE {
            return Ok(());
        }
        self.store.add_deliveries(&deliveries, event.id).await?;
        *written = event.id;
        if !deliveries.is_empty() {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// The pushed manifest's media type and size, when it is still in its repository.
    async fn pushed_manifest(&self, event: &EventRecord) -> StorageResult<Option<PushedManifest>> {
        let Some(digest) = event
            .new_image
            .as_deref()
            .and_then(|d| d.parse::<Digest>().ok())
        else {
            return Ok(None);
        };
        let Ok(repository) = RepositoryName::of_stream(&event.namespace, &event.name) else {
            return Ok(None);
        };
        Ok(self
            .streams
            .image_in_repository(&repository, &digest)
            .await?
            .map(|image| PushedManifest {
                media_type: image.media_type,
                size: image.size,
            }))
    }

    /// Sends each subscription's oldest pending delivery when it is due, a few at a time.
    async fn send_due(self: Arc<Self>) {
        let mut in_flight = JoinSet::new();
        let mut tasks = HashMap::new();
        let mut busy = HashSet::new();
        loop {
            let now = Utc::now();
            if in_flight.len() < MAX_IN_FLIGHT {
                match self.store.due_deliveries(now, MAX_IN_FLIGHT as u32).await {
                    Ok(due) => {
                        for delivery in due {
                            if in_flight.len() >= MAX_IN_FLIGHT
                                || busy.contains(&delivery.webhook_id)
                            {
                                continue;
                            }
                            if !self.claim(&delivery).await {
                                continue;
                            }
                            busy.insert(delivery.webhook_id);
                            let webhook_id = delivery.webhook_id;
                            let task = in_flight.spawn(self.clone().attempt(delivery));
                            tasks.insert(task.id(), webhook_id);
                        }
                    }
                    Err(err) => tracing::error!(%err, "webhooks: reading due deliveries failed"),
                }
            }
            let wait = if in_flight.len() >= MAX_IN_FLIGHT {
                IDLE_POLL
            } else {
                match self.store.next_due().await {
                    Ok(Some(next)) => (next - Utc::now()).to_std().unwrap_or_default(),
                    Ok(None) => IDLE_POLL,
                    Err(err) => {
                        tracing::error!(%err, "webhooks: reading due deliveries failed");
                        IDLE_POLL
                    }
                }
            }
            // Never spin: a due delivery of a busy subscription waits for its turn.
            .clamp(Duration::from_millis(20), IDLE_POLL);
            tokio::select! {
                Some(done) = in_flight.join_next_with_id() => {
                    let id = match done {
                        Ok((id, ())) => id,
                        Err(err) => {
                            tracing::error!(%err, "webhooks: a delivery task failed");
                            err.id()
                        }
                    };
                    if let Some(webhook_id) = tasks.remove(&id) {
                        busy.remove(&webhook_id);
                    }
                }
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn claim(&self, delivery: &DeliveryRecord) -> bool {
        let Some(due) = delivery.next_attempt_at else {
            return false;
        };
        let until = Utc::now() + CLAIM;
        match self.store.claim_delivery(delivery.id, due, until).await {
            Ok(claimed) => claimed,
            Err(err) => {
                tracing::error!(%err, delivery = delivery.id, "webhooks: claiming a delivery failed");
                false
            }
        }
    }

    /// One attempt at a claimed delivery, recorded with what follows from it.
    async fn attempt(self: Arc<Self>, delivery: DeliveryRecord) {
        let webhook = match self.store.webhook_by_id(delivery.webhook_id).await {
            Ok(Some(webhook)) => webhook,
            // Deleted meanwhile: its deliveries went with it.
            Ok(None) => return,
            Err(err) => {
                // The claim lapses and the delivery is tried again then.
                tracing::error!(%err, delivery = delivery.id, "webhooks: reading a subscription failed");
                return;
            }
        };
        let number = delivery.attempts + 1;
        let attempted_at = Utc::now();
        let started = Instant::now();
        let answer = self.send(&webhook, &delivery).await;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let delivered = matches!(&answer, Ok(answer) if (200..300).contains(&answer.status));
        let (state, next) = if delivered {
            (DeliveryState::Delivered, None)
        } else {
            match self.policy.delay_after(number) {
                Some(delay) => (DeliveryState::Pending, Some(Utc::now() + delay)),
                None => (DeliveryState::Failed, None),
            }
        };
        let (status_code, error, response_body, response_truncated) = match answer {
            Ok(answer) => (
                Some(answer.status),
                None,
                Some(answer.body).filter(|body| !body.is_empty()),
                answer.truncated,
            ),
            Err(err) => (None, Some(err.to_string()), None, false),
        };
        if !delivered {
            tracing::warn!(
                namespace = %webhook.namespace,
                webhook = %webhook.name,
                delivery = delivery.id,
                attempt = number,
                status = ?status_code,
                error = ?error,
                state = state.as_str(),
                "webhooks: a delivery attempt failed"
            );
        }
        metrics::counter!(
            "berth_webhook_attempts_total",
            "outcome" => if delivered { "delivered" } else { "failed" }
        )
        .increment(1);
        let attempt = AttemptRecord {
            delivery_id: delivery.id,
            number,
            status_code,
            error,
            duration_ms,
            attempted_at,
            response_body,
            response_truncated,
        };
        if let Err(err) = self.store.record_attempt(&attempt, state, next).await {
            tracing::error!(%err, delivery = delivery.id, "webhooks: recording an attempt failed");
        }
    }

    /// Posts a delivery's body, signed; the status answered and the start of the answer's body.
    async fn send(
        &self,
        webhook: &WebhookRecord,
        delivery: &DeliveryRecord,
    ) -> Result<Answer, SendError> {
        let secret = open_secret(&self.key, webhook)?;
        let signature = payload::signature(&secret, &delivery.body).map_err(|_| SendError::Sign)?;
        let mut response = self
            .http
            .post(&webhook.url)
            .header(reqwest::header::CONTENT_TYPE, &delivery.content_type)
            .header(SIGNATURE_HEADER, signature)
            .header(DELIVERY_HEADER, delivery.id.to_string())
            .header(EVENT_HEADER, &delivery.event)
            .body(delivery.body.clone())
            .send()
            .await
            .map_err(describe)?;
        let status = response.status().as_u16();
        // Read no more than is kept (and one byte to tell it was cut); a body that breaks off
        // is kept as far as it came: the status is the answer.
        let mut read = Vec::new();
        while read.len() <= MAX_RESPONSE_BODY {
            match response.chunk().await {
                Ok(Some(chunk)) => read.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        let (body, truncated) = response_excerpt(&read);
        Ok(Answer {
            status,
            body,
            truncated,
        })
    }
}

fn wants(webhook: &WebhookRecord, name: EventName) -> bool {
    webhook.events.is_empty() || webhook.events.iter().any(|e| e == name.as_str())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::secrets::sealing::{Sealed, SealedFor};
    use crate::storage::coordination::{LeaseStore, Notifier};
    use crate::storage::sqlite::SqliteMetadata;
    use crate::storage::{Labels, Presence, StreamChange};

    /// What a receiver was sent: (path, event name, body).
    type Log = Arc<Mutex<Vec<(String, String, serde_json::Value)>>>;

    async fn receiver() -> (Log, String) {
        let log = Log::default();
        let kept = log.clone();
        let app = axum::Router::new().route(
            "/{path}",
            axum::routing::post(
                move |axum::extract::Path(path): axum::extract::Path<String>,
                      headers: axum::http::HeaderMap,
                      body: axum::body::Bytes| {
                    let log = kept.clone();
                    async move {
                        let event = headers[EVENT_HEADER].to_str().unwrap().to_owned();
                        let body = serde_json::from_slice(&body).unwrap();
                        log.lock().unwrap().push((path, event, body));
                        axum::http::StatusCode::NO_CONTENT
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (log, base)
    }

    fn subscription(key: &SecretsKey, name: &str, url: String) -> WebhookRecord {
        let Sealed {
            nonce: secret_nonce,
            ciphertext: secret_ciphertext,
        } = key
            .seal(
                SealedFor::Webhook {
                    namespace: "team",
                    name,
                },
                b"secret",
            )
            .unwrap();
        WebhookRecord {
            id: 0,
            namespace: "team".into(),
            name: name.into(),
            uid: name.into(),
            url,
            events: Vec::new(),
            format: "distribution".into(),
            secret_nonce,
            secret_ciphertext,
            since_event: 0,
            created_at: Utc::now(),
            disabled: false,
        }
    }

    /// A dispatcher on `sqlite` (one replica) with a 100 ms retry base.
    fn dispatcher(sqlite: &Arc<SqliteMetadata>, key: SecretsKey) -> Dispatcher {
        Dispatcher::new(
            sqlite.clone(),
            sqlite.clone(),
            key,
            Origin {
                registry_host: "127.0.0.1:5000".into(),
                base_url: "http://127.0.0.1:5000".into(),
            },
            RetryPolicy::new(Duration::from_millis(100)),
            &Arc::new(crate::egress::EgressPolicy::new(
                vec![crate::config::parse_network("127.0.0.1").unwrap()],
                Vec::new(),
            )),
            Coordination::new(sqlite.clone(), sqlite.clone()),
        )
        .unwrap()
    }

    /// The streams named by what `log` received, once it holds `count` (or after 10 s).
    async fn received_streams(log: &Log, count: usize) -> Vec<String> {
        let mut streams = Vec::new();
        for _ in 0..400 {
            streams = log
                .lock()
                .unwrap()
                .iter()
                .map(|(_, _, body)| body["stream"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>();
            if streams.len() >= count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        streams
    }

    async fn create_streams(sqlite: &SqliteMetadata, names: &[&str]) {
        for stream in names {
            let repository = RepositoryName::of_stream("team", stream).unwrap();
            sqlite
                .change_stream(&StreamChange::new(repository, Presence::Create, "create"))
                .await
                .unwrap()
                .unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_replica_sends_and_a_survivor_takes_over_when_it_dies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        let first = Arc::new(SqliteMetadata::open(&path).await.unwrap());
        let second = Arc::new(SqliteMetadata::open(&path).await.unwrap());
        first
            .create_namespace("team", &Labels::new(), &Labels::new())
            .await
            .unwrap();
        let key = SecretsKey::generate();
        let (log, base) = receiver().await;
        let webhooks: &dyn WebhookStore = first.as_ref();
        webhooks
            .put_webhook(&subscription(&key, "live", format!("{base}/live")))
            .await
            .unwrap();
        let timing = LeaseTiming {
            ttl: Duration::from_millis(600),
            renew_every: Duration::from_millis(100),
        };
        let mut running = Vec::new();
        for replica in [&first, &second] {
            let dispatcher = Arc::new(dispatcher(replica, key.clone()).with_lease_timing(timing));
            running.push(dispatcher.start().await.unwrap());
        }
        create_streams(&first, &["a", "b"]).await;
        assert_eq!(received_streams(&log, 2).await, ["a", "b"]);

        // The holder dies; the other replica takes the lease once it expired and sends what
        // came after, each once.
        let holder = first.lease_holder(LEASE).await.unwrap().unwrap();
        let (dead, survivor) = if holder == *Notifier::replica(first.as_ref()) {
            (0, &second)
        } else {
            (1, &first)
        };
        running[dead].stop();
        create_streams(survivor, &["c", "d"]).await;
        assert_eq!(received_streams(&log, 4).await, ["a", "b", "c", "d"]);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(log.lock().unwrap().len(), 4, "each event was sent once");
        assert_eq!(
            survivor.lease_holder(LEASE).await.unwrap().as_deref(),
            Some(&*Notifier::replica(survivor.as_ref()))
        );
    }

    #[tokio::test]
    async fn a_failing_subscription_holds_up_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Arc::new(
            SqliteMetadata::open(&dir.path().join("berth.db"))
                .await
                .unwrap(),
        );
        sqlite
            .create_namespace("team", &Labels::new(), &Labels::new())
            .await
            .unwrap();
        let key = SecretsKey::generate();
        let (log, base) = receiver().await;
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let store: Arc<dyn WebhookStore> = sqlite.clone();
        store
            .put_webhook(&subscription(&key, "dead", format!("http://{closed}/dead")))
            .await
            .unwrap();
        store
            .put_webhook(&subscription(&key, "live", format!("{base}/live")))
            .await
            .unwrap();
        let dispatcher = Arc::new(dispatcher(&sqlite, key));
        dispatcher.start().await.unwrap();
        create_streams(&sqlite, &["a", "b", "c"]).await;

        // The live subscription gets all three, in order, while the dead one is retried.
        assert_eq!(received_streams(&log, 3).await, ["a", "b", "c"]);
        for (path, event, _) in log.lock().unwrap().iter() {
            assert_eq!((path.as_str(), event.as_str()), ("live", "imagestream"));
        }
        let dead = store.webhook("team", "dead").await.unwrap().unwrap();
        let mut deliveries = Vec::new();
        for _ in 0..200 {
            deliveries = store.deliveries(dead.id, 10).await.unwrap();
            if deliveries.last().is_some_and(|(_, a)| a.len() >= 2) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        // Newest first: the dead subscription's later deliveries wait behind its first.
        let attempts: Vec<usize> = deliveries.iter().map(|(_, a)| a.len()).collect();
        assert_eq!(attempts.len(), 3);
        assert_eq!(attempts[..2], [0, 0]);
        assert!(attempts[2] >= 2, "{attempts:?}");
        let (first, tried) = &deliveries[2];
        assert_eq!(first.state, DeliveryState::Pending);
        assert!(
            tried
                .iter()
                .all(|a| a.status_code.is_none() && a.error.is_some())
        );
    }

    #[test]
    fn retries_back_off_exponentially_up_to_a_cap_then_give_up() {
        let policy = RetryPolicy::new(Duration::from_secs(1));
        let delays: Vec<Option<u64>> = (1..=9)
            .map(|attempt| policy.delay_after(attempt).map(|d| d.as_secs()))
            .collect();
        assert_eq!(
            delays,
            [
                Some(1),
                Some(2),
                Some(4),
                Some(8),
                Some(16),
                Some(32),
                Some(64),
                None,
                None
            ]
        );
        // A longer base reaches the 5-minute cap.
        let slow = RetryPolicy::new(Duration::from_secs(30));
        assert_eq!(
            (1..=7)
                .map(|a| slow.delay_after(a).map(|d| d.as_secs()))
                .collect::<Vec<_>>(),
            [
                Some(30),
                Some(60),
                Some(120),
                Some(240),
                Some(300),
                Some(300),
                Some(300)
            ]
        );
        // No overflow, whatever the numbers.
        let extreme = RetryPolicy {
            base: Duration::MAX,
            cap: Duration::from_secs(300),
            max_attempts: u32::MAX,
        };
        assert_eq!(extreme.delay_after(100), Some(Duration::from_secs(300)));
    }
}
