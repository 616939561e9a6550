//! The WebSocket frame layer of the browser front door, sans-I/O (RFC 6455, server side).

mod encoder;
mod error;
mod mask;

/// Largest control frame payload (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

pub use encoder::{
    binary_header, client_binary, client_close, client_frame, close, ping, pong, MAX_SERVER_HEADER,
};
pub use error::WsError;
pub use mask::apply_mask;
pub use tungstenite::protocol::frame::coding::{self, CloseCode, OpCode};
