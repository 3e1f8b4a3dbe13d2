//! What replicas share besides records: a [`Notifier`] (a small message on a topic, heard by
//! every replica), [`LeaseStore`] leases (work that runs on one replica at a time, taken over
//! when its holder stops renewing) and the [`ThrottleStore`] (sign-in failures counted in the
//! database). SQLite implements them for one process (the notifier as an in-process broadcast);
//! PostgreSQL with LISTEN/NOTIFY (one listening connection per process for every topic) and the
//! same tables. [`hold_lease`] and [`Coordination::spawn_leased`] run work under a lease, on any
//! backend.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::{StorageError, StorageResult};

/// What a message is about. Each topic is one channel (PostgreSQL: `LISTEN berth_<topic>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Role bindings changed: reload the binding index.
    Bindings,
    /// A token was revoked or deleted, or a user's credentials or groups changed: forget cached
    /// credential checks.
    Credentials,
    /// Webhook deliveries were added by hand: the sender looks for due deliveries now.
    Webhooks,
    /// A pull-through fetch ended (`repository@digest outcome`).
    PullThrough,
    /// Access changed (a binding, a service account or a token made or removed): open console
    /// pages that show it read it again. The body says where (`auth::AccessChange`).
    Access,
}

impl Topic {
    pub const ALL: [Topic; 5] = [
        Topic::Bindings,
        Topic::Credentials,
        Topic::Webhooks,
        Topic::PullThrough,
        Topic::Access,
    ];

    /// The channel's name (a PostgreSQL identifier).
    pub fn channel(self) -> &'static str {
        match self {
            Topic::Bindings => "berth_bindings",
            Topic::Credentials => "berth_credentials",
            Topic::Webhooks => "berth_webhooks",
            Topic::PullThrough => "berth_pull_through",
            Topic::Access => "berth_access",
        }
    }

    pub fn of_channel(channel: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.channel() == channel)
    }
}

/// The longest message body: PostgreSQL's NOTIFY takes less than 8000 bytes with the sender's
/// replica id; messages say what changed, never carry it.
pub const MAX_BODY: usize = 1000;

/// What a subscriber hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A message; `own` when this replica published it.
    Message { own: bool, body: String },
    /// Messages may have been lost (the subscriber fell behind, or the listening connection was
    /// lost and is back): whatever the topic's messages keep fresh must be read again.
    Missed,
}

impl Notice {
    /// Whether the notice may tell this replica something it does not know: anything but its
    /// own message (what a replica publishes it has applied already).
    pub fn is_news(&self) -> bool {
        !matches!(self, Notice::Message { own: true, .. })
    }
}

/// What travels in a process: a message with its publisher, or word that some were lost.
#[derive(Debug, Clone)]
pub enum Envelope {
    Message { from: Arc<str>, body: Arc<str> },
    Missed,
}

/// A subscription to one topic.
pub struct Subscription {
    receiver: broadcast::Receiver<Envelope>,
    replica: Arc<str>,
}

