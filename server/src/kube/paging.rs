//! List pages and their `continue` tokens.
//!
//! A token says where the next page starts: after the last item the caller was given, never
//! after a row it was not shown. It is sealed (XChaCha20-Poly1305 under a server key kept in
//! `server_secrets`, so every replica opens it) with the list and the caller as associated
//! data, so it reveals no name, cannot be edited into another position, and opens only for the
//! list and caller it was made for. It lasts [`CONTINUE_LIFETIME`]; after that the caller lists
//! again, as Kubernetes answers a token older than its compaction.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use sha2::{Digest as _, Sha256};

use super::error::{ApiError, ApiResult};

/// Page size when a list request gives no `limit`, and the most one page holds.
pub const DEFAULT_PAGE: u32 = 500;
pub const MAX_PAGE: u32 = 1000;

/// How long a `continue` token may be used.
pub const CONTINUE_LIFETIME: Duration = Duration::from_secs(3600);

/// Rows read per store query while a filtered page is filled (a page that keeps every row reads
/// exactly its `limit`).
const FILL_BATCH: u32 = 100;

const NONCE_BYTES: usize = 24;
/// The issue time in front of the position.
const TIME_BYTES: usize = 8;

/// A list request's page: how long, and its `continue` token as given (opened by the list that
/// knows who asks).
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub limit: u32,
    continue_token: Option<String>,
}

impl Page {
    /// From a request's `limit` and `continue`.
    pub fn parse(limit: Option<u32>, continue_token: Option<&str>) -> ApiResult<Page> {
        Ok(Page {
            limit: limit
                .filter(|l| *l > 0)
                .unwrap_or(DEFAULT_PAGE)
                .min(MAX_PAGE),
            continue_token: continue_token.filter(|t| !t.is_empty()).map(str::to_owned),
        })
    }

    /// The first page of `limit` items.
    pub fn first(limit: u32) -> Page {
        Page {
            limit: limit.clamp(1, MAX_PAGE),
            continue_token: None,
        }
    }
}

/// Makes and opens `continue` tokens.
pub struct ContinueTokens {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for ContinueTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContinueTokens(..)")
    }
}

/// What a token is bound to: the list and the caller (`Subject::key` in `auth`).
fn associated_data(list: &str, caller: &str) -> Vec<u8> {
    format!("berth-continue\0{list}\0{caller}").into_bytes()
}

fn now_seconds() -> i64 {
    chrono::Utc::now().timestamp()
}

