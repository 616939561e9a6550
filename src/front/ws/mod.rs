//! The WebSocket frame layer of the browser front door, sans-I/O (RFC 6455, server side).

mod error;
mod mask;

pub use error::WsError;
pub use mask::apply_mask;
pub use tungstenite::protocol::frame::coding::{self, CloseCode, OpCode};