impl Subscription {
    /// The next notice; `None` when the notifier is gone.
    pub async fn next(&mut self) -> Option<Notice> {
        match self.receiver.recv().await {
            Ok(Envelope::Message { from, body }) => Some(Notice::Message {
                own: from == self.replica,
                body: body.to_string(),
            }),
            Ok(Envelope::Missed) | Err(broadcast::error::RecvError::Lagged(_)) => {
                Some(Notice::Missed)
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// A notice already waiting, without waiting for one (to handle a burst at once).
    pub fn try_next(&mut self) -> Option<Notice> {
        match self.receiver.try_recv() {
            Ok(Envelope::Message { from, body }) => Some(Notice::Message {
                own: from == self.replica,
                body: body.to_string(),
            }),
            Ok(Envelope::Missed) | Err(broadcast::error::TryRecvError::Lagged(_)) => {
                Some(Notice::Missed)
            }
            Err(_) => None,
        }
    }
}

/// Publishes small messages on topics to every replica, this one included, and subscribes to
/// them. A message is heard by those subscribed when it arrives: there is no history, so what a
/// topic keeps fresh is read from the store when a subscriber starts and on [`Notice::Missed`].
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// This process's name among the replicas (unique per process; a lease's holder).
    fn replica(&self) -> Arc<str>;
    /// Sends `body` (at most [`MAX_BODY`] bytes) to every subscriber of `topic` on every
    /// replica.
    async fn publish(&self, topic: Topic, body: &str) -> StorageResult<()>;
    fn subscribe(&self, topic: Topic) -> Subscription;
}

/// What a component needs to work with the other replicas: the notifier, the leases, and the
/// work this process runs under leases ([`Coordination::spawn_leased`]), which
/// [`Coordination::stop`] ends and gives up at shutdown. One per process: its clones share the
/// work.
#[derive(Clone)]
pub struct Coordination {
    pub notifier: Arc<dyn Notifier>,
    pub leases: Arc<dyn LeaseStore>,
    work: Arc<LeasedWork>,
}

/// The leased work of a process: a flag that asks it to stop, and a channel that closes once
/// every task has stopped (each holds a sender).
struct LeasedWork {
    stopping: tokio::sync::watch::Sender<bool>,
    alive: std::sync::Mutex<Option<tokio::sync::mpsc::Sender<()>>>,
    stopped: tokio::sync::Mutex<tokio::sync::mpsc::Receiver<()>>,
}

/// How long [`Coordination::stop`] waits for leased work to give its leases up.
const STOP_WAIT: Duration = Duration::from_secs(5);

impl Coordination {
    pub fn new(notifier: Arc<dyn Notifier>, leases: Arc<dyn LeaseStore>) -> Self {
        let (alive, stopped) = tokio::sync::mpsc::channel(1);
        Coordination {
            notifier,
            leases,
            work: Arc::new(LeasedWork {
                stopping: tokio::sync::watch::Sender::new(false),
                alive: std::sync::Mutex::new(Some(alive)),
                stopped: tokio::sync::Mutex::new(stopped),
            }),
        }
    }

    /// This process's name among the replicas, as the holder of leases.
    pub fn replica(&self) -> Arc<str> {
        self.notifier.replica()
    }

    /// Runs `job` on whichever replica holds lease `name`, for as long as it holds it: every
    /// replica tries to take the lease every `renew_every`; the holder runs `job` (work meant
    /// to run until the process ends) and renews; when it loses the lease, `job` is dropped and
    /// it goes back to trying. A holder that dies stops renewing, and a survivor takes over once
    /// the lease expired; one that stops ([`Coordination::stop`]) drops `job` and gives the
    /// lease up, and a survivor takes over at its next try.
    pub fn spawn_leased<F, Fut>(
        &self,
        name: &'static str,
        timing: LeaseTiming,
        job: F,
    ) -> tokio::task::JoinHandle<()>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let (leases, holder) = (self.leases.clone(), self.replica());
        let mut stopping = self.work.stopping.subscribe();
        let alive = self
            .work
            .alive
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        tokio::spawn(async move {
            let Some(_alive) = alive else {
                // Stopping already.
                return;
            };
            let (run_leases, run_holder) = (leases.clone(), holder.clone());
            let run = async move {
                loop {
                    match hold_lease(run_leases.as_ref(), name, &run_holder, timing, job()).await {
                        Ok(()) => tracing::debug!(lease = name, "leased work ended"),
                        Err(LeaseError::Taken(_)) => {}
                        Err(err @ LeaseError::Lost(_)) => {
                            tracing::warn!(%err, "leased work stopped")
                        }
                        Err(err) => tracing::warn!(%err, lease = name, "taking a lease failed"),
                    }
                    tokio::time::sleep(timing.renew_every).await;
                }
            };
            tokio::select! {
                () = run => {}
                // Only when asked: a stop flag dropped with its `Coordination` asks nothing.
                Ok(_) = stopping.wait_for(|stop| *stop) => {}
            }
            // The work was dropped with `run`: only now may another replica take it.
            if let Err(err) = leases.release_lease(name, &holder).await {
                tracing::warn!(%err, lease = name, "giving a lease up failed; it expires instead");
            }
        })
    }

    /// Stops this process's leased work and gives its leases up (at shutdown, after the
    /// requests in flight), so that survivors take the work over at once rather than after the
    /// leases expire. Waits for it at most a few seconds.
    pub async fn stop(&self) {
        self.work.stopping.send_replace(true);
        drop(
            self.work
                .alive
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        let mut stopped = self.work.stopped.lock().await;
        if tokio::time::timeout(STOP_WAIT, stopped.recv())
            .await
            .is_err()
        {
            tracing::warn!("leased work did not stop in time; its leases expire instead");
        }
    }
}

/// How many messages a slow subscriber may fall behind before it hears [`Notice::Missed`].
const TOPIC_BACKLOG: usize = 256;

/// The subscribers of one process, a broadcast channel per topic: the whole notifier of a
/// one-process backend, and where a listening connection delivers what it hears.
pub struct LocalHub {
    topics: HashMap<Topic, broadcast::Sender<Envelope>>,
}

impl Default for LocalHub {
    fn default() -> Self {
        LocalHub {
            topics: Topic::ALL
                .into_iter()
                .map(|topic| (topic, broadcast::Sender::new(TOPIC_BACKLOG)))
                .collect(),
        }
    }
}

impl LocalHub {
    fn sender(&self, topic: Topic) -> &broadcast::Sender<Envelope> {
        // Every topic has its channel from the start.
        &self.topics[&topic]
    }

    /// Delivers a message to this process's subscribers of `topic`.
    pub fn deliver(&self, topic: Topic, from: Arc<str>, body: Arc<str>) {
        // No subscriber is no error.
        let _ = self.sender(topic).send(Envelope::Message { from, body });
    }

    /// Tells every subscriber of every topic that messages may have been lost.
    pub fn missed_all(&self) {
        for sender in self.topics.values() {
            let _ = sender.send(Envelope::Missed);
        }
    }

    pub fn subscribe(&self, topic: Topic, replica: Arc<str>) -> Subscription {
        Subscription {
            receiver: self.sender(topic).subscribe(),
            replica,
        }
    }
}

/// A new replica name: the host (a pod's name in Kubernetes), the process and a random part,
/// so that two processes never share one, also on one host.
pub fn new_replica_name() -> Arc<str> {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "berth".into());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}/{}/{}", std::process::id(), &random[..8]).into()
}

