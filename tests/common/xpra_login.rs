//! A scripted xpra 3.1.3 login (hello, challenge, answer) and a session server that answers
//! hellos, for tests that need an authenticated xpra session without a real xpra.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use bytes::BytesMut;
use deskrelay::xpra::auth::{answer, Transport};
use deskrelay::xpra::{encode_frame, Compression, Encoding, FrameDecoder, Limits, Packet, Value};

/// A client hello asking for a challenge.
pub fn hello(user: &str) -> Value {
    let digests = Value::List(vec![Value::str("hmac+sha512"), Value::str("hmac+sha256")]);
    let mut caps = Value::Dict(vec![]);
    caps.insert("version", Value::str("3.1.3"));
    caps.insert("username", Value::str(user));
    caps.insert("challenge", Value::Bool(true));
    caps.insert("digest", digests.clone());
    caps.insert("salt-digest", digests);
    caps
}

/// One packet as a frame.
pub fn frame(items: Vec<Value>) -> Vec<u8> {
    encode_frame(&Packet::new(items), Encoding::Rencode, Compression::None).unwrap()
}

/// Writes one packet.
pub fn send(s: &mut TcpStream, items: Vec<Value>) {
    s.write_all(&frame(items)).unwrap();
}

/// Reads one packet (None when the stream ends first).
pub fn read_packet(s: &mut TcpStream) -> Option<Vec<Value>> {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut dec = FrameDecoder::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 1];
    // A byte at a time: nothing past the packet is consumed.
    loop {
        if let Some(d) = dec.decode(&mut buf).expect("valid frames") {
            return Some(d.packet.items);
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A login through the relay at `relay`: the stream, the packet that ended the handshake
/// (`hello` or `disconnect`), and the challenge response that was sent.
pub fn login(relay: SocketAddr, user: &str, password: &str) -> (TcpStream, Vec<Value>, String) {
    let mut s = super::connect(relay);
    s.write_all(&frame(vec![Value::str("hello"), hello(user)]))
        .unwrap();
    let challenge = read_packet(&mut s).expect("a challenge");
    assert_eq!(challenge[0].as_str(), Some("challenge"), "{challenge:?}");
    let mut second = hello(user);
    answer(&challenge, password.as_bytes(), Transport::Loopback)
        .expect("a digest we know")
        .apply(&mut second);
    let response = second
        .get("challenge_response")
        .and_then(Value::as_str)
        .expect("an hmac response")
        .to_string();
    s.write_all(&frame(vec![Value::str("hello"), second]))
        .unwrap();
    let end = read_packet(&mut s).expect("an answer");
    (s, end, response)
}

/// One frame of `len` payload bytes there and back through an authenticated session (the
/// echo session server behind it), byte for byte.
#[allow(dead_code)]
pub fn echo_frame(s: &mut TcpStream, round: u32, len: u32) -> Result<(), String> {
    let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8 ^ round as u8).collect();
    let sent = frame(vec![Value::str("test-data"), Value::Bytes(payload)]);
    s.write_all(&sent)
        .map_err(|e| format!("round {round}: {e}"))?;
    let mut back = vec![0u8; sent.len()];
    s.read_exact(&mut back)
        .map_err(|e| format!("round {round}: {e}"))?;
    if back != sent {
        return Err(format!("round {round}: the echoed frame differs"));
    }
    Ok(())
}

/// [`echo_frame`] of 8 KiB, failing the test on any difference.
#[allow(dead_code)]
pub fn still_relays(s: &mut TcpStream, round: u8) {
    echo_frame(s, round.into(), 8192).unwrap_or_else(|e| panic!("{e}"));
}

/// Logs in as `user` on `s` (hello, then the answer to a challenge if one comes) and
/// returns the packet that ends the handshake (`hello`, or a `disconnect` before or after
/// the challenge) as strings, `-` for items that are not.
#[allow(dead_code)]
pub fn login_outcome(s: &mut TcpStream, user: &str, password: &str, via: Transport) -> Vec<String> {
    send(s, vec![Value::str("hello"), hello(user)]);
    let first = read_packet(s).expect("a challenge or a disconnect");
    let last = if first[0].as_str() == Some("challenge") {
        let mut second = hello(user);
        answer(&first, password.as_bytes(), via)
            .expect("a digest we know")
            .apply(&mut second);
        send(s, vec![Value::str("hello"), second]);
        read_packet(s).expect("an answer")
    } else {
        first
    };
    last.iter()
        .map(|v| v.as_str().unwrap_or("-").to_string())
        .collect()
}

/// A session server: answers the hello with a hello, then echoes every byte.
pub fn echo_session_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                if read_packet(&mut s).is_none() {
                    return;
                }
                let reply = frame(vec![Value::str("hello"), Value::Dict(vec![])]);
                if s.write_all(&reply).is_err() {
                    return;
                }
                let mut buf = [0u8; 16384];
                while let Ok(n @ 1..) = s.read(&mut buf) {
                    if s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A multifile with one user, mode 0600.
pub fn write_users(path: &std::path::Path, user: &str, password: &str, session: SocketAddr) {
    std::fs::write(
        path,
        format!("{user}|{password}|1000|1000|tcp://{session}/||\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}
