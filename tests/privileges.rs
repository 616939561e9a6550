//! `--user` / `--group`: the relay binds as root, then serves as the unprivileged user.

mod common;

use std::io::{Read, Write};

use common::{Backend, RelayProcess};

/// The real and effective uid and gid of a process, from /proc.
fn ids(pid: i32) -> (String, String) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap()
            .split_whitespace()
            .skip(1)
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    (field("Uid:"), field("Gid:"))
}

#[test]
fn the_relay_serves_as_the_user_it_was_told_to_become() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        // Not root: there is nothing to drop, and setuid would fail. The test setup runs as
        // root in CI; say so rather than pass silently.
        eprintln!("skipped: needs root to drop privileges");
        return;
    }
    let echo = Backend::echo();
    let relay = RelayProcess::start(&[
        "--forward",
        &echo.addr.to_string(),
        "--user",
        "65534",
        "--group",
        "65534",
    ]);
    assert_eq!(
        ids(relay.pid()),
        ("65534 65534".into(), "65534 65534".into())
    );
    // And it still relays.
    let mut s = relay.connect();
    s.write_all(b"ping").unwrap();
    let mut back = [0u8; 4];
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ping");
}

#[test]
fn an_unknown_user_stops_the_start_with_a_clear_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_deskrelay"))
        .args([
            "proxy",
            "--bind",
            "127.0.0.1:0",
            "--user",
            "no-such-user-here",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no user \"no-such-user-here\""), "{err}");
}
