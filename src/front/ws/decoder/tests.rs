//! The decoder's contract: payload comes out unmasked, exact and in order whatever the read
//! boundaries; every rule RFC 6455 sets for client frames is enforced with the right close
//! code, from the header alone where the header decides.

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};

use super::*;
use crate::front::ws::encoder::{binary_header, client_binary, client_close, client_frame};

const KEY: [u8; 4] = [0x6d, 0xb6, 0xb2, 0x80];
const LIMIT: u64 = 1 << 21;
const BIN: OpCode = OpCode::Data(Data::Binary);
const CONT: OpCode = OpCode::Data(Data::Continue);
const PING: OpCode = OpCode::Control(Control::Ping);
const PONG: OpCode = OpCode::Control(Control::Pong);
const CLOSE: OpCode = OpCode::Control(Control::Close);

/// What a relay saw: forwarded bytes, ping payloads, pong count, close.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Seen {
    pub data: Vec<u8>,
    pub pings: Vec<Vec<u8>>,
    pub pongs: usize,
    pub close: Option<(Option<u16>, String)>,
}

/// Feeds `stream` cut at `cuts` the way a relay does: unconsumed bytes carried to the front
/// of the next read, steps acted on from the read buffer.
pub(super) fn relay(stream: &[u8], cuts: &[usize]) -> Result<Seen, WsError> {
    let mut dec = ServerDecoder::new(LIMIT);
    let mut seen = Seen::default();
    let (mut buf, mut steps) = (Vec::new(), Vec::new());
    let mut at = 0;
    for end in cuts.iter().copied().chain([stream.len()]) {
        let end = end.clamp(at, stream.len());
        buf.extend_from_slice(&stream[at..end]);
        at = end;
        steps.clear();
        let used = dec.decode_in_place(&mut buf, &mut steps)?;
        for step in &steps {
            match step {
                Step::Data(r) => {
                    assert!(!r.is_empty(), "no empty data steps");
                    seen.data.extend_from_slice(&buf[r.clone()]);
                }
                Step::Ping(r) => seen.pings.push(buf[r.clone()].to_vec()),
                Step::Pong(_) => seen.pongs += 1,
                Step::Close { code, reason } => {
                    let reason = String::from_utf8(buf[reason.clone()].to_vec()).expect("utf8");
                    seen.close = Some((code.map(u16::from), reason));
                }
            }
        }
        buf.drain(..used);
    }
    Ok(seen)
}

/// The same through [`ServerDecoder::decode`] and a `BytesMut`.
pub(super) fn relay_bytes(stream: &[u8], cuts: &[usize]) -> Result<Seen, WsError> {
    let mut dec = ServerDecoder::new(LIMIT);
    let mut seen = Seen::default();
    let mut buf = BytesMut::new();
    let mut at = 0;
    for end in cuts.iter().copied().chain([stream.len()]) {
        let end = end.clamp(at, stream.len());
        buf.extend_from_slice(&stream[at..end]);
        at = end;
        while let Some(event) = dec.decode(&mut buf)? {
            match event {
                Event::Data(b) => seen.data.extend_from_slice(&b),
                Event::Ping(b) => seen.pings.push(b.to_vec()),
                Event::Pong(_) => seen.pongs += 1,
                Event::Close(c) => {
                    seen.close = Some(match c {
                        Some(c) => (Some(u16::from(c.code)), c.reason.into_owned()),
                        None => (None, String::new()),
                    })
                }
            }
        }
    }
    Ok(seen)
}

fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut p = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill_bytes(&mut p);
    p
}

fn random_cuts(len: usize, count: usize, seed: u64) -> Vec<usize> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut cuts: Vec<usize> = (0..count).map(|_| rng.gen_range(0..=len)).collect();
    cuts.sort_unstable();
    cuts
}

fn code_of(stream: &[u8]) -> u16 {
    let err = relay(stream, &[]).expect_err("refused");
    assert_eq!(
        relay_bytes(stream, &[]),
        Err(err.clone()),
        "both APIs agree"
    );
    u16::from(err.close_code())
}

#[test]
fn small_frames_round_trip_split_at_every_byte() {
    for len in [0usize, 1, 125, 126] {
        let data = payload(len, len as u64);
        let frame = client_binary(&data, KEY);
        for cut in 0..=frame.len() {
            let seen = relay(&frame, &[cut]).expect("valid");
            assert_eq!(seen.data, data, "len {len} cut {cut}");
            assert_eq!(relay_bytes(&frame, &[cut]).expect("valid").data, data);
        }
        let every: Vec<usize> = (1..frame.len()).collect();
        assert_eq!(relay(&frame, &every).expect("valid").data, data);
        assert_eq!(relay_bytes(&frame, &every).expect("valid").data, data);
    }
}

