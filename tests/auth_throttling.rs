//! Failed-login throttling on the real binary: an address that keeps failing (xpra
//! passwords, WebSocket tokens) is refused with a reason while a good user from another
//! address logs in; a user name that keeps failing is refused from any address; the block
//! ends; refusals are counted and logged.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::xpra_login::{echo_session_server, login_outcome};
use common::{connect_from, Backend, RelayProcess, Scratch};
use deskrelay::xpra::auth::Transport;

/// One login from `source`: the packet that ends the handshake (`hello`, or the
/// `disconnect` with its code and detail), as strings.
fn login(relay: &RelayProcess, source: &str, user: &str, password: &str) -> Vec<String> {
    let mut s = connect_from(relay.addr, source);
    login_outcome(&mut s, user, password, Transport::Loopback)
}

/// A relay over a multifile with `ann` and `zoe`; blocks after 3 failures, 2 s then 4 s.
fn xpra_relay(scratch: &Scratch) -> RelayProcess {
    let session = echo_session_server();
    let users = scratch.file(
        "users",
        &format!(
            "ann|ann-pw|1000|1000|tcp://{session}/||\nzoe|zoe-pw|1000|1000|tcp://{session}/||\n"
        ),
    );
    RelayProcess::start(&[
        "--auth",
        &format!("multifile:{}", users.display()),
        "--auth-fail-limit",
        "3",
        "--auth-backoff",
        "2",
        "--auth-backoff-max",
        "4",
    ])
}

#[test]
fn an_address_that_keeps_failing_is_refused_and_a_good_user_elsewhere_is_not() {
    let scratch = Scratch::new("throttle-addr");
    let relay = xpra_relay(&scratch);
    // Three wrong guesses from 127.0.0.1, each for another name: the address is blocked,
    // none of the names is.
    for user in ["ann", "bob", "carl"] {
        let got = login(&relay, "127.0.0.1", user, "guess");
        assert_eq!(
            got[..3],
            [
                "disconnect",
                "authentication error",
                "authentication failed"
            ]
        );
    }
    let started = Instant::now();
    let got = login(&relay, "127.0.0.1", "ann", "ann-pw");
    assert_eq!(
        got[..3],
        [
            "disconnect",
            "authentication error",
            "too many failed logins; retry in 2 s"
        ],
        "the right password from a blocked address is refused before any challenge"
    );
    // Another address is another client: ann logs in.
    assert_eq!(login(&relay, "127.0.0.2", "ann", "ann-pw")[0], "hello");
    assert!(relay.wait_for_log(
        "address 127.0.0.1 blocked for 2 s after 3 failed logins",
        Duration::from_secs(5)
    ));
    assert!(relay.wait_for_log(
        "login refused: too many failed logins for address 127.0.0.1",
        Duration::from_secs(5)
    ));

    // The block ends; one more failure blocks again, twice as long.
    std::thread::sleep(
        Duration::from_secs(2).saturating_sub(started.elapsed()) + Duration::from_millis(200),
    );
    let got = login(&relay, "127.0.0.1", "bob", "guess");
    assert_eq!(got[2], "authentication failed");
    let got = login(&relay, "127.0.0.1", "ann", "ann-pw");
    assert_eq!(got[2], "too many failed logins; retry in 4 s");
    assert!(relay.stop_summary().contains("auth_throttled=2"));
}

#[test]
fn a_user_that_keeps_failing_is_refused_from_any_address_until_the_block_ends() {
    let scratch = Scratch::new("throttle-user");
    let relay = xpra_relay(&scratch);
    for source in ["127.0.0.3", "127.0.0.4", "127.0.0.5"] {
        let got = login(&relay, source, "zoe", "guess");
        assert_eq!(got[2], "authentication failed");
    }
    let blocked_at = Instant::now();
    let got = login(&relay, "127.0.0.6", "zoe", "zoe-pw");
    assert_eq!(got[..2], ["disconnect", "authentication error"]);
    assert!(got[2].starts_with("too many failed logins"), "{got:?}");
    // Other users from the same addresses are fine.
    assert_eq!(login(&relay, "127.0.0.6", "ann", "ann-pw")[0], "hello");
    assert_eq!(login(&relay, "127.0.0.3", "ann", "ann-pw")[0], "hello");
    std::thread::sleep(Duration::from_millis(2200).saturating_sub(blocked_at.elapsed()));
    // The block is over, and a success forgets the failures.
    assert_eq!(login(&relay, "127.0.0.6", "zoe", "zoe-pw")[0], "hello");
    for _ in 0..2 {
        assert_eq!(
            login(&relay, "127.0.0.7", "zoe", "guess")[2],
            "authentication failed"
        );
    }
    assert_eq!(login(&relay, "127.0.0.7", "zoe", "zoe-pw")[0], "hello");
    assert!(relay.wait_for_log("user \"zoe\" blocked for 2 s", Duration::from_secs(5)));
}

/// The HTTP status line and the Retry-After value of a token upgrade from `source`.
fn upgrade(relay: &RelayProcess, source: &str, token: &str) -> (String, Option<String>) {
    let mut s = connect_from(relay.addr, source);
    write!(
        s,
        "GET /?token={token} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && s.read_exact(&mut b).is_ok() {
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let status = head.lines().next().unwrap_or("").to_string();
    let retry = head
        .lines()
        .find_map(|l| l.strip_prefix("Retry-After: "))
        .map(str::to_string);
    (status, retry)
}

#[test]
fn bad_tokens_from_one_address_get_429_with_retry_after() {
    let scratch = Scratch::new("throttle-tokens");
    let echo = Backend::echo();
    let tokens = scratch.file("tokens", &format!("good: {}\n", echo.addr));
    let relay = RelayProcess::start(&[
        "--tokens",
        tokens.to_str().unwrap(),
        "--auth-fail-limit",
        "2",
        "--auth-backoff",
        "30",
    ]);
    for _ in 0..2 {
        assert_eq!(
            upgrade(&relay, "127.0.0.1", "nope").0,
            "HTTP/1.1 403 Forbidden"
        );
    }
    for token in ["nope", "good"] {
        let (status, retry) = upgrade(&relay, "127.0.0.1", token);
        assert_eq!(status, "HTTP/1.1 429 Too Many Requests", "{token}");
        let secs: u64 = retry.expect("Retry-After").parse().unwrap();
        assert!((29..=30).contains(&secs), "{secs}");
    }
    let (status, _) = upgrade(&relay, "127.0.0.2", "good");
    assert_eq!(status, "HTTP/1.1 101 Switching Protocols");
    assert!(relay.wait_for_log("address 127.0.0.1 blocked for 30 s", Duration::from_secs(5)));
    assert!(relay.stop_summary().contains("auth_throttled=2"));
}