/// Checks a message body's size.
pub fn check_body(body: &str) -> StorageResult<()> {
    if body.len() > MAX_BODY {
        return Err(StorageError::Corrupt(format!(
            "a notification of {} bytes is over the {MAX_BODY} allowed",
            body.len()
        )));
    }
    Ok(())
}

/// Leases: a name held by one holder until it expires. Each operation is one atomic statement,
/// timed by the database's clock (PostgreSQL) or the one machine's (SQLite).
#[async_trait]
pub trait LeaseStore: Send + Sync + 'static {
    /// Takes lease `name` for `holder` until `ttl` from now when it is free, expired, or
    /// `holder`'s already (then it is renewed): true when `holder` holds it now.
    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> StorageResult<bool>;
    /// Moves the expiry of `holder`'s lease to `ttl` from now; false when it is not `holder`'s
    /// (released, or expired and taken by another).
    async fn renew_lease(&self, name: &str, holder: &str, ttl: Duration) -> StorageResult<bool>;
    /// Gives the lease up; false when it was not `holder`'s.
    async fn release_lease(&self, name: &str, holder: &str) -> StorageResult<bool>;
    /// Who holds the lease now (unexpired), for tests and diagnostics.
    async fn lease_holder(&self, name: &str) -> StorageResult<Option<String>>;
    /// Deletes leases expired more than `grace` ago (left by holders that died); how many.
    async fn prune_leases(&self, grace: Duration) -> StorageResult<u64>;
}

/// One row of the throttle table: an instant (milliseconds since the epoch) and when the row
/// stops mattering (it is pruned then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRow {
    pub at: i64,
    pub expires: i64,
}

/// The rows an update sees and changes: present keys are written back, removed keys deleted.
pub type ThrottleRows = BTreeMap<String, ThrottleRow>;

/// What an update does to the rows it read.
pub type ThrottleUpdate<'a> = Box<dyn FnOnce(&mut ThrottleRows) + Send + 'a>;

/// Sign-in throttling's state, counted in the database so that every replica sees every
/// failure: keyed instants, read and written as one atomic step (the rules are the caller's).
#[async_trait]
pub trait ThrottleStore: Send + Sync + 'static {
    /// Reads the rows of `keys` (absent ones are not in the map), lets `update` change them,
    /// and writes back every key of `keys` as the map then has it (removed: deleted; keys not
    /// in `keys` are ignored), atomically with respect to every other update on any replica.
    async fn update_throttle<'a>(
        &'a self,
        keys: &'a [String],
        update: ThrottleUpdate<'a>,
    ) -> StorageResult<()>;
    /// Deletes rows that expired by `now` (milliseconds since the epoch); how many.
    async fn prune_throttle(&self, now: i64) -> StorageResult<u64>;
    /// How many rows are kept, for tests of the bounds.
    async fn count_throttle(&self) -> StorageResult<u64>;
}

/// How long a lease lasts and how often its holder renews it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long after its holder stops (a crash, a lost database) work moves to a survivor.
    pub ttl: Duration,
    /// How often the holder renews (and a replica without it tries to take it).
    pub renew_every: Duration,
}

impl LeaseTiming {
    /// 10 s leases renewed every 2 s: a dead holder's work moves within 12 s, and a holder
    /// whose database answers slowly has four more chances before it gives the work up.
    pub const STANDARD: LeaseTiming = LeaseTiming {
        ttl: Duration::from_secs(10),
        renew_every: Duration::from_secs(2),
    };
}

