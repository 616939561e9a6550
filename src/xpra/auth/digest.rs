//! The challenge digests an xpra 3.1.3+ client understands, computed as xpra's
//! `net/digest.py:gendigest(digest, password, salt)` does.
//!
//! - `hmac+<hash>`: `HMAC(key = password, msg = salt, hash)` written as lower-case hex ASCII
//!   (Python's `hexdigest()`); the hex text, not the raw tag, is what travels and what the
//!   next step keys or hashes.
//! - `xor`: `password XOR salt`, the salt cut or zero-padded to the password's length; the
//!   raw bytes travel. It hands the password to anyone who can read the wire, so it is only
//!   for TLS or loopback ([`Transport::allows_xor`]).
//!
//! The same function makes the combined salt, with the client salt as the "password" and the
//! server salt as the "salt": `salt = gendigest(salt_digest, client_salt, server_salt)`, then
//! `response = gendigest(digest, password, salt)`.
//! Left out: legacy `hmac` (MD5, only for clients that send no digest list), `des`,
//! sha224/sha3/blake2 (3.1.3 clients and the HTML5 client both offer hmac+sha512).

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};

/// A challenge digest (also used as the salt digest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Digest {
    Xor,
    HmacSha1,
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

/// What protects the connection a challenge travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain TCP (or WebSocket) to a peer that is not on this host.
    Plain,
    /// TLS (ssl or wss).
    Tls,
    /// A loopback address or a unix socket.
    Loopback,
}

impl Transport {
    /// Whether the `xor` digest (which sends the password masked only by a known salt) may be
    /// used: xpra's client allows it only over TLS or to localhost, and so do we.
    pub fn allows_xor(self) -> bool {
        matches!(self, Transport::Tls | Transport::Loopback)
    }
}

impl Digest {
    /// Strongest first: the order of xpra 3.1.3's `choose_digest`.
    pub const PREFERENCE: [Digest; 5] = [
        Digest::HmacSha512,
        Digest::HmacSha384,
        Digest::HmacSha256,
        Digest::HmacSha1,
        Digest::Xor,
    ];

    /// The name on the wire.
    pub const fn name(self) -> &'static str {
        match self {
            Digest::Xor => "xor",
            Digest::HmacSha1 => "hmac+sha1",
            Digest::HmacSha256 => "hmac+sha256",
            Digest::HmacSha384 => "hmac+sha384",
            Digest::HmacSha512 => "hmac+sha512",
        }
    }

    /// The digest named exactly `name`, if we implement it.
    pub fn parse(name: &str) -> Option<Digest> {
        Digest::PREFERENCE.into_iter().find(|d| d.name() == name)
    }

    /// The strongest digest among the names offered (unknown names are skipped), as xpra
    /// 3.1.3 picks it: any HMAC before `xor`. `None` when nothing offered is known.
    pub fn choose<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<Digest> {
        let offered: Vec<Digest> = offered.into_iter().filter_map(Digest::parse).collect();
        Digest::PREFERENCE.into_iter().find(|d| offered.contains(d))
    }

    pub fn is_hmac(self) -> bool {
        self != Digest::Xor
    }

    /// xpra's `gendigest(self, key, message)`: lower-case hex ASCII for HMACs, raw bytes for
    /// `xor`. Empty input gives empty output (xpra asserts instead); callers treat an empty
    /// result as a failure.
    pub fn compute(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        if key.is_empty() || message.is_empty() {
            return Vec::new();
        }
        match self {
            Digest::Xor => key
                .iter()
                .enumerate()
                .map(|(i, k)| k ^ message.get(i).copied().unwrap_or(0))
                .collect(),
            Digest::HmacSha1 => hmac_hex::<Hmac<sha1::Sha1>>(key, message),
            Digest::HmacSha256 => hmac_hex::<Hmac<sha2::Sha256>>(key, message),
            Digest::HmacSha384 => hmac_hex::<Hmac<sha2::Sha384>>(key, message),
            Digest::HmacSha512 => hmac_hex::<Hmac<sha2::Sha512>>(key, message),
        }
    }
}

fn hmac_hex<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so this cannot fail; an empty result would only ever
    // fail a comparison.
    let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
        return Vec::new();
    };
    mac.update(message);
    hex::encode(mac.finalize().into_bytes()).into_bytes()
}

/// Equality whose time depends only on the lengths, not on where the bytes differ. The
/// lengths are public anyway (a hex digest has a fixed length per algorithm; an xor answer
/// has the password's length, which xpra's own padding only blurs). Empty never matches.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() || a.is_empty() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimiser from turning the fold into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choose_prefers_the_strongest_hmac_and_skips_unknown_names() {
        // What a Debian 3.1.3 client offers (net_util.get_network_caps).
        let offered = [
            "xor",
            "hmac",
            "hmac+sha512",
            "hmac+sha3_512",
            "hmac+sha384",
            "hmac+sha256",
            "hmac+sha1",
            "hmac+md5",
            "des",
        ];
        assert_eq!(Digest::choose(offered), Some(Digest::HmacSha512));
        assert_eq!(
            Digest::choose(["hmac+md5", "hmac+sha1", "xor"]),
            Some(Digest::HmacSha1)
        );
        assert_eq!(Digest::choose(["xor", "hmac"]), Some(Digest::Xor));
        assert_eq!(Digest::choose(["hmac", "des"]), None);
        assert_eq!(Digest::choose([]), None);
    }

    #[test]
    fn names_round_trip() {
        for d in Digest::PREFERENCE {
            assert_eq!(Digest::parse(d.name()), Some(d));
        }
        assert_eq!(Digest::parse("HMAC+SHA512"), None);
    }

    #[test]
    fn xor_pads_and_cuts_the_salt_to_the_password() {
        assert_eq!(Digest::Xor.compute(b"abc", b"12345"), b"PPP");
        assert_eq!(Digest::Xor.compute(b"abc", b"1"), b"Pbc");
        assert!(Digest::Xor.compute(b"", b"1").is_empty());
    }

    #[test]
    fn ct_eq_compares_whole_slices() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(!ct_eq(b"", b""));
    }

    #[test]
    fn xor_only_on_protected_transports() {
        assert!(!Transport::Plain.allows_xor());
        assert!(Transport::Tls.allows_xor());
        assert!(Transport::Loopback.allows_xor());
    }
}
