//! Payload compression as xpra frames carry it: zlib and lz4, whole or as a prefix.
//!
//! - zlib: the zlib *stream* format (2-byte header, deflate, adler32), what Python's
//!   `zlib.compress(data, level)` writes; the header's compression byte is the bare level.
//! - lz4: a 4-byte little-endian uncompressed size, then one lz4 *block* (not the lz4
//!   frame format): what `lz4.block.compress(data)` writes with its default `store_size`.
//!
//! Decompression takes a `max_out` limit and fails as soon as the declared (lz4) or
//! produced (zlib) size passes it, without allocating the excess: a small hostile frame
//! must not become a large allocation. The `*_prefix` functions return at most the first
//! `n` decompressed bytes of a payload that may itself be cut short, so the proxy can read
//! a big packet's type from its first bytes without inflating (or even receiving) the rest.

use std::borrow::Cow;
use std::io::Write;

use flate2::{Decompress, FlushDecompress, Status};

use super::error::{ProtocolError, Result};
use super::header::Compression;

/// Payload bytes that usually suffice for a prefix of a few dozen bytes: a zlib block may
/// open with up to ~300 bytes of Huffman tables before its first output byte. An lz4 block
/// that opens with a long incompressible run writes one length byte per 255 literals
/// before them, so it may need more; a prefix decoder then returns fewer bytes than asked.
pub const PEEK_PAYLOAD_LEN: usize = 512;

const LZ4_SIZE_LEN: usize = 4;
/// An lz4 block cannot expand more than this (a 255-byte run per input byte, plus slack),
/// so a declared size beyond it is corrupt and is refused before anything is allocated.
const LZ4_MAX_RATIO: usize = 255;

/// Compresses `data` as the header byte `c.byte()` will announce; level 0 copies it.
pub fn compress(data: &[u8], c: Compression) -> Vec<u8> {
    match c.effective() {
        Compression::None => data.to_vec(),
        Compression::Zlib(level) => zlib_compress(data, level),
        // lz4_flex has one speed; the level only reaches the header byte (xpra's levels
        // pick lz4 modes, and every mode writes blocks any lz4 decoder reads).
        Compression::Lz4(_) => lz4_compress(data),
    }
}

/// Decompresses a payload compressed with `c`; `max_out` bounds the result.
pub fn decompress(payload: &[u8], c: Compression, max_out: usize) -> Result<Cow<'_, [u8]>> {
    match c {
        Compression::None => Ok(Cow::Borrowed(payload)),
        Compression::Zlib(_) => zlib_decompress(payload, max_out).map(Cow::Owned),
        Compression::Lz4(_) => lz4_decompress(payload, max_out).map(Cow::Owned),
    }
}

/// At most the first `n` decompressed bytes of a (possibly truncated) payload.
pub fn decompress_prefix(payload: &[u8], c: Compression, n: usize) -> Result<Cow<'_, [u8]>> {
    match c {
        Compression::None => Ok(Cow::Borrowed(&payload[..payload.len().min(n)])),
        Compression::Zlib(_) => zlib_prefix(payload, n).map(Cow::Owned),
        Compression::Lz4(_) => lz4_prefix(payload, n).map(Cow::Owned),
    }
}

/// A zlib stream at `level` (clamped to 1..=9).
pub fn zlib_compress(data: &[u8], level: u8) -> Vec<u8> {
    let level = flate2::Compression::new(u32::from(level.clamp(1, 9)));
    let mut z = flate2::write::ZlibEncoder::new(Vec::with_capacity(data.len() / 2 + 64), level);
    // io::Write for Vec<u8> cannot fail, so neither can the encoder writing into one.
    z.write_all(data).expect("writing into a Vec");
    z.finish().expect("writing into a Vec")
}

/// A whole zlib stream, refused once its output passes `max_out`; trailing bytes after
/// the stream are corrupt (xpra never sends any).
pub fn zlib_decompress(payload: &[u8], max_out: usize) -> Result<Vec<u8>> {
    const CORRUPT: ProtocolError = ProtocolError::Corrupt("zlib");
    let mut z = Decompress::new(true);
    let mut out = Vec::with_capacity(payload.len().saturating_mul(4).clamp(64, max_out.max(64)));
    loop {
        if out.len() == out.capacity() {
            if out.len() > max_out {
                return Err(ProtocolError::InflatedTooLarge { limit: max_out });
            }
            // Grow geometrically, but never past one byte over the limit.
            out.reserve_exact(out.len().max(4096).min(max_out + 1 - out.len()));
        }
        let (seen_in, seen_out) = (z.total_in(), z.total_out());
        let status = z
            .decompress_vec(
                &payload[seen_in as usize..],
                &mut out,
                FlushDecompress::None,
            )
            .map_err(|_| CORRUPT)?;
        if out.len() > max_out {
            return Err(ProtocolError::InflatedTooLarge { limit: max_out });
        }
        if status == Status::StreamEnd {
            break;
        }
        if z.total_in() == seen_in && z.total_out() == seen_out && out.len() < out.capacity() {
            return Err(ProtocolError::Corrupt("truncated zlib stream"));
        }
    }
    if z.total_in() as usize != payload.len() {
        return Err(ProtocolError::Corrupt("data after the zlib stream"));
    }
    Ok(out)
}