#[test]
fn big_frames_round_trip_split_at_random() {
    for (i, len) in [65535usize, 65536, 1 << 20].into_iter().enumerate() {
        let data = payload(len, i as u64);
        let frame = client_binary(&data, KEY);
        assert_eq!(
            relay(&frame, &[]).expect("valid").data,
            data,
            "len {len} whole"
        );
        for seed in 0..4 {
            let cuts = random_cuts(frame.len(), 1 + seed as usize * 40, seed);
            assert_eq!(relay(&frame, &cuts).expect("valid").data, data, "len {len}");
            assert_eq!(relay_bytes(&frame, &cuts).expect("valid").data, data);
        }
        // Cuts inside the 14-byte header, then odd offsets for the key phase.
        assert_eq!(
            relay(&frame, &[1, 3, 9, 13, 15, 18, 1000])
                .expect("valid")
                .data,
            data
        );
    }
}

#[test]
fn payload_is_reported_as_it_arrives() {
    let data = payload(10_000, 7);
    let mut frame = client_binary(&data, KEY);
    let mut dec = ServerDecoder::new(LIMIT);
    let mut steps = Vec::new();
    // Header (2 + 2 length + 4 key bytes) and 3 payload bytes: the 3 come out at once.
    assert_eq!(dec.decode_in_place(&mut frame[..11], &mut steps), Ok(11));
    assert_eq!(steps, [Step::Data(8..11)]);
    assert_eq!(frame[8..11], data[..3]);
    assert!(!dec.at_message_boundary());
    steps.clear();
    assert_eq!(dec.decode_in_place(&mut frame[11..], &mut steps), Ok(9997));
    assert_eq!(steps, [Step::Data(0..9997)]);
    assert_eq!(frame[11..], data[3..]);
    assert!(dec.at_message_boundary());
}

