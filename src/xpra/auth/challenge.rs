//! One xpra challenge/response exchange, from either end.
//!
//! Server end (clients authenticating to the proxy), as xpra 3.1.3's `server_core.py` and
//! `sys_auth_base.py` do it:
//! 1. the client's first hello carries `challenge: True`, its `digest` and `salt-digest`
//!    lists; [`Challenge::new`] picks the strongest of each and 64 random salt bytes;
//! 2. [`Challenge::packet`] is `["challenge", server_salt, "", digest, salt_digest,
//!    "password"]` (salt as raw bytes, `""` = no cipher caps, the prompt last);
//! 3. the second hello carries `challenge_response` and `challenge_client_salt`;
//!    [`Challenge::verify`] recomputes `gendigest(digest, password, gendigest(salt_digest,
//!    client_salt, server_salt))`, compares in constant time, and spends the challenge and
//!    the client salt whatever the outcome.
//!
//! `xor` works here over TLS or loopback; xpra 3.1.3's own `multifile` module cannot verify
//! an xor answer at all (it compares the bytes it computes with the text `strget` gives,
//! and `hmac.compare_digest` raises `TypeError`), so no 3.1.3 proxy set-up relies on it.
//!
//! Client end ([`answer`]): the proxy answering a backend server's challenge with the
//! password from the session URI, as `client_base.py:send_challenge_reply` does.

use std::fmt;
use std::sync::Arc;

use rand::RngCore;

use super::digest::{ct_eq, Digest, Transport};
use super::error::AuthError;
use super::ledger::SaltLedger;
use crate::xpra::Value;

/// Server salt length: xpra's `get_salt()` default.
pub const SERVER_SALT_LEN: usize = 64;
/// Client salt length for an HMAC salt digest: what xpra's client sends.
pub const CLIENT_SALT_LEN: usize = 32;
/// Salts we accept from peers: at least 16 bytes (xpra's minimum), at most 1 KiB.
const SALT_RANGE: std::ops::RangeInclusive<usize> = 16..=1024;

/// A challenge sent to one client, answerable once.
pub struct Challenge {
    server_salt: [u8; SERVER_SALT_LEN],
    digest: Digest,
    salt_digest: Digest,
    ledger: Arc<SaltLedger>,
    answered: bool,
}

impl Challenge {
    /// Picks the digests from the client's first `hello` (`digest` and `salt-digest` lists)
    /// and draws a fresh server salt. Refuses when no digest offered is one we implement (a
    /// client without a `digest` list would get MD5 from xpra; we refuse), when only `xor`
    /// is offered and `transport` does not allow it, and when the salt digest would be
    /// `xor` (what xpra assumes when `salt-digest` is missing).
    pub fn new(
        hello: &Value,
        transport: Transport,
        ledger: Arc<SaltLedger>,
    ) -> Result<Challenge, AuthError> {
        let digest =
            Digest::choose(names(hello.get("digest"))).ok_or(AuthError::UnsupportedDigest)?;
        if digest == Digest::Xor && !transport.allows_xor() {
            return Err(AuthError::XorNotAllowed);
        }
        let salt_digest = match hello.get("salt-digest") {
            None => return Err(AuthError::InsecureSaltDigest),
            Some(list) => Digest::choose(names(Some(list))).ok_or(AuthError::UnsupportedDigest)?,
        };
        if salt_digest == Digest::Xor {
            return Err(AuthError::InsecureSaltDigest);
        }
        let mut server_salt = [0u8; SERVER_SALT_LEN];
        rand::thread_rng().fill_bytes(&mut server_salt);
        Ok(Challenge {
            server_salt,
            digest,
            salt_digest,
            ledger,
            answered: false,
        })
    }

    pub fn digest(&self) -> Digest {
        self.digest
    }

    pub fn salt_digest(&self) -> Digest {
        self.salt_digest
    }

    /// The items of the `challenge` packet, in xpra 3.1.3's order.
    pub fn packet(&self) -> Vec<Value> {
        vec![
            Value::str("challenge"),
            Value::Bytes(self.server_salt.to_vec()),
            Value::str(""),
            Value::str(self.digest.name()),
            Value::str(self.salt_digest.name()),
            Value::str("password"),
        ]
    }

