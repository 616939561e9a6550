//! Whole exchanges between our two ends: [`answer`] against [`Challenge::verify`].

use std::sync::Arc;

use super::{dict, strs};
use crate::xpra::auth::{answer, AuthError, Challenge, Digest, SaltLedger, Transport};
use crate::xpra::Value;

const ALL: &[&str] = &["xor", "hmac", "hmac+sha512", "hmac+sha256", "hmac+sha1"];

fn first_hello(digests: &[&str], salt_digests: &[&str]) -> Value {
    dict(vec![
        ("challenge", Value::Bool(true)),
        ("digest", strs(digests)),
        ("salt-digest", strs(salt_digests)),
    ])
}

fn second_hello(packet: &[Value], password: &[u8], transport: Transport) -> Value {
    let mut hello = dict(vec![("username", Value::str("alice"))]);
    answer(packet, password, transport)
        .expect("answer")
        .apply(&mut hello);
    hello
}

fn challenge(digests: &[&str], transport: Transport) -> Result<Challenge, AuthError> {
    challenge_with(digests, &["hmac+sha256"], transport)
}

fn challenge_with(
    digests: &[&str],
    salt_digests: &[&str],
    transport: Transport,
) -> Result<Challenge, AuthError> {
    Challenge::new(
        &first_hello(digests, salt_digests),
        transport,
        Arc::new(SaltLedger::default()),
    )
}

#[test]
fn packet_layout_is_xpras() {
    let c = challenge_with(ALL, ALL, Transport::Plain).unwrap();
    let p = c.packet();
    assert_eq!(p.len(), 6);
    assert_eq!(p[0], Value::str("challenge"));
    assert!(matches!(&p[1], Value::Bytes(s) if s.len() == 64));
    assert_eq!(p[2], Value::str(""));
    assert_eq!(p[3], Value::str("hmac+sha512"));
    assert_eq!(p[4], Value::str("hmac+sha512"));
    assert_eq!(p[5], Value::str("password"));
    assert_ne!(p[1], challenge(ALL, Transport::Plain).unwrap().packet()[1]);
    assert!(!format!("{c:?}").contains("salt:"), "Debug shows no salt");
}

#[test]
fn every_digest_round_trips_and_a_wrong_password_fails() {
    for digest in Digest::PREFERENCE {
        let transport = Transport::Loopback;
        let offered = [digest.name()];
        let mut c = challenge(&offered, transport).unwrap();
        assert_eq!(c.digest(), digest);
        assert_eq!(c.salt_digest(), Digest::HmacSha256);
        let hello = second_hello(&c.packet(), b"right", transport);
        assert_eq!(c.verify(&hello, b"right"), Ok(()), "{}", digest.name());

        let mut c = challenge(&offered, transport).unwrap();
        let hello = second_hello(&c.packet(), b"wrong", transport);
        assert_eq!(
            c.verify(&hello, b"right"),
            Err(AuthError::Failed),
            "{}",
            digest.name()
        );
    }
}

#[test]
fn xor_answers_travel_as_bytes_and_hmac_answers_as_text() {
    let mut c = challenge(&["xor"], Transport::Tls).unwrap();
    let hello = second_hello(&c.packet(), b"pw", Transport::Tls);
    assert!(matches!(hello.get("challenge_response"), Some(Value::Bytes(r)) if r.len() == 2));
    assert!(matches!(hello.get("challenge_padding"), Some(Value::Bytes(p)) if p.len() == 510));
    assert_eq!(c.verify(&hello, b"pw"), Ok(()));
    let c = challenge(ALL, Transport::Plain).unwrap();
    let hello = second_hello(&c.packet(), b"pw", Transport::Plain);
    assert!(matches!(hello.get("challenge_response"), Some(Value::Str(r)) if r.len() == 128));
}

#[test]
fn a_replayed_client_salt_is_refused_even_with_the_right_password() {
    let ledger = Arc::new(SaltLedger::default());
    let hello1 = first_hello(ALL, ALL);
    let mut c = Challenge::new(&hello1, Transport::Plain, ledger.clone()).unwrap();
    let mut answer_hello = second_hello(&c.packet(), b"pw", Transport::Plain);
    assert_eq!(c.verify(&answer_hello, b"pw"), Ok(()));

    // A fresh challenge, answered properly but with the old client salt.
    let mut c2 = Challenge::new(&hello1, Transport::Plain, ledger).unwrap();
    let fresh = second_hello(&c2.packet(), b"pw", Transport::Plain);
    answer_hello.insert(
        "challenge_response",
        fresh.get("challenge_response").unwrap().clone(),
    );
    assert_eq!(
        c2.verify(&answer_hello, b"pw"),
        Err(AuthError::ReplayedSalt)
    );
}

#[test]
fn a_failed_attempt_spends_the_challenge() {
    let mut c = challenge(ALL, Transport::Plain).unwrap();
    let good = second_hello(&c.packet(), b"pw", Transport::Plain);
    assert_eq!(
        c.verify(&dict(vec![]), b"pw"),
        Err(AuthError::MissingResponse)
    );
    assert_eq!(c.verify(&good, b"pw"), Err(AuthError::AlreadyAnswered));
}

