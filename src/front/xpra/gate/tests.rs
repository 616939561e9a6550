//! The gate's contract: every byte of unwatched frames comes out unchanged and in order,
//! whatever the read boundaries; watched frames come out whole and typed.

use super::*;
use crate::xpra::header::{Compression, Encoding};
use crate::xpra::packet::{encode_frame, Packet};
use crate::xpra::Value;

pub(super) const WATCH: &[&str] = &["disconnect", "info-response"];

pub(super) fn frame(kind: &str, filler: usize, enc: Encoding, comp: Compression) -> Vec<u8> {
    encode_frame(
        &Packet {
            items: vec![
                Value::str(kind),
                Value::Bytes(vec![7u8; filler]),
                Value::Int(1),
            ],
        },
        enc,
        comp,
    )
    .expect("encodable")
}

pub(super) fn raw_chunk(index: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![b'P', 0, 0, index];
    f.extend_from_slice(&(body.len() as u32).to_be_bytes());
    f.extend_from_slice(body);
    f
}

/// What a gate let out: passed bytes (watched frames included, in order), watched kinds,
/// and the bytes it left unread at the end.
pub(super) type Fed = (Vec<u8>, Vec<String>, Vec<u8>);

/// Feeds `pieces` the way the forwarder does (unconsumed bytes carried in front of the next
/// piece), or returns the first error.
pub(super) fn feed_pieces<'a>(
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Fed, ProtocolError> {
    let mut gate = Gate::new(WATCH, 1 << 20);
    let (mut out, mut kinds, mut carry) = (Vec::new(), Vec::new(), Vec::new());
    let mut steps = Vec::new();
    for piece in pieces {
        carry.extend_from_slice(piece);
        steps.clear();
        let done = gate.feed(&carry, &mut steps)?;
        for s in &steps {
            match s {
                Step::Pass(r) => out.extend_from_slice(&carry[r.clone()]),
                Step::Watched { kind, frame } => {
                    kinds.push(kind.clone());
                    out.extend_from_slice(&carry[frame.clone()]);
                }
            }
        }
        carry.drain(..done);
    }
    Ok((out, kinds, carry))
}

/// Feeds `stream` in reads of `step` bytes; returns passed bytes and watched kinds in order.
fn run(stream: &[u8], step: usize) -> (Vec<u8>, Vec<String>) {
    let (out, kinds, carry) = feed_pieces(stream.chunks(step)).expect("valid stream");
    assert!(carry.is_empty(), "a complete stream leaves nothing behind");
    (out, kinds)
}

fn mixed_stream() -> Vec<u8> {
    let mut s = Vec::new();
    s.extend(frame("draw", 300, Encoding::Rencode, Compression::None));
    s.extend(raw_chunk(1, b"disconnect-looking pixels"));
    s.extend(frame(
        "draw",
        70_000,
        Encoding::Rencode,
        Compression::Zlib(1),
    ));
    s.extend(frame(
        "info-response",
        5_000,
        Encoding::Rencode,
        Compression::Lz4(1),
    ));
    s.extend(frame("ping", 0, Encoding::Bencode, Compression::None));
    s.extend(frame(
        "disconnect",
        10,
        Encoding::Rencode,
        Compression::Zlib(3),
    ));
    s
}

#[test]
fn every_byte_passes_in_order_at_any_read_boundary() {
    let stream = mixed_stream();
    for step in [1, 2, 7, 8, 9, 100, 4096, 65_536, stream.len()] {
        let (out, kinds) = run(&stream, step);
        assert_eq!(out, stream, "read size {step}");
        assert_eq!(kinds, ["info-response", "disconnect"], "read size {step}");
    }
}

#[test]
fn raw_chunks_are_never_opened() {
    let stream = raw_chunk(
        2,
        &frame("disconnect", 0, Encoding::Rencode, Compression::None),
    );
    let (out, kinds) = run(&stream, 3);
    assert_eq!(out, stream);
    assert!(kinds.is_empty());
}

