//! The control socket and `deskrelay info|list|stop` against the real binary: a live xpra
//! session listed with its user, target and the bytes this test sent; the JSON schema;
//! `stop` draining; the socket's mode; a second relay on the same socket refused; `info`
//! with nobody listening.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::xpra_login::{echo_session_server, frame, login, write_users};
use common::{Backend, RelayProcess, Scratch};
use deskrelay::xpra::Value;

/// Runs `deskrelay ARGS...` to completion.
fn deskrelay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deskrelay"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run deskrelay")
}

/// `deskrelay COMMAND --json --control SOCKET`, parsed.
fn ask_json(command: &str, socket: &Path) -> serde_json::Value {
    let out = deskrelay(&[command, "--json", "--control", socket.to_str().unwrap()]);
    assert!(out.status.success(), "{command}: {out:?}");
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn info_and_list_show_a_live_xpra_session_with_its_user_target_and_bytes() {
    let scratch = Scratch::new("ctl-live");
    let session = echo_session_server();
    let users = scratch.path("users");
    write_users(&users, "zoe", "correct horse", session);
    let socket = scratch.path("ctl.sock");
    let relay = RelayProcess::start(&[
        "--auth",
        &format!("multifile:{}", users.display()),
        "--shards",
        "2",
        "--control",
        socket.to_str().unwrap(),
    ]);
    let (_, refused, _) = login(relay.addr, "zoe", "wrong");
    assert_eq!(refused[0].as_str(), Some("disconnect"), "{refused:?}");
    let (mut s, hello, _) = login(relay.addr, "zoe", "correct horse");
    assert_eq!(hello[0].as_str(), Some("hello"), "{hello:?}");

    // Data phase: two frames up, the session server echoes them down.
    let mut sent = frame(vec![Value::str("ping"), Value::Int(1)]);
    sent.extend(frame(vec![
        Value::str("key-action"),
        Value::Bytes(vec![7; 3000]),
    ]));
    s.write_all(&sent).unwrap();
    let mut back = vec![0u8; sent.len()];
    s.read_exact(&mut back).unwrap();
    assert_eq!(back, sent);
    let n = sent.len() as u64;

    let list = ask_json("list", &socket);
    assert_eq!(list["schema"], 1);
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{list}");
    let live = &sessions[0];
    assert_eq!(live["user"], "zoe");
    assert_eq!(live["target"], format!("tcp://{session}/"));
    assert_eq!(live["door"], "xpra");
    assert_eq!(live["client"], s.local_addr().unwrap().to_string());
    assert_eq!(live["bytes_to_backend"], n, "{live}");
    assert_eq!(live["bytes_to_client"], n, "{live}");
    for key in [
        "id",
        "shard",
        "tls",
        "websocket",
        "age_secs",
        "started_unix",
    ] {
        assert!(live.get(key).is_some(), "{key} missing: {live}");
    }

    let info = ask_json("info", &socket);
    assert_eq!(info["schema"], 1);
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["pid"], relay.pid());
    assert_eq!(info["sessions"], 1);
    assert_eq!(info["shards"].as_array().unwrap().len(), 2);
    assert_eq!(info["bytes_to_backend"], n, "{info}");
    assert_eq!(info["bytes_to_client"], n, "{info}");
    assert_eq!(info["auth"]["xpra_successes"], 1, "{info}");
    assert_eq!(info["auth"]["xpra_failures"], 1, "{info}");
    for key in ["uptime_secs", "data_path", "errors"] {
        assert!(info.get(key).is_some(), "{key} missing: {info}");
    }
    assert_eq!(info["data_path"]["mode"], "auto");

    // The text forms.
    let sock = socket.to_str().unwrap();
    let out = deskrelay(&["list", "--control", sock]);
    let table = text(&out);
    assert!(out.status.success(), "{table}");
    let row = table.lines().nth(1).expect("one session row");
    assert!(
        row.contains("zoe") && row.contains(&session.to_string()),
        "{table}"
    );
    let out = deskrelay(&["info", "--control", sock]);
    let lines = text(&out);
    assert!(lines.contains("sessions=1\n"), "{lines}");
    assert!(lines.contains("auth.xpra_failures=1\n"), "{lines}");

    drop(s);
    // Closed: unlisted.
    let mut left = 1;
    for _ in 0..200 {
        left = ask_json("list", &socket)["sessions"]
            .as_array()
            .unwrap()
            .len();
        if left == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(left, 0, "the closed session is still listed");
}

#[test]
fn stop_drains_then_the_relay_exits_0_and_its_private_socket_goes_away() {
    let scratch = Scratch::new("ctl-stop");
    let echo = Backend::echo();
    let socket = scratch.path("ctl.sock");
    let sock = socket.to_str().unwrap();
    let mut relay = RelayProcess::start(&["--forward", &echo.addr.to_string(), "--control", sock]);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");

    // Another relay on the same socket path is refused, and this one is untouched.
    let second = deskrelay(&["proxy", "--bind", "127.0.0.1:0", "--control", sock]);
    assert!(!second.status.success());
    assert!(
        text(&second).contains(&format!(
            "another deskrelay is running with control socket {sock}"
        )),
        "{}",
        text(&second)
    );
    assert_eq!(ask_json("info", &socket)["pid"], relay.pid());

    let mut s = relay.connect();
    s.write_all(b"before stop").unwrap();
    let mut buf = [0u8; 11];
    s.read_exact(&mut buf).unwrap();

    let out = deskrelay(&["stop", "--control", sock]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("1 open session(s)"), "{}", text(&out));
    // Draining: the open session still works, and the relay waits for it.
    s.write_all(b"after stop!").unwrap();
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"after stop!");
    assert!(relay.wait_exit(Duration::from_millis(300)).is_none());
    drop(s);
    let status = relay
        .wait_exit(Duration::from_secs(10))
        .expect("exits once drained");
    assert!(status.success(), "{status:?}: {}", relay.stderr());
    assert!(!socket.exists(), "the socket file is removed at exit");

    // Nobody listening now: a clear error and a failure status.
    let out = deskrelay(&["info", "--control", sock]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains(&format!(
            "no deskrelay is running with control socket {sock}"
        )),
        "{}",
        text(&out)
    );
}

#[test]
fn a_stale_socket_from_a_killed_relay_is_replaced() {
    let scratch = Scratch::new("ctl-stale");
    let echo = Backend::echo();
    let socket = scratch.path("ctl.sock");
    let sock = socket.to_str().unwrap();
    let first = RelayProcess::start(&["--forward", &echo.addr.to_string(), "--control", sock]);
    drop(first); // SIGKILL: no clean-up, the socket file stays.
    assert!(socket.exists());
    let second = RelayProcess::start(&["--forward", &echo.addr.to_string(), "--control", sock]);
    assert_eq!(ask_json("info", &socket)["pid"], second.pid());
}
