//! Frame encoding: the server's unmasked frames, and a client's masked ones for tests and the
//! load generator.
//!
//! Headers are written by tungstenite's [`FrameHeader::format`]. For binary data the server
//! gets only a header ([`binary_header`]), written next to the payload with one vectored
//! write, so relayed bytes are never copied into a frame buffer.

use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

use super::mask::apply_mask;
use super::MAX_CONTROL_PAYLOAD;

/// Longest header of a server frame: 2 bytes and a 64-bit length, no key.
pub const MAX_SERVER_HEADER: usize = 10;

/// The header of a final binary frame of `len` payload bytes: the array and how many of its
/// bytes to write before the payload.
pub fn binary_header(len: u64) -> ([u8; MAX_SERVER_HEADER], usize) {
    let header = FrameHeader {
        is_final: true,
        opcode: OpCode::Data(Data::Binary),
        ..FrameHeader::default()
    };
    let mut out = [0u8; MAX_SERVER_HEADER];
    let used = {
        let mut rest = &mut out[..];
        let written = header.format(len, &mut rest);
        debug_assert!(written.is_ok(), "an unmasked header fits 10 bytes");
        MAX_SERVER_HEADER - rest.len()
    };
    (out, used)
}

/// A close frame with `code` and `reason`; the reason is cut (at a character boundary) to
/// the 123 bytes a control frame leaves it.
pub fn close(code: CloseCode, reason: &str) -> Vec<u8> {
    let mut payload = Vec::with_capacity(MAX_CONTROL_PAYLOAD);
    payload.extend_from_slice(&u16::from(code).to_be_bytes());
    payload.extend_from_slice(truncate(reason, MAX_CONTROL_PAYLOAD - 2).as_bytes());
    frame(OpCode::Control(Control::Close), true, &payload, None)
}

/// A ping carrying `payload`, cut to 125 bytes.
pub fn ping(payload: &[u8]) -> Vec<u8> {
    let payload = &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)];
    frame(OpCode::Control(Control::Ping), true, payload, None)
}

/// A pong carrying `payload` (a ping's, which the decoder has checked), cut to 125 bytes.
pub fn pong(payload: &[u8]) -> Vec<u8> {
    let payload = &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)];
    frame(OpCode::Control(Control::Pong), true, payload, None)
}

/// A client's final binary frame carrying `payload` masked with `key`.
pub fn client_binary(payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    frame(OpCode::Data(Data::Binary), true, payload, Some(key))
}

/// A client's close frame (masked with `key`); the reason is cut to 123 bytes.
pub fn client_close(code: CloseCode, reason: &str, key: [u8; 4]) -> Vec<u8> {
    let mut payload = u16::from(code).to_be_bytes().to_vec();
    payload.extend_from_slice(truncate(reason, MAX_CONTROL_PAYLOAD - 2).as_bytes());
    frame(OpCode::Control(Control::Close), true, &payload, Some(key))
}

/// Any client frame, masked with `key`, exactly as asked: fragments, control frames and
/// frames a server must refuse (for tests).
pub fn client_frame(opcode: OpCode, is_final: bool, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    frame(opcode, is_final, payload, Some(key))
}

fn frame(opcode: OpCode, is_final: bool, payload: &[u8], key: Option<[u8; 4]>) -> Vec<u8> {
    let header = FrameHeader {
        is_final,
        opcode,
        mask: key,
        ..FrameHeader::default()
    };
    let len = payload.len() as u64;
    let mut out = Vec::with_capacity(header.len(len) + payload.len());
    let written = header.format(len, &mut out);
    debug_assert!(written.is_ok(), "writing to a Vec does not fail");
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = key {
        apply_mask(&mut out[start..], key, 0);
    }
    out
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::protocol::frame::{CloseFrame, Frame};

    /// tungstenite's own encoder, masking included: an independent reference.
    fn reference(header: FrameHeader, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Frame::from_payload(header, payload.to_vec())
            .format(&mut out)
            .expect("formats to a Vec");
        out
    }

    #[test]
    fn binary_header_uses_the_shortest_length_form() {
        for (len, want) in [(0u64, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)] {
            let (bytes, n) = binary_header(len);
            assert_eq!(n, want, "len {len}");
            let payload = vec![9u8; len as usize];
            let mut framed = bytes[..n].to_vec();
            framed.extend_from_slice(&payload);
            let header = FrameHeader {
                opcode: OpCode::Data(Data::Binary),
                ..FrameHeader::default()
            };
            assert_eq!(framed, reference(header, &payload), "len {len}");
        }
        let (bytes, n) = binary_header(u64::MAX >> 1);
        assert_eq!(
            &bytes[..n],
            &[0x82, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
    }

    #[test]
    fn client_frames_match_tungstenite_masking() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in [0usize, 1, 3, 4, 5, 64, 125, 126, 1000, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 31) as u8).collect();
            let header = FrameHeader {
                opcode: OpCode::Data(Data::Binary),
                mask: Some(key),
                ..FrameHeader::default()
            };
            assert_eq!(
                client_binary(&payload, key),
                reference(header, &payload),
                "len {len}"
            );
        }
    }

    #[test]
    fn control_frames_match_tungstenite() {
        let mut want = Vec::new();
        Frame::close(Some(CloseFrame {
            code: CloseCode::Size,
            reason: "too big".into(),
        }))
        .format(&mut want)
        .expect("formats");
        assert_eq!(close(CloseCode::Size, "too big"), want);
        assert_eq!(ping(b"hb"), [0x89, 2, b'h', b'b']);
        assert_eq!(pong(b""), [0x8a, 0]);
    }

    #[test]
    fn control_payloads_are_cut_to_125_bytes() {
        let long = "é".repeat(100); // 200 bytes, 2 per character
        let frame = close(CloseCode::Normal, &long);
        assert_eq!(frame[1] as usize, 2 + 122, "cut before a split character");
        assert!(std::str::from_utf8(&frame[4..]).is_ok());
        assert_eq!(ping(&[0u8; 300]).len(), 2 + 125);
        assert_eq!(pong(&[0u8; 126]).len(), 2 + 125);
    }
}