/// At most the first `n` bytes a zlib stream decompresses to; `payload` may be cut short.
///
/// Like [`lz4_prefix`], it says what the input determines and no more: the bytes decoded
/// before a corruption are returned, the corruption is the full decoder's to report. So a
/// longer input never takes back what a shorter one gave, and the frame gate types a frame
/// the same whatever the read boundaries (found by the `xpra_gate` fuzz target: a corrupt
/// lz4 frame typed `hello` when cut, passed as untyped when whole).
pub fn zlib_prefix(payload: &[u8], n: usize) -> Result<Vec<u8>> {
    let mut z = Decompress::new(true);
    let mut out = vec![0u8; n];
    loop {
        let (seen_in, seen_out) = (z.total_in() as usize, z.total_out() as usize);
        if seen_out == n {
            break;
        }
        let Ok(status) = z.decompress(
            &payload[seen_in..],
            &mut out[seen_out..],
            FlushDecompress::None,
        ) else {
            break; // corrupt from here on: what came before stands
        };
        let stalled = z.total_in() as usize == seen_in && z.total_out() as usize == seen_out;
        if status == Status::StreamEnd || stalled {
            break;
        }
    }
    out.truncate(z.total_out() as usize);
    Ok(out)
}

/// xpra's lz4 payload: the 4-byte little-endian size, then the block.
pub fn lz4_compress(data: &[u8]) -> Vec<u8> {
    lz4_flex::block::compress_prepend_size(data)
}

/// An lz4 payload whose declared size is checked against `max_out` (and against what its
/// block could possibly hold) before the output is allocated.
pub fn lz4_decompress(payload: &[u8], max_out: usize) -> Result<Vec<u8>> {
    let (size, block) = lz4_split(payload)?;
    if size > max_out {
        return Err(ProtocolError::InflatedTooLarge { limit: max_out });
    }
    if size > block.len().saturating_mul(LZ4_MAX_RATIO).saturating_add(16) {
        return Err(ProtocolError::Corrupt(
            "lz4 size larger than its block can hold",
        ));
    }
    let mut out = vec![0u8; size];
    let written = lz4_flex::block::decompress_into(block, &mut out)
        .map_err(|_| ProtocolError::Corrupt("lz4"))?;
    if written != size {
        return Err(ProtocolError::Corrupt("lz4 size differs from its header"));
    }
    Ok(out)
}

fn lz4_split(payload: &[u8]) -> Result<(usize, &[u8])> {
    if payload.len() < LZ4_SIZE_LEN {
        return Err(ProtocolError::Corrupt("truncated lz4 size"));
    }
    let (size, block) = payload.split_at(LZ4_SIZE_LEN);
    let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]);
    Ok((size as usize, block))
}

/// At most the first `n` bytes an lz4 payload (size + block) decompresses to; `payload`
/// may be cut short, anywhere.
///
/// Hand-rolled because lz4_flex only decodes whole blocks, into an output of the full
/// size: peeking at a 16 MiB packet's type would mean inflating all of it. lz4 blocks are
/// simple enough to walk sequence by sequence and stop after `n` bytes.
pub fn lz4_prefix(payload: &[u8], n: usize) -> Result<Vec<u8>> {
    let Ok((size, block)) = lz4_split(payload) else {
        return Ok(Vec::new());
    };
    lz4_block_prefix(block, n.min(size))
}

/// Walks lz4 sequences: token (literal length << 4 | match length - 4), optional length
/// extension bytes, literals, 2-byte little-endian match offset, optional extension bytes.
fn lz4_block_prefix(block: &[u8], n: usize) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    // A length nibble of 15 continues in bytes added until one is below 255; a cut-off
    // extension yields None and the walk ends with what it has.
    let ext = |i: &mut usize, mut len: usize| -> Option<usize> {
        loop {
            let b = *block.get(*i)?;
            *i += 1;
            len = len.saturating_add(usize::from(b));
            if b != 255 {
                return Some(len);
            }
        }
    };
    while out.len() < n && i < block.len() {
        let token = block[i];
        i += 1;
        let mut literals = usize::from(token >> 4);
        if literals == 15 {
            let Some(l) = ext(&mut i, literals) else {
                break;
            };
            literals = l;
        }
        let available = literals.min(block.len() - i);
        let keep = available.min(n - out.len());
        out.extend_from_slice(&block[i..i + keep]);
        i += available;
        if available < literals || out.len() >= n || i == block.len() || block.len() - i < 2 {
            break;
        }
        let offset = usize::from(u16::from_le_bytes([block[i], block[i + 1]]));
        i += 2;
        let mut matched = usize::from(token & 0x0f) + 4;
        if token & 0x0f == 0x0f {
            let Some(m) = ext(&mut i, matched) else { break };
            matched = m;
        }
        if offset == 0 || offset > out.len() {
            break; // a match before the start: corrupt from here on (see `zlib_prefix`)
        }
        let start = out.len() - offset;
        // Byte by byte: a match may overlap the bytes it is producing.
        for k in 0..matched.min(n - out.len()) {
            let b = out[start + k];
            out.push(b);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
