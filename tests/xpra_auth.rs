//! Authentication at the xpra door, driven by a scripted client that computes its answers
//! with the same digests xpra 3.1.3 uses: the multifile is re-read when it changes, a
//! replayed answer is refused, and the pre-auth packet limit holds.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::xpra_login::{echo_session_server, hello, read_packet, send};
use common::RelayProcess;
use deskrelay::xpra::auth::{answer, Transport};
use deskrelay::xpra::Value;

/// One login attempt: the packet that ends the handshake (`hello` or `disconnect`), and the
/// second hello that was sent (for replays).
fn login(relay: &RelayProcess, user: &str, password: &str) -> (Vec<Value>, Value) {
    let mut s = relay.connect();
    send(&mut s, vec![Value::str("hello"), hello(user)]);
    let challenge = read_packet(&mut s).expect("a challenge");
    assert_eq!(challenge[0].as_str(), Some("challenge"), "{challenge:?}");
    let mut second = hello(user);
    answer(&challenge, password.as_bytes(), Transport::Loopback)
        .expect("a digest we know")
        .apply(&mut second);
    send(&mut s, vec![Value::str("hello"), second.clone()]);
    (read_packet(&mut s).expect("an answer"), second)
}

fn write_users(path: &std::path::Path, password: &str, session: std::net::SocketAddr) {
    let tmp = path.with_extension("new");
    std::fs::write(
        &tmp,
        format!("zoe|{password}|1000|1000|tcp://{session}/||\n"),
    )
    .unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn a_changed_multifile_takes_effect_on_the_next_login_and_a_replay_is_refused() {
    let dir = std::env::temp_dir().join(format!("deskrelay-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let users = dir.join("users");
    let session = echo_session_server();
    write_users(&users, "first-pw", session);
    let relay = RelayProcess::start(&["--auth", &format!("multifile:{}", users.display())]);

    let (ok, second) = login(&relay, "zoe", "first-pw");
    assert_eq!(ok[0].as_str(), Some("hello"), "{ok:?}");

    // The same client salt again (a replayed second hello) is refused.
    let mut s = relay.connect();
    send(&mut s, vec![Value::str("hello"), hello("zoe")]);
    assert_eq!(read_packet(&mut s).unwrap()[0].as_str(), Some("challenge"));
    send(&mut s, vec![Value::str("hello"), second]);
    let replay = read_packet(&mut s).unwrap();
    assert_eq!(replay[0].as_str(), Some("disconnect"), "{replay:?}");
    assert_eq!(
        replay[2].as_str(),
        Some("authentication failed"),
        "{replay:?}"
    );

    write_users(&users, "second-pw", session);
    let (old, _) = login(&relay, "zoe", "first-pw");
    assert_eq!(old[0].as_str(), Some("disconnect"), "{old:?}");
    let (new, _) = login(&relay, "zoe", "second-pw");
    assert_eq!(new[0].as_str(), Some("hello"), "{new:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_hello_over_the_pre_auth_limit_is_refused_before_it_is_read() {
    let relay = RelayProcess::start(&[
        "--auth",
        "allow",
        "--session",
        "tcp://127.0.0.1:9/",
        "--pre-auth-max-packet",
        "4096",
    ]);
    let mut s = relay.connect();
    let mut caps = hello("zoe");
    caps.insert("padding", Value::Bytes(vec![0u8; 10_000]));
    send(&mut s, vec![Value::str("hello"), caps]);
    let got = read_packet(&mut s).expect("a disconnect");
    assert_eq!(got[0].as_str(), Some("disconnect"));
    assert!(
        got[2].as_str().unwrap().contains("packet too large"),
        "{got:?}"
    );
}
