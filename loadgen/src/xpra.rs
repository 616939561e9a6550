//! The xpra handshake of `--protocol xpra`, both ends, and the multifile of loadgen's users.
//!
//! Client (session N): sends a rencode hello as user `userN` offering `hmac+sha256` for the
//! digest and the salt digest; answers a relay's `challenge` with userN's password (the
//! relay's own [`answer`]); done when a `hello` arrives. Without a relay (`--direct`) the
//! backend answers the first hello at once. A `disconnect` fails the session with its
//! reason ("authentication failed").
//!
//! Backend (a simulated xpra server): reads the hello the relay forwards, learns the
//! session from its `username`, answers `["hello", {...}]` (uncompressed rencode) naming the
//! session, which the client checks, so a hello routed to the wrong session is caught.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use bytes::BytesMut;
use deskrelay::xpra::auth::{answer, Transport};
use deskrelay::xpra::{encode_frame, Compression, Encoding, FrameDecoder, Limits, Packet, Value};

use crate::net::Conn;
use crate::protocol::SetupError;

/// The xpra version both ends announce.
pub const VERSION: &str = "3.1.3";
/// The digests the client offers (for both `digest` and `salt-digest`).
pub const DIGESTS: &[&str] = &["hmac+sha256"];
/// The hello key the backend names the session under.
const SESSION_KEY: &str = "loadgen.session";
/// Bytes read per attempt during the handshake.
const READ_SIZE: usize = 16 * 1024;

/// The login of session `id`.
pub fn username(id: u32) -> String {
    format!("user{id}")
}

fn dict(pairs: Vec<(&str, Value)>) -> Value {
    Value::Dict(pairs.into_iter().map(|(k, v)| (Value::str(k), v)).collect())
}

fn strings(items: &[&str]) -> Value {
    Value::List(items.iter().map(|s| Value::str(s)).collect())
}

/// The capabilities of session `id`'s client hello: an xpra 3.1.3 client's essentials,
/// asking for uncompressed rencode.
pub fn client_hello(id: u32) -> Value {
    dict(vec![
        ("version", Value::str(VERSION)),
        ("username", Value::str(&username(id))),
        (
            "uuid",
            Value::str(&format!("{:032x}", 0x1d_0000_0000u64 + id as u64)),
        ),
        ("client_type", Value::str("loadgen")),
        ("platform", Value::str("linux")),
        ("challenge", Value::Bool(true)),
        ("digest", strings(DIGESTS)),
        ("salt-digest", strings(DIGESTS)),
        ("rencode", Value::Bool(true)),
        ("bencode", Value::Bool(true)),
        ("compression_level", Value::Int(0)),
        ("zlib", Value::Bool(false)),
        ("lz4", Value::Bool(false)),
        ("share", Value::Bool(false)),
        ("steal", Value::Bool(true)),
        ("windows", Value::Bool(true)),
        ("keyboard", Value::Bool(true)),
        ("mouse", Value::Bool(true)),
        ("encodings", strings(&["rgb24", "png", "jpeg"])),
        (
            "desktop_size",
            Value::List(vec![Value::Int(1920), Value::Int(1080)]),
        ),
    ])
}

/// The capabilities of the simulated server's hello for session `id`.
pub fn server_hello(id: u32) -> Value {
    dict(vec![
        ("version", Value::str(VERSION)),
        ("server_type", Value::str("loadgen")),
        ("platform", Value::str("linux")),
        ("rencode", Value::Bool(true)),
        ("bencode", Value::Bool(true)),
        ("compression_level", Value::Int(0)),
        ("zlib", Value::Bool(false)),
        ("lz4", Value::Bool(false)),
        ("encodings", strings(&["rgb24", "png", "jpeg"])),
        (
            "actual_desktop_size",
            Value::List(vec![Value::Int(1920), Value::Int(1080)]),
        ),
        (SESSION_KEY, Value::Int(id as i64)),
    ])
}

/// A packet as one uncompressed rencode frame.
pub fn frame(items: Vec<Value>) -> Vec<u8> {
    encode_frame(&Packet::new(items), Encoding::Rencode, Compression::None)
        .expect("rencode carries every value")
}

/// Whole packets read from one connection during the handshake.
struct PacketReader {
    decoder: FrameDecoder,
    buf: BytesMut,
}

impl PacketReader {
    fn new() -> Self {
        Self {
            decoder: FrameDecoder::new(Limits::default()),
            buf: BytesMut::new(),
        }
    }

