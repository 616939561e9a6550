//! `xpra_gate`: the frame gate that walks each direction of an authenticated xpra session
//! (`front::xpra::gate::Gate`), passing frames through and stopping the few it acts on.
//!
//! Input: limit selector, cut point (2 bytes), read size, then the stream.
//!
//! Guards:
//! - never panics, whatever the bytes and the limit;
//! - read boundaries change nothing: fed whole, cut in two anywhere, or in small reads (the
//!   unconsumed rest carried in front of the next read, as the forwarder does), the gate
//!   lets through the same bytes, stops the same frames and fails with the same error;
//! - it forwards the stream's own bytes, in order, none twice, none altered: what passes
//!   and what is stopped, end to end, is the start of the stream, and the bytes it asks to
//!   see again are the rest;
//! - it holds back at most a header plus `PEEK_MAX` payload bytes of a frame it does not
//!   watch, so the forwarder's buffer is bounded;
//! - a stopped frame is one whole main frame of a watched type; when the full decoder
//!   reads it, it reads the same type.
#![no_main]

use bytes::BytesMut;
use deskrelay::front::xpra::gate::{Gate, Step, PEEK_MAX};
use deskrelay::xpra::{FrameDecoder, Header, Limits, ProtocolError, HEADER_LEN};
use deskrelay_fuzz::{read_patterns, Input};
use libfuzzer_sys::fuzz_target;

/// Both directions' watch lists (the session's FROM_CLIENT and FROM_SERVER).
const WATCHED: &[&str] = &["disconnect", "hello", "info-response"];
const LIMITS: [usize; 6] = [1, 64, 1000, 5000, 1 << 20, 16 << 20];

/// What came out: stretches of bytes, passed or stopped, in order.
#[derive(Debug, PartialEq, Eq)]
enum Out {
    Pass(Vec<u8>),
    Watched(String, Vec<u8>),
}

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    out: Vec<Out>,
    /// The bytes not dealt with, or the error.
    end: Result<Vec<u8>, ProtocolError>,
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let max = input.pick(&LIMITS);
    let cut = input.u16();
    let step = input.byte();
    let stream = input.rest();

    let [whole, cut_in_two, small_reads] = read_patterns(stream, cut, step);
    let one_shot = run(&whole, max);
    for reads in [cut_in_two, small_reads] {
        assert_eq!(run(&reads, max), one_shot, "{} reads", reads.len());
    }

    let mut pos = 0;
    for o in &one_shot.out {
        let bytes = match o {
            Out::Pass(b) => b,
            Out::Watched(kind, frame) => {
                check_watched(kind, frame, max);
                frame
            }
        };
        assert_eq!(&stream[pos..pos + bytes.len()], &bytes[..]);
        pos += bytes.len();
    }
    if let Ok(left) = &one_shot.end {
        assert_eq!(&stream[pos..], &left[..]);
    }
});

/// Feeds `reads` as the forwarder does: each read appended to what the gate left unread.
fn run(reads: &[&[u8]], max: usize) -> Outcome {
    let mut gate = Gate::new(WATCHED, max);
    let mut out: Vec<Out> = Vec::new();
    let mut carry: Vec<u8> = Vec::new();
    let mut steps = Vec::new();
    for read in reads {
        carry.extend_from_slice(read);
        steps.clear();
        let r = gate.feed(&carry, &mut steps);
        // Steps pushed before an error are still in order and valid.
        let mut next = 0;
        for s in &steps {
            match s {
                Step::Pass(range) => {
                    assert_eq!(range.start, next, "steps are contiguous");
                    assert!(!range.is_empty());
                    match out.last_mut() {
                        Some(Out::Pass(b)) => b.extend_from_slice(&carry[range.clone()]),
                        _ => out.push(Out::Pass(carry[range.clone()].to_vec())),
                    }
                    next = range.end;
                }
                Step::Watched { kind, frame } => {
                    assert_eq!(frame.start, next, "steps are contiguous");
                    out.push(Out::Watched(kind.clone(), carry[frame.clone()].to_vec()));
                    next = frame.end;
                }
            }
        }
        match r {
            Ok(done) => {
                assert_eq!(done, next, "what was consumed is what the steps cover");
                carry.drain(..done);
                if gate.at_boundary() {
                    // Held back: a header, a payload prefix too short to type, or a watched
                    // frame still arriving (at most the limit).
                    assert!(
                        carry.len() <= HEADER_LEN + PEEK_MAX.max(max),
                        "held {}",
                        carry.len()
                    );
                } else {
                    assert!(carry.is_empty(), "mid-frame, every byte is passed at once");
                }
            }
            Err(e) => return Outcome { out, end: Err(e) },
        }
    }
    Outcome {
        out,
        end: Ok(carry),
    }
}

/// A stopped frame is whole, a main packet of a watched type, and the decoder agrees.
fn check_watched(kind: &str, frame: &[u8], max: usize) {
    assert!(WATCHED.contains(&kind));
    let head = frame.first_chunk::<HEADER_LEN>().expect("a header");
    let h = Header::parse(head).expect("a valid header");
    assert_eq!(h.chunk, 0);
    assert_eq!(frame.len(), HEADER_LEN + h.size as usize);
    assert!(h.size as usize <= max);
    let mut dec = FrameDecoder::new(Limits { max_packet: max });
    let mut buf = BytesMut::from(frame);
    if let Ok(Some(d)) = dec.decode(&mut buf) {
        assert_eq!(d.packet.kind(), Some(kind), "gate and decoder disagree");
    }
}
