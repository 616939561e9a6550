//! Client-to-server payload masking (RFC 6455 §5.3): XOR with a 4-byte key, resumable at any
//! byte offset of the payload so a frame can be unmasked piece by piece as it arrives.
//!
//! Hand-rolled because tungstenite 0.24 keeps its `apply_mask` in a private module
//! (`protocol::frame::mask` is not re-exported). This version is safe code: the key is
//! spread over a 64-byte block and XORed a block at a time, a loop the compiler turns into
//! SIMD, then the tail 8 bytes and then 1 byte at a time.

/// Bytes XORed per block; a multiple of 4 so every block starts at the same key phase.
const BLOCK: usize = 64;

/// XORs `buf` with `key` as if `buf` started `offset` bytes into a masked payload.
///
/// Masking is its own inverse: the same call masks and unmasks.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: u64) {
    let phase = (offset % 4) as usize;
    let key = [
        key[phase],
        key[(phase + 1) % 4],
        key[(phase + 2) % 4],
        key[(phase + 3) % 4],
    ];
    let mut block_key = [0u8; BLOCK];
    for (i, b) in block_key.iter_mut().enumerate() {
        *b = key[i % 4];
    }
    let mut blocks = buf.chunks_exact_mut(BLOCK);
    for block in &mut blocks {
        for (b, k) in block.iter_mut().zip(block_key.iter()) {
            *b ^= *k;
        }
    }
    // The tail of a small frame (a browser's input events are tens of bytes): 8 bytes at
    // a time, then single bytes.
    let mut words = blocks.into_remainder().chunks_exact_mut(8);
    for word in &mut words {
        for (b, k) in word.iter_mut().zip(block_key.iter()) {
            *b ^= *k;
        }
    }
    for (b, k) in words.into_remainder().iter_mut().zip(block_key.iter()) {
        *b ^= *k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(buf: &mut [u8], key: [u8; 4], offset: u64) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[((offset + i as u64) % 4) as usize];
        }
    }

    #[test]
    fn matches_the_bytewise_definition_at_every_length_and_offset() {
        let key = [0x6d, 0xb6, 0xb2, 0x80];
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in [0, 1, 3, 4, 5, 63, 64, 65, 127, 128, 129, 300] {
            for offset in 0..8 {
                let mut fast = data[..len].to_vec();
                let mut slow = data[..len].to_vec();
                apply_mask(&mut fast, key, offset);
                reference(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn unmasking_in_pieces_equals_unmasking_at_once() {
        let key = [1, 2, 3, 4];
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        let mut pieces = data.clone();
        let mut at = 0;
        for len in [1usize, 2, 3, 5, 70, 129, 300, 490] {
            apply_mask(&mut pieces[at..at + len], key, at as u64);
            at += len;
        }
        assert_eq!(at, pieces.len());
        assert_eq!(whole, pieces);
    }
}