    /// Checks the client's second `hello` against `password`. For an unknown user pass an
    /// empty password: it always fails, after the same salt bookkeeping, so the reply does
    /// not tell which usernames exist. The first call spends the challenge; later calls
    /// fail with [`AuthError::AlreadyAnswered`].
    pub fn verify(&mut self, hello: &Value, password: &[u8]) -> Result<(), AuthError> {
        if std::mem::replace(&mut self.answered, true) {
            return Err(AuthError::AlreadyAnswered);
        }
        let response = hello
            .get("challenge_response")
            .and_then(Value::as_bytes)
            .filter(|r| !r.is_empty())
            .ok_or(AuthError::MissingResponse)?;
        let client_salt = hello
            .get("challenge_client_salt")
            .and_then(Value::as_bytes)
            .filter(|s| SALT_RANGE.contains(&s.len()))
            .ok_or(AuthError::BadClientSalt)?;
        if !self.ledger.record(client_salt) {
            return Err(AuthError::ReplayedSalt);
        }
        let salt = self.salt_digest.compute(client_salt, &self.server_salt);
        let expected = self.digest.compute(password, &salt);
        if ct_eq(&expected, response) {
            Ok(())
        } else {
            Err(AuthError::Failed)
        }
    }
}

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Challenge")
            .field("digest", &self.digest.name())
            .field("salt_digest", &self.salt_digest.name())
            .field("answered", &self.answered)
            .finish_non_exhaustive()
    }
}

/// Our answer to a backend server's challenge.
pub struct Answer {
    response: Vec<u8>,
    client_salt: Vec<u8>,
    digest: Digest,
}

impl Answer {
    pub fn response(&self) -> &[u8] {
        &self.response
    }

    pub fn client_salt(&self) -> &[u8] {
        &self.client_salt
    }

    /// `(challenge_response, challenge_client_salt)`.
    pub fn into_parts(self) -> (Vec<u8>, Vec<u8>) {
        (self.response, self.client_salt)
    }

    /// Puts the answer into the hello we resend: `challenge_response` (text for an HMAC,
    /// bytes for xor), `challenge_client_salt`, and random `challenge_padding` as xpra's
    /// client adds (it hides the length of an xor answer, i.e. of the password).
    pub fn apply(&self, hello: &mut Value) {
        let response = if self.digest.is_hmac() {
            Value::Str(self.response.clone())
        } else {
            Value::Bytes(self.response.clone())
        };
        hello.insert("challenge_response", response);
        hello.insert(
            "challenge_client_salt",
            Value::Bytes(self.client_salt.clone()),
        );
        let mut padding = vec![0u8; 512usize.saturating_sub(self.response.len()).max(32)];
        rand::thread_rng().fill_bytes(&mut padding);
        hello.insert("challenge_padding", Value::Bytes(padding));
    }
}

impl fmt::Debug for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Answer")
            .field("digest", &self.digest.name())
            .finish_non_exhaustive()
    }
}

/// Answers a backend's `challenge` packet (all its items, `"challenge"` first) with
/// `password`, as an xpra 3.1.3 client would: refuses `xor` unless `transport` allows it,
/// refuses an `xor` (or missing) salt digest, ignores cipher caps (we never ask for
/// encryption), and draws a 32-byte client salt.
pub fn answer(
    packet: &[Value],
    password: &[u8],
    transport: Transport,
) -> Result<Answer, AuthError> {
    let invalid = AuthError::InvalidChallenge;
    if packet.first().and_then(Value::as_str) != Some("challenge") {
        return Err(invalid("not a challenge packet"));
    }
    if password.is_empty() {
        return Err(AuthError::NoPassword);
    }
    let server_salt = packet
        .get(1)
        .and_then(Value::as_bytes)
        .filter(|s| SALT_RANGE.contains(&s.len()))
        .ok_or(invalid("bad server salt"))?;
    // "kerberos:<value>" style digests carry a suffix after ':'.
    let digest = packet
        .get(3)
        .and_then(Value::as_str)
        .and_then(|d| d.split(':').next())
        .and_then(Digest::parse)
        .ok_or(invalid("unsupported digest"))?;
    if digest == Digest::Xor && !transport.allows_xor() {
        return Err(invalid("xor digest without encryption"));
    }
    let salt_digest = match packet.get(4) {
        None => Digest::Xor,
        Some(v) => v
            .as_str()
            .and_then(Digest::parse)
            .ok_or(invalid("unsupported salt digest"))?,
    };
    if salt_digest == Digest::Xor {
        return Err(invalid("insecure salt digest"));
    }
    let mut client_salt = vec![0u8; CLIENT_SALT_LEN];
    rand::thread_rng().fill_bytes(&mut client_salt);
    let salt = salt_digest.compute(&client_salt, server_salt);
    let response = digest.compute(password, &salt);
    Ok(Answer {
        response,
        client_salt,
        digest,
    })
}

/// The string items of a capability list (`digest`, `salt-digest`).
fn names(list: Option<&Value>) -> impl Iterator<Item = &str> {
    list.and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str)
}