impl ContinueTokens {
    /// Tokens sealed under a key derived from `secret` (the server's stored secret).
    pub fn new(secret: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"berth continue tokens\0");
        hasher.update(secret);
        let key = hasher.finalize();
        ContinueTokens {
            cipher: XChaCha20Poly1305::new(Key::from_slice(&key)),
        }
    }

    /// The token of a page of `list` for `caller` that ended with the item keyed `last`.
    pub fn seal(&self, list: &str, caller: &str, last: &str) -> String {
        self.seal_at(list, caller, last, now_seconds())
    }

    fn seal_at(&self, list: &str, caller: &str, last: &str, issued: i64) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut plaintext = Vec::with_capacity(TIME_BYTES + last.len());
        plaintext.extend_from_slice(&issued.to_be_bytes());
        plaintext.extend_from_slice(last.as_bytes());
        let aad = associated_data(list, caller);
        // Encryption with a valid key and nonce cannot fail; an empty token would only restart
        // the list.
        let Ok(ciphertext) = self.cipher.encrypt(
            &nonce,
            Payload {
                msg: &plaintext,
                aad: &aad,
            },
        ) else {
            return String::new();
        };
        let mut token = nonce.to_vec();
        token.extend_from_slice(&ciphertext);
        URL_SAFE_NO_PAD.encode(token)
    }

    /// Where `page` of `list` starts for `caller`: `None` for the beginning, else after the key
    /// its token names. A token that does not open (edited, made for another list or caller,
    /// not one of ours) is a 400; an old one a 410 `Expired`.
    pub fn start(&self, page: &Page, list: &str, caller: &str) -> ApiResult<Option<String>> {
        match &page.continue_token {
            None => Ok(None),
            Some(token) => self.open_at(token, list, caller, now_seconds()).map(Some),
        }
    }

    fn open_at(&self, token: &str, list: &str, caller: &str, now: i64) -> ApiResult<String> {
        let invalid = || {
            ApiError::BadRequest(
                "the continue token is not valid for this list; list again without it".into(),
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        if bytes.len() < NONCE_BYTES {
            return Err(invalid());
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let aad = associated_data(list, caller);
        let plaintext = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| invalid())?;
        if plaintext.len() < TIME_BYTES {
            return Err(invalid());
        }
        let (issued, last) = plaintext.split_at(TIME_BYTES);
        let mut issued_bytes = [0u8; TIME_BYTES];
        issued_bytes.copy_from_slice(issued);
        let issued = i64::from_be_bytes(issued_bytes);
        let lifetime = CONTINUE_LIFETIME.as_secs() as i64;
        if now.saturating_sub(issued) > lifetime {
            return Err(ApiError::ContinueExpired);
        }
        String::from_utf8(last.to_vec()).map_err(|_| invalid())
    }
}

/// A page of the items `keep` accepts, in the store's order, read from store pages after
/// `after` (`fetch(after, count)`) until `limit` are kept or the store has no more; a row that
/// is not kept is passed over without ending the page. Returns the items and whether more rows
/// may follow the last one.
pub async fn fill<T, Rows>(
    limit: u32,
    after: Option<String>,
    filtered: bool,
    mut fetch: impl FnMut(Option<String>, u32) -> Rows,
    key: impl Fn(&T) -> String,
    keep: impl Fn(&T) -> bool,
) -> ApiResult<(Vec<T>, bool)>
where
    Rows: Future<Output = ApiResult<Vec<T>>>,
{
    let limit = limit.max(1) as usize;
    let batch = if filtered {
        (limit as u32).max(FILL_BATCH)
    } else {
        limit as u32
    };
    let mut items = Vec::new();
    let mut cursor = after;
    loop {
        let rows = fetch(cursor.clone(), batch).await?;
        let exhausted = rows.len() < batch as usize;
        if let Some(last) = rows.last() {
            cursor = Some(key(last));
        }
        let mut rows = rows.into_iter();
        for row in rows.by_ref() {
            if keep(&row) {
                items.push(row);
                if items.len() == limit {
                    break;
                }
            }
        }
        if items.len() == limit {
            let more = rows.any(|row| keep(&row)) || !exhausted;
            return Ok((items, more));
        }
        if exhausted {
            return Ok((items, false));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "User:alice";

    #[test]
    fn tokens_open_only_for_their_list_and_caller_and_reveal_nothing() {
        let tokens = ContinueTokens::new(b"server secret");
        let token = tokens.seal("namespaces", ALICE, "secret-team");
        assert!(!token.contains("secret"));
        assert!(
            !hex::encode(URL_SAFE_NO_PAD.decode(&token).unwrap())
                .contains(&hex::encode("secret-team"))
        );
        let page = Page::parse(Some(1), Some(&token)).unwrap();
        assert_eq!(
            tokens.start(&page, "namespaces", ALICE).unwrap().as_deref(),
            Some("secret-team")
        );
        let refused = |list: &str, caller: &str, token: &str| {
            let page = Page::parse(Some(1), Some(token)).unwrap();
            matches!(
                tokens.start(&page, list, caller),
                Err(ApiError::BadRequest(_))
            )
        };
        assert!(refused("imagestreams/team", ALICE, &token));
        assert!(refused("namespaces", "Anonymous", &token));
        assert!(refused(
            "namespaces",
            ALICE,
            &ContinueTokens::new(b"another").seal("namespaces", ALICE, "x")
        ));
        // Every bit flipped somewhere, and the old hex tokens, are refused.
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for i in 0..bytes.len() {
            bytes[i] ^= 1;
            assert!(refused(
                "namespaces",
                ALICE,
                &URL_SAFE_NO_PAD.encode(&bytes)
            ));
            bytes[i] ^= 1;
        }
        for bad in [hex::encode("secret-team").as_str(), "zz", "!!", "AAAA"] {
            assert!(refused("namespaces", ALICE, bad), "{bad}");
        }
    }

    #[test]
    fn old_tokens_expire() {
        let tokens = ContinueTokens::new(b"k");
        let lifetime = CONTINUE_LIFETIME.as_secs() as i64;
        let token = tokens.seal_at("images", ALICE, "sha256:a", 1_000);
        assert_eq!(
            tokens
                .open_at(&token, "images", ALICE, 1_000 + lifetime)
                .unwrap(),
            "sha256:a"
        );
        assert!(matches!(
            tokens.open_at(&token, "images", ALICE, 1_001 + lifetime),
            Err(ApiError::ContinueExpired)
        ));
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(Page::parse(None, None).unwrap().limit, DEFAULT_PAGE);
        assert_eq!(Page::parse(Some(0), None).unwrap().limit, DEFAULT_PAGE);
        assert_eq!(Page::parse(Some(100_000), None).unwrap().limit, MAX_PAGE);
        assert_eq!(Page::first(0).limit, 1);
    }

    /// The store as a sorted list of names; `visible` those with an even number.
    async fn pages(
        names: &[String],
        limit: u32,
        visible: impl Fn(&String) -> bool + Copy,
    ) -> Vec<Vec<String>> {
        let mut pages = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let (items, more) = fill(
                limit,
                after.clone(),
                true,
                |after: Option<String>, count: u32| {
                    let rows = names
                        .iter()
                        .filter(|n| after.as_ref().is_none_or(|a| *n > a))
                        .take(count as usize)
                        .cloned()
                        .collect();
                    async move { Ok(rows) }
                },
                |n: &String| n.clone(),
                visible,
            )
            .await
            .unwrap();
            assert!(items.len() <= limit as usize);
            after = items.last().cloned();
            pages.push(items);
            if !more {
                return pages;
            }
            assert!(
                after.is_some(),
                "a page that says more follows gives a position"
            );
        }
    }

    #[tokio::test]
    async fn filled_pages_visit_every_visible_item_once_and_end_on_one() {
        let names: Vec<String> = (0..457).map(|i| format!("n{i:04}")).collect();
        let visible = |n: &String| n[1..].parse::<u32>().unwrap() % 7 == 0;
        let expected: Vec<String> = names.iter().filter(|n| visible(n)).cloned().collect();
        for limit in [1, 2, 5, 65, 66, 1000] {
            let pages = pages(&names, limit, visible).await;
            let seen: Vec<String> = pages.iter().flatten().cloned().collect();
            assert_eq!(seen, expected, "limit {limit}");
            // Every page but the last is full.
            for page in &pages[..pages.len() - 1] {
                assert_eq!(page.len(), limit as usize);
            }
        }
        assert_eq!(
            pages(&names, 10, |_| false).await,
            vec![Vec::<String>::new()]
        );
    }
}
