//! The real xpra 3.1.3 peers the relay tests use, talking to each other directly (no relay):
//! proof that the harness works, and a record of how the real client and server behave, which
//! is what the relay has to reproduce. Run with `--nocapture` to see the timings.

mod common;
use common::xpra::{
    parse_tree_line, wait_untagged, xpra_info, Compression, Dir, FakeServer, FrameTap, HeaderTrap,
    PacketType, ServerOpts, XpraClient, XpraServer, STARTUP,
};
use std::time::Duration;

/// Asserts that no process started under any of `tags` is still alive.
fn assert_no_leftovers(tags: &[String]) {
    for tag in tags {
        let left = wait_untagged(tag, Duration::from_secs(20));
        assert!(left.is_empty(), "processes left behind by {tag}: {left:?}");
    }
}

/// Waits until `w` shows more than two colours (the client painted the clock face).
fn wait_painted(client: &XpraClient, name: &str) -> usize {
    let mut colours = 0;
    let deadline = std::time::Instant::now() + STARTUP;
    while std::time::Instant::now() < deadline {
        let w = client.find_window(name).unwrap().expect("window vanished");
        colours = client.window_colours(&w).unwrap();
        if colours > 2 {
            return colours;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{name} never painted: {colours} colour(s)");
}

#[test]
fn client_attaches_directly_and_shows_the_xclock_window() {
    let server = XpraServer::start(ServerOpts::default());
    let client = XpraClient::attach(&server.uri(), None, &[]);
    let took = client.wait_for_window("xclock", STARTUP).unwrap();
    println!("direct attach -> xclock window mapped: {took:?}");
    let colours = wait_painted(&client, "xclock");
    println!("xclock window shows {colours} colours");
    let out = client.output();
    assert!(out.contains("Attached to tcp://127.0.0.1:"), "{out}");
    // A window that never comes is reported at the deadline, with the client's output.
    let missing = client
        .wait_for_window("no-such-window", Duration::from_secs(2))
        .unwrap_err();
    assert!(
        missing.contains("no \"no-such-window\" window"),
        "{missing}"
    );

    let mut tags = vec![server.tag().to_string()];
    tags.extend(client.tags());
    drop(client);
    drop(server);
    assert_no_leftovers(&tags);
}

#[test]
fn password_server_lets_the_right_password_in_and_refuses_a_wrong_or_missing_one() {
    let server = XpraServer::start(ServerOpts::with_password("s3cret-pw"));
    let uri = common::xpra::tcp_uri(server.addr(), Some("alice"));
    let mut tags = vec![server.tag().to_string()];

    // A wrong password: the server answers the hmac+sha512 challenge response with
    // ["disconnect", "authentication failed"] about a second later, and the client prints
    //   Connection Failed: disconnected before the session could be established
    //    authentication failed
    //   Warning: server connection failure:
    //    disconnected before the session could be established
    //    authentication failed
    // and exits with 18 (EXIT_CONNECTION_FAILED).
    let mut wrong = XpraClient::attach(&uri, Some("not-it"), &[]);
    let (code, out) = wrong.wait_exit(STARTUP).unwrap();
    assert_eq!(code, 18, "{out}");
    assert!(
        out.contains("Connection Failed: disconnected before the session could be established\n")
            && out.contains(" authentication failed\n"),
        "{out}"
    );
    assert!(
        server.wait_for_log(
            "Warning: hmac+sha512 challenge for 'alice' does not match",
            Duration::from_secs(10)
        ),
        "{}",
        server.log()
    );
    tags.extend(wrong.tags());
    drop(wrong);

    // No password and no way to ask for one (the harness leaves out the `prompt` challenge
    // handler): "Warning: failed to connect, authentication required", exit 3
    // (EXIT_PASSWORD_REQUIRED). With the default handlers the client would instead wait for
    // someone to type the password into a dialog.
    let mut missing = XpraClient::attach(&uri, None, &[]);
    let (code, out) = missing.wait_exit(STARTUP).unwrap();
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("Warning: failed to connect, authentication required"),
        "{out}"
    );
    tags.extend(missing.tags());
    drop(missing);

    let right = XpraClient::attach(&uri, Some("s3cret-pw"), &[]);
    let took = right.wait_for_window("xclock", STARTUP).unwrap();
    println!("attach with password -> xclock window mapped: {took:?}");
    tags.extend(right.tags());
    drop(right);
    drop(server);
    assert_no_leftovers(&tags);
}

#[test]
fn the_client_hello_is_zlib_level_1_with_or_without_lz4() {
    // xpra 3.1.3 sends its hello with the first enabled compressor in its *compatibility*
    // order (zlib, lz4, lzo, brotli), so python3-lz4 does not change the first frame: it is
    // rencode (0x01), zlib level 1 (0x01), packet (index 0). lz4 only comes into use after
    // the peer's hello (see the next test).
    for lz4 in [true, false] {
        let trap = HeaderTrap::start();
        let uri = common::xpra::tcp_uri(trap.addr, None);
        let client = if lz4 {
            XpraClient::attach(&uri, None, &[])
        } else {
            XpraClient::attach_without_lz4(&uri, None, &[])
        };
        let b = trap.first_bytes(STARTUP).unwrap();
        println!("first 8 bytes of the client (lz4 available: {lz4}): {b:02x?}");
        assert_eq!(b[..4], [b'P', 0x01, 0x01, 0x00], "lz4={lz4}");
        assert!(u32::from_be_bytes(b[4..].try_into().unwrap()) > 1000);
        drop(client);
    }

    // The trap does see the compressor when it changes: a client limited to lz4 sends 0x11.
    let trap = HeaderTrap::start();
    let uri = common::xpra::tcp_uri(trap.addr, None);
    let _client = XpraClient::attach(&uri, None, &["--compressors=lz4"]);
    let b = trap.first_bytes(STARTUP).unwrap();
    assert_eq!(b[..4], [b'P', 0x01, 0x11, 0x00]);
}

#[test]
fn lz4_is_negotiated_in_the_hellos_and_hidden_lz4_leaves_zlib() {
    // The server picks its compressor from the client's hello, in *performance* order (lz4
    // first): its own hello comes back lz4 when the client offers lz4, zlib when it cannot.
    let server = XpraServer::start(ServerOpts::default());
    for lz4 in [true, false] {
        let tap = FrameTap::start(server.addr());
        let uri = common::xpra::tcp_uri(tap.addr, None);
        let client = if lz4 {
            XpraClient::attach(&uri, None, &[])
        } else {
            XpraClient::attach_without_lz4(&uri, None, &[])
        };
        client.wait_for_window("xclock", STARTUP).unwrap();
        drop(client);
        let frames = tap.frames();
        let first = |dir| frames.iter().find(|f| f.dir == dir).unwrap();
        let hello_out = first(Dir::ClientToServer);
        let hello_back = first(Dir::ServerToClient);
        println!(
            "lz4 available: {lz4}; client hello {:?} {:?}; server hello {:?} {:?}",
            hello_out.packet_type,
            hello_out.header.compression(),
            hello_back.packet_type,
            hello_back.header.compression()
        );
        assert_eq!(
            hello_out.packet_type,
            Some(PacketType::Name("hello".into()))
        );
        assert_eq!(hello_out.header.compression(), Compression::Zlib(1));
        // The server already names its hello by the number the client's hello assigned to
        // "hello" in its `aliases` map (1 for 3.1.3); every later packet both ways is aliased.
        assert_eq!(hello_back.packet_type, Some(PacketType::Alias(1)));
        let compressed: Vec<Compression> = frames
            .iter()
            .map(|f| f.header.compression())
            .filter(|c| *c != Compression::None)
            .collect();
        if lz4 {
            assert!(matches!(
                hello_back.header.compression(),
                Compression::Lz4(_)
            ));
        } else {
            assert!(matches!(
                hello_back.header.compression(),
                Compression::Zlib(_)
            ));
            assert!(
                compressed.iter().all(|c| matches!(c, Compression::Zlib(_))),
                "{compressed:?}"
            );
        }
    }
}

#[test]
fn xpra_info_lists_the_server_keys() {
    let server = XpraServer::start(ServerOpts::with_password("info-pw"));
    let lines = xpra_info(&server.uri(), server.password()).unwrap();
    println!("xpra info: {} lines, e.g. {:?}", lines.len(), &lines[..3]);
    for key in ["child.command=", "server.mode=", "display.", "network."] {
        assert!(
            lines.iter().any(|l| l.starts_with(key)),
            "no {key} in xpra info: {lines:?}"
        );
    }
    let refused = xpra_info(&server.uri(), Some("wrong")).unwrap_err();
    assert!(refused.contains("authentication failed"), "{refused}");
}

#[test]
fn a_disconnect_before_the_session_is_printed_and_exits_18() {
    // What a proxy sends when the user has no session. The client prints
    //   Connection Failed: disconnected before the session could be established
    //    no sessions found
    //   Warning: server connection failure:
    //    disconnected before the session could be established
    //    no sessions found
    // and exits with 18 (EXIT_CONNECTION_FAILED).
    let fake = FakeServer::reply_with(&["disconnect", "no sessions found"]);
    let mut client = XpraClient::attach(&common::xpra::tcp_uri(fake.addr, None), None, &[]);
    let hello = fake.hello_header(STARTUP).unwrap();
    assert_eq!(
        (hello.flags, hello.compression, hello.index),
        (0x01, 0x01, 0)
    );
    let (code, out) = client.wait_exit(STARTUP).unwrap();
    assert_eq!(code, 18, "{out}");
    assert!(
        out.contains("Connection Failed: disconnected before the session could be established\n")
            && out.contains("Warning: server connection failure:\n")
            && out.contains(" no sessions found\n"),
        "{out}"
    );
}

#[test]
fn stopping_the_server_disconnects_an_attached_client() {
    let server = XpraServer::start(ServerOpts::default());
    let mut client = XpraClient::attach(&server.uri(), None, &[]);
    client.wait_for_window("xclock", STARTUP).unwrap();
    let mut tags = vec![server.tag().to_string()];
    tags.extend(client.tags());
    let server_code = server.stop();
    let (code, out) = client.wait_exit(STARTUP).unwrap();
    println!("server exit {server_code}; client exit {code}");
    assert!(
        out.contains("Xpra Session Disconnected: server shutdown\n"),
        "{out}"
    );
    // SIGTERM: the server exits with 143 after sending ["disconnect", "server shutdown"];
    // the client prints
    //   Xpra Session Disconnected: server shutdown
    //   server requested disconnect:
    //    server shutdown
    // and exits with 0 (a shutdown is not an error for xpra).
    assert!(
        out.contains("server requested disconnect:\n") && out.contains(" server shutdown\n"),
        "{out}"
    );
    assert_eq!(code, 0, "{out}");
    drop(client);
    assert_no_leftovers(&tags);
}

#[test]
#[should_panic(expected = "xpra server did not start")]
fn a_server_that_cannot_start_fails_the_test_with_its_log() {
    XpraServer::start(ServerOpts {
        extra_args: vec!["--no-such-option".into()],
        ..ServerOpts::default()
    });
}

#[test]
fn xwininfo_tree_lines_parse() {
    let w =
        parse_tree_line(r#"     0x20000a "xclock on vm": ("xclock" "XClock")  164x164+0+0  +0+0"#)
            .unwrap();
    assert_eq!(w.id, "0x20000a");
    assert_eq!(w.title, "xclock on vm");
    assert_eq!(w.class, Some(("xclock".into(), "XClock".into())));
    assert_eq!((w.width, w.height), (164, 164));
    let w = parse_tree_line("  0x20000f (has no name): ()  1x1+-1+-1  +-1+-1").unwrap();
    assert_eq!((w.title.as_str(), w.class, w.width), ("", None, 1));
    let w = parse_tree_line(r#"0x200001 "xpra": ("xpra" "")  10x10+10+10  +10+10"#).unwrap();
    assert_eq!(w.class, Some(("xpra".into(), "".into())));
    assert!(parse_tree_line("xwininfo: Window id: 0x50d (the root window)").is_none());
}