#[test]
fn many_frames_in_one_read() {
    let mut stream = Vec::new();
    let mut want = Vec::new();
    for len in [5usize, 0, 300, 1, 70_000] {
        let p = payload(len, len as u64 + 100);
        stream.extend(client_binary(&p, [len as u8, 1, 2, 3]));
        want.extend(p);
    }
    let mut dec = ServerDecoder::new(LIMIT);
    let mut steps = Vec::new();
    assert_eq!(
        dec.decode_in_place(&mut stream, &mut steps),
        Ok(stream.len())
    );
    assert_eq!(steps.len(), 4, "the empty frame yields nothing");
    let got: Vec<u8> = steps
        .iter()
        .flat_map(|s| match s {
            Step::Data(r) => stream[r.clone()].to_vec(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn fragmented_message_with_interleaved_control_frames() {
    let mut stream = client_frame(BIN, false, b"abc", KEY);
    stream.extend(client_frame(PING, true, b"are you there", [9, 8, 7, 6]));
    stream.extend(client_frame(CONT, false, b"def", KEY));
    stream.extend(client_frame(PONG, true, b"", KEY));
    stream.extend(client_frame(CONT, false, b"", KEY));
    stream.extend(client_frame(CONT, true, b"gh", KEY));
    stream.extend(client_binary(b"next", KEY));
    let want = Seen {
        data: b"abcdefghnext".to_vec(),
        pings: vec![b"are you there".to_vec()],
        pongs: 1,
        close: None,
    };
    for cut in 0..=stream.len() {
        assert_eq!(relay(&stream, &[cut]).as_ref(), Ok(&want), "cut {cut}");
        assert_eq!(
            relay_bytes(&stream, &[cut]).as_ref(),
            Ok(&want),
            "cut {cut}"
        );
    }
}

#[test]
fn incomplete_control_frame_is_left_in_the_buffer() {
    let mut ping = client_frame(PING, true, b"0123456789", KEY);
    let mut dec = ServerDecoder::new(LIMIT);
    let mut steps = Vec::new();
    assert_eq!(dec.decode_in_place(&mut ping[..11], &mut steps), Ok(0));
    assert!(steps.is_empty());
    assert_eq!(dec.decode_in_place(&mut ping, &mut steps), Ok(16));
    assert_eq!(steps, [Step::Ping(6..16)]);
    assert_eq!(&ping[6..], b"0123456789");
}

#[test]
fn unmasked_frame_is_a_protocol_error() {
    let (header, n) = binary_header(3);
    let mut frame = header[..n].to_vec();
    frame.extend_from_slice(b"abc");
    assert_eq!(code_of(&frame), 1002);
    assert_eq!(relay(&frame, &[]), Err(WsError::Unmasked));
}

#[test]
fn text_is_unsupported() {
    assert_eq!(
        code_of(&client_frame(OpCode::Data(Data::Text), true, b"hi", KEY)),
        1003
    );
    let mut stream = client_frame(OpCode::Data(Data::Text), false, b"h", KEY);
    stream.extend(client_frame(CONT, true, b"i", KEY));
    assert_eq!(relay(&stream, &[]), Err(WsError::Text));
}

#[test]
fn oversized_frame_is_refused_from_its_header() {
    // A header claiming 1 GiB, and not one byte of payload behind it.
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 30).to_be_bytes());
    header.extend_from_slice(&KEY);
    let want = WsError::TooLarge {
        size: 1 << 30,
        limit: LIMIT,
    };
    assert_eq!(relay(&header, &[]), Err(want.clone()));
    assert_eq!(u16::from(want.close_code()), 1009);
    let mut buf = BytesMut::from(&header[..]);
    assert_eq!(ServerDecoder::new(LIMIT).decode(&mut buf), Err(want));
    // The limit is inclusive.
    let at_limit = client_binary(&vec![1; LIMIT as usize], KEY);
    assert_eq!(
        relay(&at_limit, &[]).expect("at the limit").data.len(),
        LIMIT as usize
    );
    let mut over = vec![0x82, 0x80 | 127];
    over.extend_from_slice(&(LIMIT + 1).to_be_bytes());
    over.extend_from_slice(&KEY);
    assert_eq!(code_of(&over), 1009);
}

#[test]
fn length_with_top_bit_set_is_a_protocol_error() {
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&u64::MAX.to_be_bytes());
    header.extend_from_slice(&KEY);
    assert_eq!(relay(&header, &[]), Err(WsError::BadLength));
    assert_eq!(code_of(&header), 1002);
}

#[test]
fn control_frame_rules() {
    // 126 bytes: refused from the header, before the payload is waited for.
    let long = client_frame(PING, true, &[0; 126], KEY);
    assert_eq!(relay(&long[..8], &[]), Err(WsError::ControlTooLong(126)));
    assert_eq!(code_of(&long), 1002);
    assert_eq!(
        relay(&client_frame(PING, true, &[7; 125], KEY), &[])
            .expect("125 is fine")
            .pings,
        [vec![7; 125]]
    );
    assert_eq!(
        relay(&client_frame(PONG, false, b"", KEY), &[]),
        Err(WsError::FragmentedControl)
    );
    assert_eq!(code_of(&client_frame(CLOSE, false, b"", KEY)), 1002);
}

#[test]
fn reserved_bits_and_opcodes_are_protocol_errors() {
    for rsv in [0x40u8, 0x20, 0x10] {
        let mut frame = client_binary(b"x", KEY);
        frame[0] |= rsv;
        assert_eq!(relay(&frame, &[]), Err(WsError::ReservedBits));
    }
    for op in (3..=7).chain(11..=15) {
        let mut frame = client_binary(b"x", KEY);
        frame[0] = 0x80 | op;
        assert_eq!(
            relay(&frame, &[]),
            Err(WsError::BadOpcode(op)),
            "opcode {op}"
        );
        assert_eq!(code_of(&frame), 1002);
    }
}

#[test]
fn continuation_rules() {
    assert_eq!(
        relay(&client_frame(CONT, true, b"x", KEY), &[]),
        Err(WsError::UnexpectedContinuation)
    );
    let mut stream = client_frame(BIN, false, b"a", KEY);
    stream.extend(client_binary(b"b", KEY));
    assert_eq!(relay(&stream, &[]), Err(WsError::ExpectedContinuation));
    assert_eq!(code_of(&stream), 1002);
}

#[test]
fn close_with_code_and_reason() {
    let mut stream = client_binary(b"last", KEY);
    stream.extend(client_close(CloseCode::Normal, "bye ✓", KEY));
    stream.extend(client_binary(b"ignored after close", KEY));
    let seen = relay(&stream, &[]).expect("valid");
    assert_eq!(seen.data, b"last");
    assert_eq!(seen.close, Some((Some(1000), "bye ✓".to_string())));
    assert_eq!(relay_bytes(&stream, &[7, 20]).expect("valid"), seen);

    let mut dec = ServerDecoder::new(LIMIT);
    let mut buf = BytesMut::from(&client_close(CloseCode::Away, "", KEY)[..]);
    let Ok(Some(Event::Close(Some(frame)))) = dec.decode(&mut buf) else {
        panic!("a close event");
    };
    assert_eq!((frame.code, frame.reason.as_ref()), (CloseCode::Away, ""));
    assert!(dec.is_closed());
    buf.extend_from_slice(b"\x81\x05garbage");
    assert_eq!(dec.decode(&mut buf), Ok(None));
    assert!(buf.is_empty(), "bytes after a close are dropped");
}

#[test]
fn empty_close() {
    let seen = relay(&client_frame(CLOSE, true, b"", KEY), &[]).expect("valid");
    assert_eq!(seen.close, Some((None, String::new())));
    assert_eq!(
        relay_bytes(&client_frame(CLOSE, true, b"", KEY), &[1]).expect("valid"),
        seen
    );
}

#[test]
fn invalid_close_payloads() {
    let close = |payload: &[u8]| client_frame(CLOSE, true, payload, KEY);
    assert_eq!(relay(&close(&[3]), &[]), Err(WsError::CloseTooShort));
    for code in [
        0u16,
        999,
        1004,
        1005,
        1006,
        1014,
        1015,
        1016,
        2999,
        5000,
        u16::MAX,
    ] {
        let frame = close(&code.to_be_bytes());
        assert_eq!(
            relay(&frame, &[]),
            Err(WsError::BadCloseCode(code)),
            "code {code}"
        );
        assert_eq!(code_of(&frame), 1002);
    }
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999,
    ] {
        let seen = relay(&close(&code.to_be_bytes()), &[]).expect("allowed code");
        assert_eq!(seen.close, Some((Some(code), String::new())));
    }
    let mut bad_utf8 = 1000u16.to_be_bytes().to_vec();
    bad_utf8.extend_from_slice(&[0xc3, 0x28]);
    assert_eq!(
        relay(&close(&bad_utf8), &[]),
        Err(WsError::CloseReasonNotUtf8)
    );
    assert_eq!(code_of(&close(&bad_utf8)), 1007);
}