    /// The next packet; None when the peer closed before sending a byte.
    async fn next(&mut self, conn: &Conn) -> Result<Option<Packet>, SetupError> {
        let mut chunk = [0u8; READ_SIZE];
        loop {
            let decoded = self
                .decoder
                .decode(&mut self.buf)
                .map_err(|e| SetupError::Protocol(format!("xpra: {e}")))?;
            if let Some(d) = decoded {
                return Ok(Some(d.packet));
            }
            let n = conn.read(&mut chunk).await?;
            if n == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(SetupError::Io(io::ErrorKind::UnexpectedEof.into()))
                };
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The bytes read past the last packet.
    fn into_leftover(self) -> Vec<u8> {
        self.buf.to_vec()
    }
}

fn hello_caps(p: &Packet) -> Option<&Value> {
    match p.items.as_slice() {
        [_, caps @ Value::Dict(_), ..] if p.kind() == Some("hello") => Some(caps),
        _ => None,
    }
}

/// The client's end; returns the bytes read past the server's hello.
pub async fn client_handshake(
    conn: &Conn,
    session: u32,
    password: Option<&[u8]>,
) -> Result<Vec<u8>, SetupError> {
    let mut hello = client_hello(session);
    conn.write_all(&frame(vec![Value::str("hello"), hello.clone()]))
        .await?;
    let mut reader = PacketReader::new();
    let mut answered = false;
    loop {
        let packet = reader.next(conn).await?.ok_or_else(|| {
            SetupError::Protocol("xpra: closed without an answer to the hello".into())
        })?;
        match packet.kind() {
            Some("hello") => {
                let caps = hello_caps(&packet)
                    .ok_or_else(|| SetupError::Protocol("xpra: a hello without caps".into()))?;
                // Absent when an external relay talks to another kind of server.
                if let Some(v) = caps.get(SESSION_KEY) {
                    if v.as_int() != Some(session as i64) {
                        return Err(SetupError::Protocol(
                            "xpra: the hello of another session".into(),
                        ));
                    }
                }
                return Ok(reader.into_leftover());
            }
            Some("challenge") if !answered => {
                let password = password.ok_or_else(|| {
                    SetupError::Protocol(
                        "xpra: challenged, but loadgen has no password (--xpra-users)".into(),
                    )
                })?;
                answer(&packet.items, password, Transport::Loopback)
                    .map_err(|e| SetupError::Protocol(format!("xpra: {e}")))?
                    .apply(&mut hello);
                conn.write_all(&frame(vec![Value::str("hello"), hello.clone()]))
                    .await?;
                answered = true;
            }
            Some("disconnect") => {
                let why = packet.items[1..]
                    .iter()
                    .filter_map(Value::as_str)
                    .next_back()
                    .unwrap_or("disconnected");
                return Err(SetupError::Refused(why.to_string()));
            }
            other => {
                return Err(SetupError::Protocol(format!(
                    "xpra: a {} packet before the hello",
                    other.unwrap_or("non-string")
                )))
            }
        }
    }
}

/// The simulated server's end: the session named by the hello's username and the bytes
/// read past the hello, or None when the peer closed at once.
pub async fn server_handshake(conn: &Conn) -> Result<Option<(u32, Vec<u8>)>, SetupError> {
    let mut reader = PacketReader::new();
    let Some(packet) = reader.next(conn).await? else {
        return Ok(None);
    };
    let caps = hello_caps(&packet)
        .ok_or_else(|| SetupError::Protocol("xpra: the first packet is not a hello".into()))?;
    let session = caps
        .get("username")
        .and_then(Value::as_str)
        .and_then(|u| u.strip_prefix("user"))
        .and_then(|n| n.parse::<u32>().ok())
        .ok_or_else(|| SetupError::Protocol("xpra: a hello without a loadgen user".into()))?;
    conn.write_all(&frame(vec![Value::str("hello"), server_hello(session)]))
        .await?;
    Ok(Some((session, reader.into_leftover())))
}

/// A server's wait for the client to leave once the session's data is done: until end of
/// stream, or a `disconnect` (what xpra's own proxy sends the server when its client
/// leaves; a server then closes). Other packets are read and dropped.
/// `leftover`: bytes read before, not yet decoded.
pub async fn until_disconnect(conn: &Conn, leftover: &[u8]) -> Result<(), SetupError> {
    let mut reader = PacketReader::new();
    reader.buf.extend_from_slice(leftover);
    while let Some(packet) = reader.next(conn).await? {
        if packet.kind() == Some("disconnect") {
            break;
        }
    }
    Ok(())
}

/// `n` random passwords (24 hex digits each) from the kernel's generator.
pub fn random_passwords(n: u32) -> io::Result<Vec<String>> {
    let mut bytes = vec![0u8; n as usize * 12];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes
        .chunks(12)
        .map(|c| c.iter().map(|b| format!("{b:02x}")).collect())
        .collect())
}

