//! [`WsError`]: why a client's WebSocket frames were refused, and the close code to tell it.
//!
//! Every variant is a fault of the client (the decoder only sees what the browser sent), so
//! the session logs it at `warn`, sends a close frame with [`WsError::close_code`] and the
//! error's text as the reason (all messages fit a close frame), then drops the connection.

use tungstenite::protocol::frame::coding::CloseCode;

/// A protocol violation in the frames a client sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    /// Clients must mask every frame (RFC 6455 §5.1).
    #[error("client frame not masked")]
    Unmasked,
    /// The gateway bridges binary streams only; text is refused like websockify does.
    #[error("text frames not supported")]
    Text,
    /// A data frame's declared payload is over the limit; raised from the header alone.
    #[error("frame too large: {size} bytes, limit {limit}")]
    TooLarge { size: u64, limit: u64 },
    /// A 64-bit payload length with its most significant bit set (RFC 6455 §5.2).
    #[error("invalid payload length")]
    BadLength,
    /// A frame header the parser could not read.
    #[error("malformed frame header")]
    BadHeader,
    /// RSV1-3 set while no extension was negotiated.
    #[error("reserved bits set")]
    ReservedBits,
    /// An opcode RFC 6455 reserves (3-7, 11-15).
    #[error("reserved opcode {0}")]
    BadOpcode(u8),
    /// A control frame without FIN: control frames must not be fragmented.
    #[error("fragmented control frame")]
    FragmentedControl,
    /// A control frame payload over 125 bytes.
    #[error("control frame too long: {0} bytes")]
    ControlTooLong(u64),
    /// A continuation frame with no fragmented message open.
    #[error("continuation frame outside a message")]
    UnexpectedContinuation,
    /// A new data message started before the fragmented one before it ended.
    #[error("new message inside a fragmented message")]
    ExpectedContinuation,
    /// A close payload of exactly one byte.
    #[error("close frame payload of 1 byte")]
    CloseTooShort,
    /// A close status code that must not be sent (1005, 1006, 1015, unassigned, < 1000).
    #[error("invalid close code {0}")]
    BadCloseCode(u16),
    /// A close reason that is not UTF-8.
    #[error("close reason not UTF-8")]
    CloseReasonNotUtf8,
}

impl WsError {
    /// The status code of the close frame that answers this error.
    pub fn close_code(&self) -> CloseCode {
        match self {
            WsError::Text => CloseCode::Unsupported,
            WsError::TooLarge { .. } => CloseCode::Size,
            // RFC 6455 §8.1: data that is not valid UTF-8 where UTF-8 is required.
            WsError::CloseReasonNotUtf8 => CloseCode::Invalid,
            WsError::Unmasked
            | WsError::BadLength
            | WsError::BadHeader
            | WsError::ReservedBits
            | WsError::BadOpcode(_)
            | WsError::FragmentedControl
            | WsError::ControlTooLong(_)
            | WsError::UnexpectedContinuation
            | WsError::ExpectedContinuation
            | WsError::CloseTooShort
            | WsError::BadCloseCode(_) => CloseCode::Protocol,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_rfc_6455_and_websockify() {
        assert_eq!(u16::from(WsError::Unmasked.close_code()), 1002);
        assert_eq!(u16::from(WsError::Text.close_code()), 1003);
        let big = WsError::TooLarge {
            size: u64::MAX,
            limit: 1 << 20,
        };
        assert_eq!(u16::from(big.close_code()), 1009);
        assert_eq!(u16::from(WsError::ControlTooLong(126).close_code()), 1002);
        assert_eq!(u16::from(WsError::CloseReasonNotUtf8.close_code()), 1007);
    }

    #[test]
    fn every_message_fits_a_close_reason() {
        let worst = WsError::TooLarge {
            size: u64::MAX,
            limit: u64::MAX,
        };
        assert!(worst.to_string().len() <= 123);
    }
}