/// Why work under a lease did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("the lease {0:?} is held by another replica")]
    Taken(String),
    /// Renewal failed (taken after an expiry, or the store did not answer in time): the work
    /// was stopped before the lease could have expired, so it never ran twice at once.
    #[error("the lease {0:?} was lost; its work was stopped")]
    Lost(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Runs `work` under lease `name` when `holder` can take it now (else [`LeaseError::Taken`]),
/// renewing it while `work` runs and giving it up after. When the lease cannot be kept, `work`
/// is dropped before the lease could expire at the store.
pub async fn hold_lease<T>(
    leases: &dyn LeaseStore,
    name: &str,
    holder: &str,
    timing: LeaseTiming,
    work: impl Future<Output = T>,
) -> Result<T, LeaseError> {
    hold_lease_waiting(leases, name, holder, timing, Duration::ZERO, work).await
}

/// How often a caller waiting for a lease asks for it again.
const LEASE_RETRY: Duration = Duration::from_millis(100);

/// As [`hold_lease`], asking again while another holds the lease, for up to `patience`, before
/// [`LeaseError::Taken`].
pub async fn hold_lease_waiting<T>(
    leases: &dyn LeaseStore,
    name: &str,
    holder: &str,
    timing: LeaseTiming,
    patience: Duration,
    work: impl Future<Output = T>,
) -> Result<T, LeaseError> {
    let give_up = Instant::now() + patience;
    let asked = loop {
        let asked = Instant::now();
        if leases.acquire_lease(name, holder, timing.ttl).await? {
            break asked;
        }
        if asked >= give_up {
            return Err(LeaseError::Taken(name.to_owned()));
        }
        tokio::time::sleep(LEASE_RETRY).await;
    };
    let outcome = keep_while(leases, name, holder, timing, asked, work).await;
    if outcome.is_ok()
        && let Err(err) = leases.release_lease(name, holder).await
    {
        tracing::warn!(%err, lease = name, "giving a lease up failed; it expires instead");
    }
    outcome
}

/// Runs `work` while renewing a lease taken at `asked`: the local deadline is counted from
/// when each renewal was asked, which is before the store counted its expiry.
async fn keep_while<T>(
    leases: &dyn LeaseStore,
    name: &str,
    holder: &str,
    timing: LeaseTiming,
    asked: Instant,
    work: impl Future<Output = T>,
) -> Result<T, LeaseError> {
    let mut valid_until = asked + timing.ttl;
    let mut work = std::pin::pin!(work);
    loop {
        let next = (Instant::now() + timing.renew_every).min(valid_until);
        tokio::select! {
            done = &mut work => return Ok(done),
            () = tokio::time::sleep_until(next) => {}
        }
        let asked = Instant::now();
        if asked >= valid_until {
            return Err(LeaseError::Lost(name.to_owned()));
        }
        // The work goes on while the renewal waits: on SQLite the renewal waits for the write
        // lock, and the work may hold it in a transaction that ends only when it is polled.
        let renewal = tokio::time::timeout(
            valid_until - asked,
            leases.renew_lease(name, holder, timing.ttl),
        );
        let renewed = tokio::select! {
            done = &mut work => return Ok(done),
            renewed = renewal => renewed,
        };
        match renewed {
            Ok(Ok(true)) => valid_until = asked + timing.ttl,
            Ok(Ok(false)) => return Err(LeaseError::Lost(name.to_owned())),
            // Tried again at the next tick, while the lease lasts.
            Ok(Err(err)) => tracing::warn!(%err, lease = name, "renewing a lease failed"),
            Err(_) => return Err(LeaseError::Lost(name.to_owned())),
        }
    }
}

/// How often [`spawn_pruning`] deletes what no longer matters.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Deletes throttle rows that stopped mattering and leases their holders left to expire (a
/// minute ago), every minute, on the replica that holds the `pruning` lease: the tables stay
/// as small as the last minute's sign-in failures and the leases in use.
pub fn spawn_pruning(coordination: &Coordination, throttle: Arc<dyn ThrottleStore>) {
    let leases = coordination.leases.clone();
    coordination.spawn_leased("pruning", LeaseTiming::STANDARD, move || {
        let (leases, throttle) = (leases.clone(), throttle.clone());
        async move {
            loop {
                let now = chrono::Utc::now().timestamp_millis();
                if let Err(err) = throttle.prune_throttle(now).await {
                    tracing::warn!(%err, "pruning sign-in throttle rows failed");
                }
                if let Err(err) = leases.prune_leases(PRUNE_EVERY).await {
                    tracing::warn!(%err, "pruning expired leases failed");
                }
                tokio::time::sleep(PRUNE_EVERY).await;
            }
        }
    });
}
