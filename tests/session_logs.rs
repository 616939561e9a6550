//! Session logs: one `session start` and one `session end` line per session with who,
//! where, how much and why (as JSON with `--log-format json`), and never a secret: real
//! logins with a wrong then a right password at the xpra door, a known and an unknown
//! WebSocket token, all with `DESKRELAY_LOG=debug`, and the captured stderr searched for
//! every password, challenge response and token.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::xpra_login::{echo_session_server, frame, login, write_users};
use common::{Backend, RelayProcess};
use deskrelay::front::ws::client_binary;
use deskrelay::xpra::Value;

const WRONG_PASSWORD: &str = "wrong-Pa55word-7f3a";
const RIGHT_PASSWORD: &str = "right-Pa55word-91c2";
const TOKEN: &str = "tok-5d1e0c7b9a2f";
const UNKNOWN_TOKEN: &str = "tok-unknown-4b8e";

/// Sends a WebSocket upgrade for `token`; returns the stream and the response head.
fn upgrade(relay: &RelayProcess, token: &str) -> (TcpStream, String) {
    let mut s = relay.connect();
    write!(
        s,
        "GET /?token={token} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: binary\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
        head.push(b[0]);
    }
    (s, String::from_utf8_lossy(&head).into_owned())
}

/// The JSON log lines whose message is `message`.
fn lines_with(stderr: &str, message: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["message"] == message)
        .collect()
}

#[test]
fn session_lines_carry_who_where_how_much_and_why_and_no_secret_is_ever_logged() {
    let dir = std::env::temp_dir().join(format!("deskrelay-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let session = echo_session_server();
    let users = dir.join("users");
    write_users(&users, "zoe", RIGHT_PASSWORD, session);
    let echo = Backend::echo();
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, format!("{TOKEN}: {}\n", echo.addr)).unwrap();
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).unwrap();
    let relay = RelayProcess::start_logging(
        &[
            "--log-format",
            "json",
            "--auth",
            &format!("multifile:{}", users.display()),
            "--tokens",
            tokens.to_str().unwrap(),
        ],
        "debug",
    );

    // xpra: a wrong password, then the right one and some frames both ways.
    let (_, refused, wrong_response) = login(relay.addr, "zoe", WRONG_PASSWORD);
    assert_eq!(refused[0].as_str(), Some("disconnect"), "{refused:?}");
    let (mut xpra, hello, right_response) = login(relay.addr, "zoe", RIGHT_PASSWORD);
    assert_eq!(hello[0].as_str(), Some("hello"), "{hello:?}");
    let xpra_client = xpra.local_addr().unwrap();
    let sent = frame(vec![Value::str("ping"), Value::Int(42)]);
    xpra.write_all(&sent).unwrap();
    let mut back = vec![0u8; sent.len()];
    xpra.read_exact(&mut back).unwrap();
    drop(xpra);

    // WebSocket: an unknown token, then the known one and 100 bytes each way.
    let (_, head) = upgrade(&relay, UNKNOWN_TOKEN);
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let (mut ws, head) = upgrade(&relay, TOKEN);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    ws.write_all(&client_binary(&[9u8; 100], [1, 2, 3, 4]))
        .unwrap();
    let mut echoed = [0u8; 102]; // a 2-byte header, unmasked from the server
    ws.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed[2..], &[9u8; 100]);
    drop(ws);

    let ended = || lines_with(&relay.stderr(), "session end").len() >= 2;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !ended() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = relay.stderr();
    let _ = std::fs::remove_dir_all(&dir);

    for secret in [
        WRONG_PASSWORD,
        RIGHT_PASSWORD,
        &wrong_response,
        &right_response,
        TOKEN,
        UNKNOWN_TOKEN,
    ] {
        assert!(!log.contains(secret), "`{secret}` is in the log:\n{log}");
    }
    assert!(
        log.lines().any(|l| l.contains("\"DEBUG\"")),
        "debug lines were on:\n{log}"
    );

    let starts = lines_with(&log, "session start");
    let ends = lines_with(&log, "session end");
    assert_eq!(starts.len(), 2, "{log}");
    assert_eq!(ends.len(), 2, "{log}");
    let by_door = |lines: &[serde_json::Value], door: &str| {
        lines
            .iter()
            .find(|l| l["fields"]["door"] == door)
            .unwrap_or_else(|| panic!("no {door} line in {lines:?}"))["fields"]
            .clone()
    };
    let start = by_door(&starts, "xpra");
    assert_eq!(start["user"], "zoe");
    assert_eq!(start["target"], format!("tcp://{session}/"));
    assert_eq!(start["client"], xpra_client.to_string());
    let end = by_door(&ends, "xpra");
    assert_eq!(end["user"], "zoe");
    assert_eq!(end["target"], format!("tcp://{session}/"));
    assert_eq!(end["client"], xpra_client.to_string());
    assert_eq!(end["session"], start["session"]);
    assert_eq!(end["to_backend"], sent.len() as u64);
    assert_eq!(end["to_client"], sent.len() as u64);
    assert!(end["secs"].as_f64().is_some(), "{end}");
    assert!(end["shard"].as_u64().is_some(), "{end}");
    assert!(
        end["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{end}"
    );

    let end = by_door(&ends, "token");
    assert_eq!(end["target"], echo.addr.to_string());
    assert_eq!(end["user"], "-");
    assert_eq!(end["to_backend"], 100);
    assert_eq!(end["to_client"], 100);
}
