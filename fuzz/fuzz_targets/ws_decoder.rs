//! `ws_decoder`: the server-side WebSocket frame decoder (`front::ws::ServerDecoder`) on
//! what a browser sends after the `101`, and the payload unmasking under it.
//!
//! Input: frame-size limit selector, cut point (2 bytes), read size, mask offset, then the
//! stream.
//!
//! Guards:
//! - never panics, whatever the bytes and the limit;
//! - read boundaries change nothing: fed whole, cut in two anywhere, or in small reads
//!   (unconsumed bytes carried to the front of the next read, as `WsStream` does),
//!   `decode_in_place` yields the same payload bytes, pings, pongs, close and error; so
//!   does `decode` on a `BytesMut`;
//! - bytes it did not consume are left untouched (they are fed again, still masked), and
//!   what it holds back is at most one header or one control frame (`MIN_BUFFER`);
//! - steps are in order, inside what was consumed, control payloads at most 125 bytes,
//!   close reasons UTF-8;
//! - `apply_mask` at any offset equals a byte-at-a-time XOR, and undoes itself.
#![no_main]

use bytes::BytesMut;
use deskrelay::front::ws::{
    apply_mask, Event, ServerDecoder, Step, WsError, MAX_CONTROL_PAYLOAD, MIN_BUFFER,
};
use deskrelay_fuzz::{read_patterns, Input};
use libfuzzer_sys::fuzz_target;

const LIMITS: [u64; 8] = [0, 1, 125, 126, 65535, 65536, 1 << 20, u64::MAX];

/// What a relay does with the client's frames, boundaries of data pieces erased.
#[derive(Debug, PartialEq, Eq)]
enum Ev {
    Data(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, Vec<u8>),
}

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    events: Vec<Ev>,
    /// The bytes held back at the end, or the error.
    end: Result<Vec<u8>, WsError>,
}

fn push(events: &mut Vec<Ev>, ev: Ev) {
    if let (Some(Ev::Data(a)), Ev::Data(b)) = (events.last_mut(), &ev) {
        a.extend_from_slice(b);
        return;
    }
    if !matches!(&ev, Ev::Data(b) if b.is_empty()) {
        events.push(ev);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let limit = input.pick(&LIMITS);
    let cut = input.u16();
    let step = input.byte();
    let offset = u64::from(input.byte());
    let stream = input.rest();

    check_mask(stream, offset);

    let [whole, cut_in_two, small_reads] = read_patterns(stream, cut, step);
    let one_shot = in_place(&whole, limit);
    for reads in [cut_in_two, small_reads] {
        assert_eq!(in_place(&reads, limit), one_shot, "{} reads", reads.len());
    }
    assert_eq!(split_off(stream, limit), one_shot, "decode on a BytesMut");
});

/// `decode_in_place` fed read by read, the rest of each carried over.
fn in_place(reads: &[&[u8]], limit: u64) -> Outcome {
    let mut dec = ServerDecoder::new(limit);
    let mut events = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut steps = Vec::new();
    for read in reads {
        buf.extend_from_slice(read);
        let before = buf.clone();
        steps.clear();
        let r = dec.decode_in_place(&mut buf, &mut steps);
        let mut next = 0;
        for s in &steps {
            let (start, ev) = match s {
                Step::Data(r) => (r.start, Ev::Data(buf[r.clone()].to_vec())),
                Step::Ping(r) => (r.start, Ev::Ping(buf[r.clone()].to_vec())),
                Step::Pong(r) => (r.start, Ev::Pong(buf[r.clone()].to_vec())),
                Step::Close { code, reason } => {
                    let text = &buf[reason.clone()];
                    assert!(std::str::from_utf8(text).is_ok(), "close reason is UTF-8");
                    (reason.start, Ev::Close(code.map(u16::from), text.to_vec()))
                }
            };
            assert!(start >= next, "steps in order");
            if let Ev::Ping(p) | Ev::Pong(p) = &ev {
                assert!(p.len() <= MAX_CONTROL_PAYLOAD);
            }
            next = match s {
                Step::Data(r) | Step::Ping(r) | Step::Pong(r) => r.end,
                Step::Close { reason, .. } => reason.end,
            };
            push(&mut events, ev);
        }
        let done = match r {
            Ok(done) => done,
            Err(e) => {
                return Outcome {
                    events,
                    end: Err(e),
                }
            }
        };
        assert!(next <= done && done <= buf.len());
        assert_eq!(
            &buf[done..],
            &before[done..],
            "unconsumed bytes left as they were"
        );
        buf.drain(..done);
        assert!(buf.len() < MIN_BUFFER, "held back {} bytes", buf.len());
    }
    Outcome {
        events,
        end: Ok(buf),
    }
}

/// `decode` on one `BytesMut` holding the whole stream.
fn split_off(stream: &[u8], limit: u64) -> Outcome {
    let mut dec = ServerDecoder::new(limit);
    let mut buf = BytesMut::from(stream);
    let mut events = Vec::new();
    loop {
        match dec.decode(&mut buf) {
            Ok(Some(ev)) => push(
                &mut events,
                match ev {
                    Event::Data(b) => Ev::Data(b.to_vec()),
                    Event::Ping(b) => Ev::Ping(b.to_vec()),
                    Event::Pong(b) => Ev::Pong(b.to_vec()),
                    Event::Close(None) => Ev::Close(None, Vec::new()),
                    Event::Close(Some(f)) => {
                        Ev::Close(Some(f.code.into()), f.reason.as_bytes().to_vec())
                    }
                },
            ),
            Ok(None) => {
                return Outcome {
                    events,
                    end: Ok(buf.to_vec()),
                }
            }
            Err(e) => {
                return Outcome {
                    events,
                    end: Err(e),
                }
            }
        }
    }
}

/// The block-wise mask against the definition (RFC 6455 §5.3).
fn check_mask(data: &[u8], offset: u64) {
    let key = match data {
        [a, b, c, d, ..] => [*a, *b, *c, *d],
        _ => [0x6d, 0xb6, 0xb2, 0x80],
    };
    let mut fast = data.to_vec();
    apply_mask(&mut fast, key, offset);
    for (i, (f, d)) in fast.iter().zip(data).enumerate() {
        let k = key[((offset + i as u64) % 4) as usize];
        assert_eq!(*f, d ^ k, "byte {i} at offset {offset}");
    }
    apply_mask(&mut fast, key, offset);
    assert_eq!(fast, data);
}
