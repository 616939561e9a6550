//! Frames: encode/decode round trips, incremental input, chunks, limits, peeking.

use super::*;
use crate::xpra::compress::{lz4_compress, zlib_compress};
use crate::xpra::rencode::tests::arb_value;
use proptest::prelude::*;

const ENCODINGS: [Encoding; 3] = [Encoding::Rencode, Encoding::RencodePlus, Encoding::Bencode];
const COMPRESSIONS: [Compression; 4] = [
    Compression::None,
    Compression::Zlib(1),
    Compression::Lz4(1),
    Compression::Zlib(0),
];

fn hello() -> Packet {
    Packet::new(vec![
        Value::str("hello"),
        Value::Dict(vec![
            (Value::str("version"), Value::str("3.1.3")),
            (Value::str("rencode"), Value::Bool(true)),
            (
                Value::str("desktop_size"),
                Value::List(vec![Value::Int(1920), Value::Int(1080)]),
            ),
            (Value::str("padding"), Value::Str(vec![b'x'; 2000])),
        ]),
    ])
}

/// The frame of a raw chunk item.
fn chunk(index: u8, data: &[u8], c: Compression) -> Vec<u8> {
    let body = compress(data, c);
    let h = Header {
        flags: 0,
        compression: c.byte(),
        chunk: index,
        size: body.len() as u32,
    };
    [h.to_bytes().as_slice(), &body].concat()
}

fn buf(parts: &[&[u8]]) -> BytesMut {
    BytesMut::from(parts.concat().as_slice())
}

#[test]
fn kind_is_the_first_string_item() {
    assert_eq!(hello().kind(), Some("hello"));
    assert_eq!(Packet::new(vec![Value::Int(3)]).kind(), None);
    assert_eq!(Packet::new(vec![]).kind(), None);
}

#[test]
fn every_encoding_and_compression_round_trips_through_the_decoder() {
    for e in ENCODINGS {
        for c in COMPRESSIONS {
            let wire = encode_frame(&hello(), e, c).unwrap();
            let h = Header::parse(wire[..8].try_into().unwrap()).unwrap();
            assert_eq!((h.encoding(), h.compression()), (Ok(e), Ok(c.effective())));
            let mut b = buf(&[&wire, b"P"]);
            let d = FrameDecoder::default().decode(&mut b).unwrap().unwrap();
            let mut expect = hello();
            if e == Encoding::Bencode {
                expect.items[1].insert("rencode", Value::Int(1));
            }
            assert_eq!((d.packet, d.encoding), (expect, e), "{e:?} {c:?}");
            assert_eq!(d.frames.len(), 1);
            assert_eq!(&d.frames[0].raw[..], &wire[..]);
            assert_eq!(&b[..], b"P", "the next frame's bytes stay in the buffer");
        }
    }
}

#[test]
fn bencode_frames_refuse_none() {
    let p = Packet::new(vec![Value::str("x"), Value::None]);
    assert_eq!(
        encode_frame(&p, Encoding::Bencode, Compression::None),
        Err(ProtocolError::Unencodable("None"))
    );
}

#[test]
fn input_may_arrive_one_byte_at_a_time() {
    let wire = [
        encode_frame(&hello(), Encoding::Rencode, Compression::Lz4(2)).unwrap(),
        encode_frame(
            &Packet::new(vec![Value::str("ping"), Value::Int(7)]),
            Encoding::Rencode,
            Compression::None,
        )
        .unwrap(),
    ]
    .concat();
    let mut dec = FrameDecoder::default();
    let mut b = BytesMut::new();
    let mut kinds = Vec::new();
    for &byte in &wire {
        b.extend_from_slice(&[byte]);
        while let Some(d) = dec.decode(&mut b).unwrap() {
            kinds.push(d.packet.kind().unwrap().to_owned());
        }
    }
    assert_eq!(kinds, ["hello", "ping"]);
    assert!(b.is_empty());
}

#[test]
fn chunks_fill_their_placeholders() {
    let main = Packet::new(vec![
        Value::str("draw"),
        Value::Int(1),
        Value::str(""),
        Value::str(""),
        Value::str("png"),
    ]);
    let pixels = vec![7u8; 3000];
    let mut b = buf(&[
        &chunk(3, b"rgb", Compression::None),
        &chunk(2, &pixels, Compression::Lz4(1)),
        &encode_frame(&main, Encoding::Rencode, Compression::None).unwrap(),
    ]);
    let d = FrameDecoder::default().decode(&mut b).unwrap().unwrap();
    assert_eq!(d.frames.len(), 3);
    assert_eq!(d.frames[0].header.chunk, 3);
    let items = &d.packet.items;
    assert_eq!(items[2], Value::Bytes(pixels));
    assert_eq!(items[3], Value::Bytes(b"rgb".to_vec()));
    assert_eq!(items[4], Value::str("png"));
}