#[test]
fn an_oversized_frame_is_refused_from_its_header_alone() {
    let mut gate = Gate::new(WATCH, 1024);
    let header = [b'P', 1, 0, 0, 0, 0, 0x10, 0x01];
    let err = gate.feed(&header, &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("too large"), "{err}");
}

#[test]
fn garbage_is_a_protocol_error() {
    let mut gate = Gate::new(WATCH, 1024);
    assert!(gate.feed(b"GET / HTTP/1.1\r\n", &mut Vec::new()).is_err());
}

/// A watched frame of `size` payload bytes whose type is in its first compressed bytes and
/// the rest of which decompresses to nothing: zlib (a stored block holding the packet
/// head, then empty stored blocks) or lz4 (one sequence, then literal-length bytes that
/// never end). Found by the `xpra_gate` fuzz target: gathering such a frame used to walk
/// the whole prefix received at every read, quadratic in the frame size.
fn inflates_to_nothing(lz4: bool, size: usize) -> Vec<u8> {
    let head = b"\xc2\x8adisconnect";
    let mut payload = Vec::with_capacity(size);
    if lz4 {
        payload.extend_from_slice(&(size as u32 * 4).to_le_bytes());
        payload.push(0xc0); // 12 literals, a match of 4
        payload.extend_from_slice(head);
        payload.extend_from_slice(&[1, 0, 0xf0]);
        payload.resize(size, 0xff);
    } else {
        payload.extend_from_slice(&[0x78, 0x01, 0x00, 12, 0, !12, 0xff]);
        payload.extend_from_slice(head);
        while payload.len() + 5 <= size {
            payload.extend_from_slice(&[0, 0, 0, 0xff, 0xff]);
        }
        payload.resize(size, 0);
    }
    let mut f = vec![b'P', 1, if lz4 { 0x11 } else { 1 }, 0];
    f.extend_from_slice(&(size as u32).to_be_bytes());
    f.extend(payload);
    f
}

#[test]
fn a_watched_frame_is_typed_once_however_slowly_it_arrives() {
    for lz4 in [false, true] {
        let frame = inflates_to_nothing(lz4, 1 << 20);
        let mut gate = Gate::new(WATCH, 16 << 20);
        let (mut carry, mut steps) = (Vec::new(), Vec::new());
        for chunk in frame.chunks(1024) {
            carry.extend_from_slice(chunk);
            let done = gate.feed(&carry, &mut steps).expect("a valid frame");
            carry.drain(..done);
        }
        assert!(carry.is_empty());
        let whole = Step::Watched {
            kind: "disconnect".into(),
            frame: 0..frame.len(),
        };
        assert_eq!(steps, [whole], "lz4: {lz4}");
        assert!(gate.peeked() <= PEEK_MAX as u64, "peeked {}", gate.peeked());
    }
}

/// A compressed frame that is corrupt after the bytes that give its type is typed the same
/// whether it arrives whole or a byte at a time. (Found by the `xpra_gate` fuzz target: the
/// lz4 prefix walker refused the whole payload at its bad match but typed a cut one, so a
/// slow peer's frame was stopped as `disconnect` and the same frame read at once passed.)
#[test]
fn a_frame_corrupt_past_its_type_is_typed_alike_at_any_read_boundary() {
    let mut payload = 64u32.to_le_bytes().to_vec();
    payload.push(0xc0); // 12 literals, then a match of 4
    payload.extend_from_slice(b"\xc2\x8adisconnect");
    payload.extend_from_slice(&[0xff, 0x7f]); // offset 32767: before the start
    payload.extend_from_slice(&[0u8; 20]);
    let mut frame = vec![b'P', 1, 0x11, 0];
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend(payload);
    let whole = run(&frame, frame.len());
    assert_eq!(run(&frame, 1), whole, "byte by byte");
    assert_eq!(run(&frame, 17), whole, "in reads of 17");
    assert_eq!(
        whole.1,
        ["disconnect"],
        "typed by the bytes that give its type"
    );
}
