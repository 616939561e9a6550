//! `xpra_frame`: the xpra [`FrameDecoder`] on one direction of a stream (what the front
//! door runs on a client's bytes before and during authentication).
//!
//! Input: limit selector, cut point (2 bytes), read size, then the stream.
//!
//! Guards:
//! - never panics, whatever the bytes and the packet limit;
//! - streaming decode equals one-shot decode: the same packets, the same error, the same
//!   bytes left over, whether the stream comes whole, cut in two anywhere, or in small reads;
//! - no byte is lost or altered: the frames of the packets are the start of the stream, then
//!   come at most 3 chunk frames held for the next packet, then the unread bytes;
//! - every frame is within the limit, a packet's main frame comes last, after at most 3
//!   chunks of index 1..=15;
//! - memory is bounded by the limit, not by what the frames claim: one `decode` call never
//!   asks for more than 64 bytes per byte of the limit in one allocation, nor holds more
//!   than 128 per byte at its peak (a decoded value is 32 bytes per encoded byte at worst);
//! - `peek_kind` (what the frame gate reads) never contradicts the full decode, on the
//!   whole payload or any prefix of it;
//! - a packet re-encoded with its own encoder decodes to the same packet;
//! - `Header::parse` and `Header::to_bytes` round-trip.
#![no_main]

use bytes::BytesMut;
use deskrelay::xpra::packet::ABS_MAX_PACKET;
use deskrelay::xpra::{
    encode_frame, peek_kind, Compression, Decoded, FrameDecoder, Header, Limits, ProtocolError,
    HEADER_LEN,
};
use deskrelay_fuzz::{measure, read_patterns, Input};
use libfuzzer_sys::fuzz_target;

/// Packet limits tried: tiny ones make the limit easy to hit; 1 MiB is the front door's
/// pre-authentication limit, 16 MiB xpra's default.
const LIMITS: [usize; 8] = [1, 16, 100, 256, 4096, 64 << 10, 1 << 20, 16 << 20];

#[derive(Debug)]
struct Outcome {
    packets: Vec<Decoded>,
    /// The bytes left in the buffer, or the error that ended decoding.
    end: Result<Vec<u8>, ProtocolError>,
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let max = input.pick(&LIMITS);
    let cut = input.u16();
    let step = input.byte();
    let stream = input.rest();
    let limits = Limits { max_packet: max };

    if let Some(head) = stream.first_chunk::<HEADER_LEN>() {
        if let Ok(h) = Header::parse(head) {
            assert_eq!(&h.to_bytes(), head);
        }
    }

    let [whole, cut_in_two, small_reads] = read_patterns(stream, cut, step);
    let one_shot = decode(&whole, limits, stream.len());
    let expected = format!("{one_shot:?}");
    for reads in [cut_in_two, small_reads] {
        let streamed = decode(&reads, limits, stream.len());
        assert_eq!(
            format!("{streamed:?}"),
            expected,
            "reads of {:?} bytes",
            lens(&reads)
        );
    }

    check_bytes(stream, &one_shot, max);
    for d in &one_shot.packets {
        check_peek(d, cut);
        check_reencode(d);
    }
});

fn lens(reads: &[&[u8]]) -> Vec<usize> {
    reads.iter().map(|r| r.len()).collect()
}

/// Feeds `reads` one after the other, decoding all it can after each, as the session does.
fn decode(reads: &[&[u8]], limits: Limits, total: usize) -> Outcome {
    let max = limits.max_packet.min(ABS_MAX_PACKET);
    let mut dec = FrameDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut packets = Vec::new();
    for read in reads {
        buf.extend_from_slice(read);
        loop {
            let (r, used) = measure(|| dec.decode(&mut buf));
            assert!(
                used.largest <= 64 * max + 2 * total + (64 << 10),
                "one allocation of {} bytes, limit {max}, {total} input bytes",
                used.largest
            );
            assert!(
                used.peak <= 128 * max + 4 * total + (1 << 20),
                "{} bytes live at the peak, limit {max}, {total} input bytes",
                used.peak
            );
            match r {
                Ok(Some(d)) => packets.push(d),
                Ok(None) => break,
                Err(e) => {
                    return Outcome {
                        packets,
                        end: Err(e),
                    }
                }
            }
        }
    }
    Outcome {
        packets,
        end: Ok(buf.to_vec()),
    }
}

/// Frames are the stream's own bytes, in order, within the limit; between the last packet
/// and the unread bytes lie only chunk frames waiting for their packet.
fn check_bytes(stream: &[u8], out: &Outcome, max: usize) {
    let mut pos = 0;
    for d in &out.packets {
        let (main, chunks) = d.frames.split_last().expect("a packet has a main frame");
        assert_eq!(main.header.chunk, 0);
        assert_eq!(main.header.encoding().ok(), Some(d.encoding));
        assert!(chunks.len() <= 3);
        for f in &d.frames {
            assert_eq!(f.raw.len(), HEADER_LEN + f.header.size as usize);
            assert!(f.header.size as usize <= max);
            assert_eq!(&stream[pos..pos + f.raw.len()], &f.raw[..]);
            pos += f.raw.len();
        }
        for c in chunks {
            assert!((1..=15).contains(&c.header.chunk));
        }
        assert!(!d.packet.items.is_empty());
    }
    let Ok(left) = &out.end else {
        return;
    };
    assert!(stream.ends_with(left));
    let mut held = &stream[pos..stream.len() - left.len()];
    let mut chunks = 0;
    while !held.is_empty() {
        let head = held.first_chunk::<HEADER_LEN>().expect("a whole header");
        let h = Header::parse(head).expect("a valid header");
        assert!((1..=15).contains(&h.chunk), "only chunks are held");
        held = &held[HEADER_LEN + h.size as usize..];
        chunks += 1;
    }
    assert!(chunks <= 3);
}

/// What the gate reads from the first bytes of a payload is what the decoder read in full.
fn check_peek(d: &Decoded, cut: u16) {
    let main = d.frames.last().expect("a main frame");
    let payload = main.payload();
    let kind = d.packet.kind();
    for prefix in [payload, &payload[..usize::from(cut) % (payload.len() + 1)]] {
        if let Some(peeked) = peek_kind(&main.header, prefix) {
            assert_eq!(
                Some(peeked.as_str()),
                kind,
                "peek of {} bytes",
                prefix.len()
            );
        }
    }
}

/// A packet without chunks, written again with its own encoder, reads back the same.
fn check_reencode(d: &Decoded) {
    if d.frames.len() != 1 {
        return; // chunk items are binary, which rencode would write as strings
    }
    // bencode cannot carry None or floats; rencode carries everything.
    let Ok(frame) = encode_frame(&d.packet, d.encoding, Compression::None) else {
        return;
    };
    let mut dec = FrameDecoder::new(Limits {
        max_packet: ABS_MAX_PACKET,
    });
    let mut buf = BytesMut::from(&frame[..]);
    let again = dec
        .decode(&mut buf)
        .expect("our own frame decodes")
        .expect("our own frame is whole");
    assert_eq!(format!("{:?}", again.packet), format!("{:?}", d.packet));
    assert!(buf.is_empty());
}