#[test]
fn chunk_rules_match_xpra() {
    let dec = || FrameDecoder::default();
    let e = |parts: &[&[u8]]| dec().decode(&mut buf(parts)).unwrap_err();
    assert_eq!(
        e(&[&chunk(16, b"x", Compression::None)]),
        ProtocolError::ChunkIndex(16)
    );
    let c1 = chunk(1, b"x", Compression::None);
    assert_eq!(e(&[&c1, &c1]), ProtocolError::DuplicateChunk(1));
    let c2 = chunk(2, b"x", Compression::None);
    let c3 = chunk(3, b"x", Compression::None);
    let c4 = chunk(4, b"x", Compression::None);
    assert_eq!(e(&[&c1, &c2, &c3, &c4]), ProtocolError::TooManyChunks(4));
    let main = encode_frame(
        &Packet::new(vec![Value::str("a"), Value::str("")]),
        Encoding::Rencode,
        Compression::None,
    )
    .unwrap();
    assert_eq!(
        e(&[&c3, &main]),
        ProtocolError::Corrupt("chunk index beyond the packet")
    );
    // Three pending chunks are fine, and the decoder starts afresh after the packet.
    let big = encode_frame(
        &Packet::new(vec![Value::str("a"); 4]),
        Encoding::Rencode,
        Compression::None,
    )
    .unwrap();
    let mut d = dec();
    let mut b = buf(&[&c1, &c2, &c3, &big, &c1, &c2, &c3, &big]);
    assert_eq!(d.decode(&mut b).unwrap().unwrap().frames.len(), 4);
    assert_eq!(d.decode(&mut b).unwrap().unwrap().frames.len(), 4);
}

#[test]
fn oversized_frames_fail_on_the_header_alone() {
    let h = Header {
        flags: 1,
        compression: 0,
        chunk: 0,
        size: 20_000_000,
    };
    let mut b = BytesMut::with_capacity(16);
    b.extend_from_slice(&h.to_bytes());
    let err = FrameDecoder::default().decode(&mut b).unwrap_err();
    assert_eq!(
        err.to_string(),
        "packet too large: 20000000 bytes, limit 16777216"
    );
    assert!(b.capacity() < 1024, "nothing was reserved for the payload");
    let small = FrameDecoder::new(Limits { max_packet: 100 });
    let mut b =
        BytesMut::from(&encode_frame(&hello(), Encoding::Rencode, Compression::None).unwrap()[..]);
    assert!(matches!(
        small.next_frame(&mut b),
        Err(ProtocolError::TooLarge { limit: 100, .. })
    ));
}

#[test]
fn small_frames_may_not_inflate_past_the_limit() {
    let zeros = Packet::new(vec![Value::str("x"), Value::Str(vec![0; 1 << 20])]);
    let mut b =
        BytesMut::from(&encode_frame(&zeros, Encoding::Rencode, Compression::Zlib(9)).unwrap()[..]);
    let mut d = FrameDecoder::new(Limits {
        max_packet: 64 * 1024,
    });
    assert_eq!(
        d.decode(&mut b),
        Err(ProtocolError::InflatedTooLarge { limit: 64 * 1024 })
    );
}

