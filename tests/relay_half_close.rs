//! Half-close passes through: the client's FIN reaches the backend, which still answers.

mod common;
use common::{Backend, RelayProcess};
use std::io::{Read, Write};
use std::net::Shutdown;

const REPLY_LEN: usize = 3 * 1024 * 1024;

fn request_then_reply_after_eof(data_path: &str) {
    // The backend answers only after it has read the whole request, i.e. after EOF.
    let backend = Backend::start(|mut s| {
        let mut request = Vec::new();
        s.read_to_end(&mut request).unwrap();
        let reply: Vec<u8> = (0..REPLY_LEN)
            .map(|i| (i % 251) as u8 ^ request.len() as u8)
            .collect();
        s.write_all(&reply).unwrap();
    });
    let relay = RelayProcess::start(&[
        "--data-path",
        data_path,
        "--forward",
        &backend.addr.to_string(),
    ]);
    let mut c = relay.connect();
    c.write_all(b"seventeen bytes!!").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    c.read_to_end(&mut reply).expect("reply, then EOF");
    assert_eq!(reply.len(), REPLY_LEN);
    assert!(reply
        .iter()
        .enumerate()
        .all(|(i, &b)| b == (i % 251) as u8 ^ 17));
}

#[test]
fn client_eof_reaches_backend_and_its_reply_still_arrives_copy() {
    request_then_reply_after_eof("copy");
}

#[test]
fn client_eof_reaches_backend_and_its_reply_still_arrives_splice() {
    request_then_reply_after_eof("splice");
}

#[test]
fn client_eof_reaches_backend_and_its_reply_still_arrives_auto() {
    request_then_reply_after_eof("auto");
}
