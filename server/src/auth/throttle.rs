//! Login throttling, against guessing without letting anyone lock anyone out.
//!
//! Failures are counted, successes never. An address is checked first (many users behind one
//! NAT share its larger budget), then the pair of user and address: either over its budget is
//! refused with 429 before the password is even hashed. Across addresses a user's failures only
//! slow further attempts (one a second, in turn, refused when the queue is more than a few
//! seconds long), and not at all from an address where that user signed in lately: someone
//! guessing from elsewhere cannot keep the right password out. Attempts are charged when let in
//! and refunded when they succeed, so that concurrent guesses cannot overrun a budget.
//!
//! Every map is bounded (keys paid up are forgotten by [`LoginThrottle::prune`], run on a
//! timer, and a full map forgets the smallest debts first), and user names are keys only once
//! they are no longer than [`MAX_USER_NAME`](super::names::MAX_USER_NAME).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::model::AddressKey;

/// How many keys each map holds at most.
const CAPACITY: usize = 50_000;
/// How long a successful sign-in makes its address known for that user.
const KNOWN_ADDRESS: Duration = Duration::from_secs(30 * 86_400);
/// Attempts for a user over its budget go one at a time, this far apart.
const SLOW_SPACING: Duration = Duration::from_secs(1);
/// The longest an attempt waits in a user's queue before it is refused instead.
const MAX_SLOW_WAIT: Duration = Duration::from_secs(5);
/// A refusal is written to the audit log once per key in this long.
const NOTE_EVERY: Duration = Duration::from_secs(60);

/// Failures per key as a debt in time (the generic cell rate algorithm): each failure adds
/// `interval`; a key is held back while its debt runs more than `burst - 1` intervals ahead.
struct Debts<K> {
    interval: Duration,
    burst: u32,
    paid_at: HashMap<K, Instant>,
}

impl<K: Eq + Hash + Clone> Debts<K> {
    fn new(per_minute: u32) -> Self {
        let per_minute = per_minute.max(1);
        Debts {
            interval: Duration::from_secs(60) / per_minute,
            burst: per_minute,
            paid_at: HashMap::new(),
        }
    }

    /// How much longer `key` is held back, if it is.
    fn held_back(&self, key: &K, now: Instant) -> Option<Duration> {
        let ahead = self.paid_at.get(key)?.saturating_duration_since(now);
        let allowed = self.interval.saturating_mul(self.burst.saturating_sub(1));
        (ahead > allowed).then(|| ahead - allowed)
    }

    fn charge(&mut self, key: K, now: Instant) {
        if self.paid_at.len() >= CAPACITY && !self.paid_at.contains_key(&key) {
            self.prune(now);
        }
        let paid = self.paid_at.entry(key).or_insert(now);
        *paid = (*paid).max(now) + self.interval;
    }

    fn refund(&mut self, key: &K, now: Instant) {
        let Some(paid) = self.paid_at.get_mut(key) else {
            return;
        };
        match paid.checked_sub(self.interval) {
            Some(earlier) if earlier > now => *paid = earlier,
            _ => {
                self.paid_at.remove(key);
            }
        }
    }

    /// Forgets keys that owe nothing; when still full, the smallest debts.
    fn prune(&mut self, now: Instant) {
        self.paid_at.retain(|_, paid| *paid > now);
        forget_oldest(&mut self.paid_at);
    }
}

/// Keeps three quarters of a full map: the entries of the latest instants.
fn forget_oldest<K: Eq + Hash>(map: &mut HashMap<K, Instant>) {
    if map.len() < CAPACITY {
        return;
    }
    let mut instants: Vec<Instant> = map.values().copied().collect();
    let drop = instants.len() - CAPACITY * 3 / 4;
    let (_, threshold, _) = instants.select_nth_unstable(drop);
    let threshold = *threshold;
    map.retain(|_, at| *at > threshold);
}

/// Why an attempt is refused before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub retry_after: Duration,
    /// `address`, `user-and-address` or `user`.
    pub scope: &'static str,
    /// The first refusal of this key in a while: the one to write to the audit log.
    pub note: bool,
}