#[test]
fn bad_bytes_are_errors_fit_for_a_disconnect() {
    let mut d = FrameDecoder::default();
    assert_eq!(
        d.decode(&mut buf(&[b"G"])).unwrap_err().to_string(),
        "invalid packet header"
    );
    let frame = |flags: u8, compression: u8, body: &[u8]| {
        let h = Header {
            flags,
            compression,
            chunk: 0,
            size: body.len() as u32,
        };
        buf(&[&h.to_bytes(), body])
    };
    let e = |mut b: BytesMut| {
        FrameDecoder::default()
            .decode(&mut b)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(e(frame(0x04, 0, b"- [x]")), "unsupported encoder (yaml)");
    assert_eq!(
        e(frame(0x01, 0x42, b"..")),
        "unsupported compression (brotli)"
    );
    assert!(e(frame(0x01, 0, b"\xc1\x81")).starts_with("corrupt payload"));
    assert_eq!(
        e(frame(0x01, 0, b"\xc1\x00\x00")),
        "corrupt payload: data after the packet"
    );
    assert_eq!(
        e(frame(0x01, 0, b"\x05")),
        "corrupt payload: packet is not a list"
    );
    assert_eq!(e(frame(0x01, 0, b"\xc0")), "corrupt payload: empty packet");
    assert!(e(frame(0x01, 0x01, b"not zlib")).starts_with("corrupt payload"));
}

#[test]
fn peek_kind_reads_the_type_from_a_cut_payload() {
    let draw = Packet::new(vec![
        Value::str("draw"),
        Value::Int(1),
        Value::Bytes((0..=255u8).cycle().take(200_000).collect()),
    ]);
    for e in ENCODINGS {
        for c in COMPRESSIONS {
            let wire = encode_frame(&draw, e, c).unwrap();
            let h = Header::parse(wire[..8].try_into().unwrap()).unwrap();
            let cut = &wire[8..wire.len().min(8 + crate::xpra::compress::PEEK_PAYLOAD_LEN)];
            assert_eq!(peek_kind(&h, cut).as_deref(), Some("draw"), "{e:?} {c:?}");
            assert_eq!(peek_kind(&h, &cut[..1]), None);
        }
    }
    let h = |compression: u8, size: usize| Header {
        flags: 1,
        compression,
        chunk: 0,
        size: size as u32,
    };
    // Long-form type names, and what is not a typed packet.
    let long = [b"64:".as_slice(), &[b'k'; 64]].concat();
    let body = [b"\xc1".as_slice(), &long].concat();
    assert_eq!(peek_kind(&h(0, body.len()), &body), Some("k".repeat(64)));
    assert_eq!(peek_kind(&h(0, 2), b"\xc1\x05"), None);
    assert_eq!(peek_kind(&h(0, 1), b"\xc0"), None);
    assert_eq!(peek_kind(&h(0, 2), b"\x85hello"), None);
    assert_eq!(
        peek_kind(
            &Header {
                chunk: 1,
                ..h(0, 5)
            },
            b"\xc1\x81a"
        ),
        None
    );
    assert_eq!(peek_kind(&h(0x42, 5), b"\xc1\x81a"), None);
    let z = zlib_compress(b"\xc2\x84ping\x01", 6);
    assert_eq!(peek_kind(&h(6, z.len()), &z).as_deref(), Some("ping"));
    let l = lz4_compress(b"\x3b\x84ping\x01\x7f");
    assert_eq!(peek_kind(&h(0x11, l.len()), &l).as_deref(), Some("ping"));
    assert_eq!(
        peek_kind(
            &Header {
                flags: 0,
                ..h(0, 9)
            },
            b"l4:pingi1ee"
        )
        .as_deref(),
        Some("ping")
    );
}

fn arb_packet() -> impl Strategy<Value = Packet> {
    ("[a-z-]{1,20}", proptest::collection::vec(arb_value(), 0..6)).prop_map(|(kind, rest)| {
        let mut items = vec![Value::str(&kind)];
        items.extend(rest);
        Packet::new(items)
    })
}

proptest! {
    #[test]
    fn rencodeplus_frames_round_trip(p in arb_packet(), ci in 0usize..4) {
        let wire = encode_frame(&p, Encoding::RencodePlus, COMPRESSIONS[ci]).unwrap();
        let d = FrameDecoder::default().decode(&mut BytesMut::from(&wire[..])).unwrap().unwrap();
        let h = Header::parse(wire[..8].try_into().unwrap()).unwrap();
        let kind = peek_kind(&h, &wire[8..]);
        prop_assert_eq!(kind.as_deref(), p.kind());
        prop_assert_eq!(d.packet, p);
    }

    #[test]
    fn arbitrary_streams_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut b = BytesMut::from(&[b"P".as_slice(), &data].concat()[..]);
        let mut d = FrameDecoder::new(Limits { max_packet: 1 << 16 });
        while let Ok(Some(_)) = d.decode(&mut b) {}
        if data.len() >= 8 {
            let h = Header { flags: data[0], compression: data[1], chunk: 0, size: 1 };
            let _ = peek_kind(&h, &data[2..]);
        }
    }
}
