//! Guards the design of the xpra data phase: the frame gate, which reads each frame's
//! header and type and passes its bytes on, against what a decoding proxy does per packet
//! (decompress, decode, re-encode, recompress; xpra's own proxy works this way).
//!
//! The stream is desktop-like: screen updates of 1-4 KiB, a 256 KiB frame now and then, a
//! raw pixel chunk ahead of its packet, small input events. Run: `cargo bench --bench
//! xpra_gate`. The ratio of the two throughputs is the point, not their absolute values.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use deskrelay::front::xpra::gate::{Gate, Step};
use deskrelay::xpra::{encode_frame, Compression, Encoding, FrameDecoder, Limits, Packet, Value};

fn packet(kind: &str, payload: usize, seed: u8) -> Packet {
    let pixels: Vec<u8> = (0..payload).map(|i| (i as u8).wrapping_mul(seed)).collect();
    Packet::new(vec![
        Value::str(kind),
        Value::Int(1),
        Value::Int(0),
        Value::Int(0),
        Value::Int(64),
        Value::Int(64),
        Value::str("rgb24"),
        Value::Bytes(pixels),
        Value::Int(7),
        Value::Int(256),
        Value::Dict(vec![]),
    ])
}

/// 100 damage updates, one big frame, a chunk, and input events: about 600 KiB.
fn desktop_stream(compression: Compression) -> Vec<u8> {
    let mut s = Vec::new();
    for i in 0..100u32 {
        let size = 1024 + (i as usize * 37) % 3072;
        s.extend(
            encode_frame(
                &packet("draw", size, i as u8 | 1),
                Encoding::Rencode,
                compression,
            )
            .unwrap(),
        );
        if i % 10 == 0 {
            let ev = Packet::new(vec![
                Value::str("pointer-position"),
                Value::Int(1),
                Value::Int(i as i64),
            ]);
            s.extend(encode_frame(&ev, Encoding::Rencode, Compression::None).unwrap());
        }
    }
    let mut chunk = vec![b'P', 0, 0, 1];
    chunk.extend_from_slice(&(64u32 * 1024).to_be_bytes());
    chunk.extend(std::iter::repeat(3u8).take(64 * 1024));
    s.extend(chunk);
    s.extend(
        encode_frame(
            &packet("draw", 256 * 1024, 5),
            Encoding::Rencode,
            compression,
        )
        .unwrap(),
    );
    s
}

/// The relay's way: gate the stream in 64 KiB reads, "write" passed ranges.
fn gate_pass(stream: &[u8]) -> usize {
    let mut gate = Gate::new(&["disconnect", "info-response"], 16 << 20);
    let (mut carry, mut steps, mut out) = (Vec::new(), Vec::new(), 0usize);
    for read in stream.chunks(64 * 1024) {
        carry.extend_from_slice(read);
        steps.clear();
        let done = gate.feed(&carry, &mut steps).unwrap();
        for s in &steps {
            let (Step::Pass(r) | Step::Watched { frame: r, .. }) = s;
            out += r.len();
        }
        carry.drain(..done);
    }
    out
}

/// A decoding proxy's way: every packet decoded and encoded again.
fn decode_reencode(stream: &[u8], compression: Compression) -> usize {
    let mut dec = FrameDecoder::new(Limits::default());
    let mut buf = BytesMut::from(stream);
    let mut out = 0usize;
    while let Some(d) = dec.decode(&mut buf).unwrap() {
        out += encode_frame(&d.packet, d.encoding, compression)
            .unwrap()
            .len();
    }
    out
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("xpra data phase");
    for (name, compression) in [("plain", Compression::None), ("lz4", Compression::Lz4(1))] {
        let stream = desktop_stream(compression);
        group.throughput(Throughput::Bytes(stream.len() as u64));
        group.bench_with_input(BenchmarkId::new("frame gate", name), &stream, |b, s| {
            b.iter(|| gate_pass(s))
        });
        group.bench_with_input(
            BenchmarkId::new("decode + re-encode", name),
            &stream,
            |b, s| b.iter(|| decode_reencode(s, compression)),
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