#[test]
fn errors_stick() {
    let mut dec = ServerDecoder::new(LIMIT);
    let mut bad = client_frame(OpCode::Data(Data::Text), true, b"x", KEY);
    assert_eq!(
        dec.decode_in_place(&mut bad, &mut Vec::new()),
        Err(WsError::Text)
    );
    let mut good = client_binary(b"x", KEY);
    assert_eq!(
        dec.decode_in_place(&mut good, &mut Vec::new()),
        Err(WsError::Text)
    );
}

#[test]
fn steps_before_an_error_stay_valid() {
    let mut stream = client_binary(b"keep", KEY);
    stream.extend(client_frame(OpCode::Data(Data::Text), true, b"x", KEY));
    let mut steps = Vec::new();
    let err = ServerDecoder::new(LIMIT).decode_in_place(&mut stream, &mut steps);
    assert_eq!(err, Err(WsError::Text));
    assert_eq!(steps, [Step::Data(6..10)]);
    assert_eq!(&stream[6..10], b"keep");
}

/// Prints unmask-and-decode throughput (no timing is asserted: the box is shared). Run with
/// `cargo test --release --lib front::ws::decoder::tests::throughput -- --nocapture`.
#[test]
fn throughput() {
    let total = if cfg!(debug_assertions) {
        4 << 20
    } else {
        512 << 20
    };
    for size in [64 << 10, 100usize] {
        // About 1 MiB of whole frames, decoded again and again (it stays in cache, as a
        // relay's read buffer does); unmasking twice is harmless to the measurement.
        let frame = client_binary(&payload(size, 1), KEY);
        let per_buf = ((1 << 20) / frame.len()).max(1);
        let mut buf = frame.repeat(per_buf);
        let mut steps = Vec::with_capacity(per_buf + 1);
        let mut dec = ServerDecoder::new(LIMIT);
        let rounds = (total / buf.len()).max(1);
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            // 64 KiB reads; what one does not consume starts the next.
            let mut pos = 0;
            while pos < buf.len() {
                let end = (pos + (64 << 10)).min(buf.len());
                steps.clear();
                pos += dec
                    .decode_in_place(&mut buf[pos..end], &mut steps)
                    .expect("valid");
            }
        }
        let secs = start.elapsed().as_secs_f64();
        assert!(dec.at_message_boundary());
        let frames = (rounds * per_buf) as f64;
        println!(
            "ws decode_in_place, {size:>5}-byte frames: {:>6.0} MiB/s of payload, {:>5.1} M frames/s",
            frames * size as f64 / secs / (1 << 20) as f64,
            frames / secs / 1e6
        );
    }
    let mut block = vec![0u8; 64 << 10];
    let rounds = total / block.len();
    let bytes = (rounds * block.len()) as f64;
    let mib_s = |secs: f64| bytes / secs / (1 << 20) as f64;
    let start = std::time::Instant::now();
    for i in 0..rounds {
        apply_mask(std::hint::black_box(&mut block), KEY, i as u64);
    }
    let fast = mib_s(start.elapsed().as_secs_f64());
    let start = std::time::Instant::now();
    for i in 0..rounds / 8 {
        for (j, b) in std::hint::black_box(&mut block).iter_mut().enumerate() {
            *b ^= KEY[(i + j) % 4];
        }
    }
    let naive = mib_s(start.elapsed().as_secs_f64()) / 8.0;
    println!("apply_mask on 64 KiB: {fast:.0} MiB/s; byte-by-byte loop: {naive:.0} MiB/s");
}