/// The multifile lines: `userI|password|1000|1000|tcp://BACKEND/||`.
pub fn multifile_text(passwords: &[String], backend: SocketAddr) -> String {
    passwords
        .iter()
        .enumerate()
        .map(|(i, pw)| format!("{}|{pw}|1000|1000|tcp://{backend}/||\n", username(i as u32)))
        .collect()
}

/// Writes `text` to `path`, readable by its owner only (the relay refuses anything more).
pub fn write_private(path: &Path, text: &str) -> io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(text.as_bytes())
}

/// The passwords of user0..user`n`-1 in an existing multifile; warns on stderr when a
/// user's sessions are not `tcp://backend/`.
pub fn read_multifile(path: &Path, n: u32, backend: SocketAddr) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut found: Vec<Option<String>> = vec![None; n as usize];
    let want = format!("tcp://{backend}/");
    let mut elsewhere = 0;
    for line in text.lines() {
        let fields: Vec<&str> = line.split('|').collect();
        let Some(i) = fields
            .first()
            .and_then(|u| u.strip_prefix("user"))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&i| i < n as usize)
        else {
            continue;
        };
        if found[i].is_none() {
            found[i] = fields.get(1).map(|p| p.to_string());
            let displays = fields.get(4).copied().unwrap_or("");
            if displays.trim_end_matches('/') != want.trim_end_matches('/') {
                elsewhere += 1;
            }
        }
    }
    if elsewhere > 0 {
        eprintln!(
            "loadgen: {elsewhere} users of {} do not point at {want}, where the backends \
             listen; their sessions will fail unless the relay forwards there anyway",
            path.display()
        );
    }
    let missing = found.iter().filter(|p| p.is_none()).count();
    if missing > 0 {
        bail!(
            "{} has no line for {missing} of the users user0..user{}: delete it to have \
             loadgen write a new one",
            path.display(),
            n - 1
        );
    }
    Ok(found.into_iter().map(Option::unwrap_or_default).collect())
}

/// A secret file (the relay child's xpra multifile, or its WebSocket token file) in a
/// private temporary directory, removed on drop.
pub struct TempPrivateFile {
    dir: PathBuf,
    pub path: PathBuf,
}

impl TempPrivateFile {
    /// Writes `text` as `name` (mode 0600) in a fresh directory of mode 0700.
    pub fn write(name: &str, text: &str) -> io::Result<Self> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("loadgen-{}-{n}", std::process::id()));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let path = dir.join(name);
        let file = Self { dir, path };
        write_private(&file.path, text)?;
        Ok(file)
    }
}

impl Drop for TempPrivateFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multifile_round_trips_and_is_private() {
        let backend: SocketAddr = "127.0.0.1:4321".parse().unwrap();
        let pws = random_passwords(3).unwrap();
        assert_eq!(pws.len(), 3);
        assert!(pws.iter().all(|p| p.len() == 24) && pws[0] != pws[1]);
        let text = multifile_text(&pws, backend);
        assert!(text.starts_with(&format!(
            "user0|{}|1000|1000|tcp://127.0.0.1:4321/||\n",
            pws[0]
        )));
        let f = TempPrivateFile::write("users", &text).unwrap();
        let mode = std::fs::metadata(&f.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // The relay's own parser accepts it.
        deskrelay::xpra::auth::AuthFile::open(&f.path).unwrap();
        assert_eq!(read_multifile(&f.path, 3, backend).unwrap(), pws);
        assert!(read_multifile(&f.path, 4, backend).is_err());
        let dir = f.dir.clone();
        drop(f);
        assert!(!dir.exists());
    }

    #[test]
    fn hellos_encode_and_name_their_session() {
        let bytes = frame(vec![Value::str("hello"), server_hello(42)]);
        let mut buf = BytesMut::from(&bytes[..]);
        let d = FrameDecoder::new(Limits::default())
            .decode(&mut buf)
            .unwrap()
            .unwrap();
        assert_eq!(
            hello_caps(&d.packet).unwrap().get(SESSION_KEY),
            Some(&Value::Int(42))
        );
        let c = client_hello(7);
        assert_eq!(c.get("username").and_then(Value::as_str), Some("user7"));
        let size = frame(vec![Value::str("hello"), c]).len();
        eprintln!("client hello frame: {size} bytes");
        assert!(size < 1024, "{size}");
    }
}
