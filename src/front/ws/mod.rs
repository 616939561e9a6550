//! The WebSocket frame layer of the browser front door, sans-I/O (RFC 6455, server side).
//!
//! The relay bridges a browser's binary messages to a TCP byte stream, the way websockify
//! does, without its copies:
//!
//! - client to backend: [`ServerDecoder::decode_in_place`] unmasks payload in the read
//!   buffer and reports [`Step`]s as ranges of it; `Step::Data` ranges go to the backend
//!   as they are, a big frame in pieces as its bytes arrive. Pings are answered with
//!   [`pong`]; a [`WsError`] is answered with [`close`] of its [`WsError::close_code`]
//!   (1002 protocol, 1003 text, 1009 too large) and the connection dropped. A read buffer
//!   holds at least [`MIN_BUFFER`] bytes, so that any control frame fits in it whole.
//! - backend to client: each read becomes one binary frame, [`binary_header`] written with
//!   the payload slice in one vectored write.
//!
//! Header parsing and formatting, opcodes and close codes are tungstenite's
//! (`protocol::frame`); masking is ours ([`apply_mask`]) because 0.24 does not export its
//! own. The handshake lives elsewhere; no extension (permessage-deflate) is negotiated, so
//! reserved bits are refused.

mod decoder;
mod encoder;
mod error;
mod mask;
mod stream;
mod write_turn;

pub use decoder::{Event, ServerDecoder, Step, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, MIN_BUFFER};
pub use encoder::{
    binary_header, client_binary, client_close, client_frame, close, ping, pong, MAX_SERVER_HEADER,
};
pub use error::WsError;
pub use mask::apply_mask;
pub use stream::WsStream;
pub use tungstenite::protocol::frame::coding::{self, CloseCode, OpCode};