#[test]
fn an_unknown_user_fails_like_a_wrong_password() {
    let mut c = challenge(ALL, Transport::Plain).unwrap();
    let hello = second_hello(&c.packet(), b"pw", Transport::Plain);
    assert_eq!(c.verify(&hello, b""), Err(AuthError::Failed));
}

#[test]
fn malformed_second_hellos_are_refused() {
    let cases = [
        (vec![], AuthError::MissingResponse),
        (
            vec![("challenge_response", Value::Int(1))],
            AuthError::MissingResponse,
        ),
        (
            vec![("challenge_response", Value::str("ab"))],
            AuthError::BadClientSalt,
        ),
        (
            vec![
                ("challenge_response", Value::str("ab")),
                ("challenge_client_salt", Value::Bytes(vec![1; 15])),
            ],
            AuthError::BadClientSalt,
        ),
        (
            vec![
                ("challenge_response", Value::str("ab")),
                ("challenge_client_salt", Value::Bytes(vec![1; 32])),
            ],
            AuthError::Failed,
        ),
    ];
    for (pairs, want) in cases {
        let mut c = challenge(ALL, Transport::Plain).unwrap();
        assert_eq!(c.verify(&dict(pairs), b"pw"), Err(want));
    }
}

#[test]
fn xor_is_refused_unless_the_transport_protects_it() {
    assert_eq!(
        challenge(&["xor", "hmac"], Transport::Plain).unwrap_err(),
        AuthError::XorNotAllowed
    );
    assert!(challenge(&["xor"], Transport::Loopback).is_ok());
    // Offered alongside an HMAC, xor is never picked, so plain TCP is fine.
    assert_eq!(
        challenge(&["xor", "hmac+sha256", "hmac+sha1"], Transport::Plain)
            .unwrap()
            .digest(),
        Digest::HmacSha256
    );
    // The client end refuses a server that demands xor on plain TCP.
    let mut packet = challenge(&["xor"], Transport::Tls).unwrap().packet();
    assert_eq!(
        answer(&packet, b"pw", Transport::Plain).unwrap_err(),
        AuthError::InvalidChallenge("xor digest without encryption")
    );
    packet[4] = Value::str("xor");
    assert_eq!(
        answer(&packet, b"pw", Transport::Tls).unwrap_err(),
        AuthError::InvalidChallenge("insecure salt digest")
    );
}

#[test]
fn weak_or_missing_digest_lists_are_refused() {
    let ledger = Arc::new(SaltLedger::default());
    let new = |hello: &Value| Challenge::new(hello, Transport::Plain, ledger.clone()).unwrap_err();
    assert_eq!(new(&dict(vec![])), AuthError::UnsupportedDigest);
    assert_eq!(
        new(&first_hello(&["hmac", "hmac+md5"], ALL)),
        AuthError::UnsupportedDigest
    );
    let no_salt_list = dict(vec![("digest", strs(ALL))]);
    assert_eq!(new(&no_salt_list), AuthError::InsecureSaltDigest);
    assert_eq!(
        new(&first_hello(ALL, &["xor"])),
        AuthError::InsecureSaltDigest
    );
    assert_eq!(
        new(&first_hello(ALL, &["hmac+md5"])),
        AuthError::UnsupportedDigest
    );
}

#[test]
fn answer_refuses_broken_challenges() {
    let good = challenge(ALL, Transport::Plain).unwrap().packet();
    assert_eq!(
        answer(&good, b"", Transport::Plain).unwrap_err(),
        AuthError::NoPassword
    );
    assert!(
        answer(&good[..4], b"pw", Transport::Plain).is_err(),
        "missing salt digest = xor"
    );
    let mut bad = good.clone();
    bad[0] = Value::str("hello");
    assert_eq!(
        answer(&bad, b"pw", Transport::Plain).unwrap_err(),
        AuthError::InvalidChallenge("not a challenge packet")
    );
    let mut bad = good.clone();
    bad[1] = Value::Bytes(vec![0; 8]);
    assert_eq!(
        answer(&bad, b"pw", Transport::Plain).unwrap_err(),
        AuthError::InvalidChallenge("bad server salt")
    );
    let mut bad = good;
    bad[3] = Value::str("hmac+md5");
    assert_eq!(
        answer(&bad, b"pw", Transport::Plain).unwrap_err(),
        AuthError::InvalidChallenge("unsupported digest")
    );
    assert!(answer(&[], b"pw", Transport::Plain).is_err());
}

#[test]
fn answer_debug_hides_the_response() {
    let packet = challenge(ALL, Transport::Plain).unwrap().packet();
    let a = answer(&packet, b"pw", Transport::Plain).unwrap();
    let shown = format!("{a:?}");
    assert!(!shown.contains(&String::from_utf8_lossy(a.response()).to_string()));
    let (response, salt) = a.into_parts();
    assert_eq!((response.len(), salt.len()), (128, 32));
}