struct State {
    by_address: Debts<AddressKey>,
    by_pair: Debts<(String, AddressKey)>,
    by_user: Debts<String>,
    /// When the next slowed attempt of a user may go.
    next_slot: HashMap<String, Instant>,
    /// The last successful sign-in of a user from an address.
    known: HashMap<(String, AddressKey), Instant>,
    /// The last refusal written to the audit log, per key.
    noted: HashMap<String, Instant>,
}

pub struct LoginThrottle {
    state: Mutex<State>,
}

impl LoginThrottle {
    /// `per_minute` failures allowed per user and address; five times that per address and,
    /// before it is slowed, per user.
    pub fn new(per_minute: u32) -> Self {
        let wide = per_minute.saturating_mul(5);
        LoginThrottle {
            state: Mutex::new(State {
                by_address: Debts::new(wide),
                by_pair: Debts::new(per_minute),
                by_user: Debts::new(wide),
                next_slot: HashMap::new(),
                known: HashMap::new(),
                noted: HashMap::new(),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Lets an attempt in (with how long it must wait first) or refuses it. `user` is `None`
    /// for a name that cannot be a user's (too long): only its address is charged.
    pub fn admit(&self, user: Option<&str>, address: Option<IpAddr>) -> Result<Duration, Refusal> {
        let now = Instant::now();
        let address = AddressKey::of(address);
        let mut state = self.state();
        let refuse = |state: &mut State, key: String, retry_after: Duration, scope| {
            let note = state
                .noted
                .get(&key)
                .is_none_or(|at| now.duration_since(*at) >= NOTE_EVERY);
            if note {
                if state.noted.len() >= CAPACITY {
                    state
                        .noted
                        .retain(|_, at| now.duration_since(*at) < NOTE_EVERY);
                    forget_oldest(&mut state.noted);
                }
                state.noted.insert(key, now);
            }
            Refusal {
                retry_after,
                scope,
                note,
            }
        };
        if let Some(wait) = state.by_address.held_back(&address, now) {
            return Err(refuse(&mut state, format!("{address:?}"), wait, "address"));
        }
        let mut wait = Duration::ZERO;
        if let Some(user) = user {
            let pair = (user.to_owned(), address);
            if let Some(retry) = state.by_pair.held_back(&pair, now) {
                return Err(refuse(
                    &mut state,
                    format!("{user}@{address:?}"),
                    retry,
                    "user-and-address",
                ));
            }
            let known = state
                .known
                .get(&pair)
                .is_some_and(|at| now.duration_since(*at) < KNOWN_ADDRESS);
            if !known && state.by_user.held_back(&pair.0, now).is_some() {
                let slot = state.next_slot.get(user).copied().unwrap_or(now).max(now);
                wait = slot - now;
                if wait > MAX_SLOW_WAIT {
                    return Err(refuse(&mut state, format!("user {user}"), wait, "user"));
                }
                if state.next_slot.len() >= CAPACITY {
                    state.next_slot.retain(|_, at| *at > now);
                    forget_oldest(&mut state.next_slot);
                }
                state.next_slot.insert(user.to_owned(), slot + SLOW_SPACING);
            }
            state.by_pair.charge(pair, now);
        }
        state.by_address.charge(address, now);
        Ok(wait)
    }

    /// The password was right: the attempt is not counted, and the address is known for the
    /// user from now on.
    pub fn succeeded(&self, user: &str, address: Option<IpAddr>) {
        let now = Instant::now();
        let address = AddressKey::of(address);
        let mut state = self.state();
        state.by_address.refund(&address, now);
        let pair = (user.to_owned(), address);
        state.by_pair.refund(&pair, now);
        if state.known.len() >= CAPACITY && !state.known.contains_key(&pair) {
            state
                .known
                .retain(|_, at| now.duration_since(*at) < KNOWN_ADDRESS);
            forget_oldest(&mut state.known);
        }
        state.known.insert(pair, now);
    }

    /// The password was wrong (the address and the pair were charged when it was let in).
    pub fn failed(&self, user: &str) {
        let now = Instant::now();
        self.state().by_user.charge(user.to_owned(), now);
    }

    /// Forgets what no longer matters; run on a timer so that memory returns after a burst.
    pub fn prune(&self) {
        let now = Instant::now();
        let mut state = self.state();
        state.by_address.prune(now);
        state.by_pair.prune(now);
        state.by_user.prune(now);
        state.next_slot.retain(|_, at| *at > now);
        state
            .known
            .retain(|_, at| now.duration_since(*at) < KNOWN_ADDRESS);
        state
            .noted
            .retain(|_, at| now.duration_since(*at) < NOTE_EVERY);
    }

    /// How many keys are held, for tests of the bounds.
    pub fn keys(&self) -> usize {
        let state = self.state();
        state.by_address.paid_at.len()
            + state.by_pair.paid_at.len()
            + state.by_user.paid_at.len()
            + state.next_slot.len()
            + state.known.len()
            + state.noted.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn failures_per_user_and_address_are_refused_and_successes_never_counted() {
        let throttle = LoginThrottle::new(10);
        for _ in 0..10 {
            assert_eq!(throttle.admit(Some("admin"), at(1)), Ok(Duration::ZERO));
            throttle.failed("admin");
        }
        let refused = throttle.admit(Some("admin"), at(1)).unwrap_err();
        assert_eq!(refused.scope, "user-and-address");
        assert!(refused.note);
        assert!(!throttle.admit(Some("admin"), at(1)).unwrap_err().note);
        // From another address the right password goes through, as often as it is sent.
        for _ in 0..100 {
            assert_eq!(throttle.admit(Some("admin"), at(2)), Ok(Duration::ZERO));
            throttle.succeeded("admin", at(2));
        }
    }

    #[test]
    fn an_address_is_limited_over_all_names() {
        let throttle = LoginThrottle::new(10);
        for i in 0..50 {
            assert!(throttle.admit(Some(&format!("user{i}")), at(1)).is_ok());
        }
        assert_eq!(
            throttle.admit(Some("someone"), at(1)).unwrap_err().scope,
            "address"
        );
        assert_eq!(throttle.admit(None, at(1)).unwrap_err().scope, "address");
        // An IPv6 host is one key for its /64.
        let v6 = |last: u16| Some(IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, last]));
        for i in 0..50 {
            assert!(throttle.admit(None, v6(i)).is_ok());
        }
        assert!(throttle.admit(None, v6(999)).is_err());
    }

    #[test]
    fn a_user_guessed_from_everywhere_is_slowed_but_not_from_a_known_address() {
        let throttle = LoginThrottle::new(10);
        throttle.succeeded("admin", at(200));
        for i in 0..50 {
            assert!(throttle.admit(Some("admin"), at(i)).is_ok());
            throttle.failed("admin");
        }
        // Now attempts from new addresses wait their turn, a second apart, and are refused
        // when the queue is long.
        let waits: Vec<Duration> = (50..56)
            .map(|i| throttle.admit(Some("admin"), at(i)).unwrap())
            .collect();
        assert!(waits.windows(2).all(|w| w[1] > w[0]), "{waits:?}");
        let mut refused = None;
        for i in 56..70 {
            if let Err(refusal) = throttle.admit(Some("admin"), at(i)) {
                refused = Some(refusal);
                break;
            }
        }
        assert_eq!(refused.map(|r| r.scope), Some("user"));
        // The address the user signed in from is not held back at all.
        assert_eq!(throttle.admit(Some("admin"), at(200)), Ok(Duration::ZERO));
    }

    #[test]
    fn keys_are_bounded_and_forgotten() {
        let throttle = LoginThrottle::new(10);
        for i in 0..(CAPACITY as u32 + 1000) {
            let address = Some(IpAddr::from(i.to_be_bytes()));
            if throttle.admit(Some("x"), address).is_ok() {
                throttle.failed("x");
            }
        }
        assert!(throttle.keys() <= 3 * CAPACITY + 10, "{}", throttle.keys());
    }
}
