//! [`ProtocolError`]: why a frame, payload or value could not be read or written.
//!
//! Every message is short, names no internal detail a client could exploit, and reads well
//! as the reason of an xpra `disconnect` packet, so the session can send `err.to_string()`
//! to the peer that caused it. Which side caused it (client or backend) is the caller's to
//! record: the codec only sees bytes.

/// An error of the xpra wire codec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The header's payload size is over the limit; raised before the payload is buffered.
    #[error("packet too large: {size} bytes, limit {limit}")]
    TooLarge { size: usize, limit: usize },
    /// A payload would decompress (or claims it would) to more than the limit.
    #[error("decompressed packet too large: over {limit} bytes")]
    InflatedTooLarge { limit: usize },
    /// Bad magic byte or a zero payload size: this is not an xpra peer, or it lost framing.
    #[error("invalid packet header")]
    InvalidHeader,
    /// An encoder flag we recognise but do not speak (`yaml`, `cipher`).
    #[error("unsupported encoder ({0})")]
    UnsupportedEncoder(&'static str),
    /// A compressor we recognise but do not speak (`lzo`, `brotli`, `zstd`).
    #[error("unsupported compression ({0})")]
    UnsupportedCompression(&'static str),
    /// The payload does not decode: truncated, bad type code, bad number, too deep, ...
    #[error("corrupt payload: {0}")]
    Corrupt(&'static str),
    /// A chunk (raw item) frame with index 16 or more.
    #[error("invalid chunk index {0}")]
    ChunkIndex(u8),
    /// A second chunk frame for an index that is already pending.
    #[error("duplicate chunk at index {0}")]
    DuplicateChunk(u8),
    /// More chunk frames pending than xpra ever sends ahead of one packet.
    #[error("too many pending chunks: {0}")]
    TooManyChunks(usize),
    /// A value the chosen encoder cannot carry (bencode has no None and no float).
    #[error("cannot encode {0} with bencode")]
    Unencodable(&'static str),
}

/// Shorthand for the codec's results.
pub type Result<T> = std::result::Result<T, ProtocolError>;
