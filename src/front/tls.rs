//! TLS on the shared port (rustls): the server configuration, certificate reload, and
//! [`TlsStream`], a [`ByteStream`] over a [`Conn`] that the doors behind it use unchanged.
//!
//! rustls is driven sans-I/O (`read_tls` / `process_new_packets` / `write_tls`) from the
//! shard's own reads and writes, so TLS adds no thread and no runtime adapter. TLS 1.2 and
//! 1.3 only (rustls has nothing older), ALPN `http/1.1` offered for browsers; xpra clients
//! send no ALPN. kTLS is not used: see ARCHITECTURE.md.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use futures_lite::future::poll_fn;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, ServerConnection};

use crate::engine::runtime::Conn;
use crate::relay::stream::ByteStream;

/// Ciphertext read per attempt.
const TLS_READ: usize = 16 * 1024 + 256;

/// The certificate and key files, and the key pair loaded from them (replaced on reload).
#[derive(Debug)]
pub struct CertStore {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertStore {
    /// Loads `cert` (PEM chain) and `key` (PEM private key); errors name the file.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, String> {
        let loaded = load_pair(cert, key)?;
        Ok(Arc::new(Self {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(Arc::new(loaded)),
        }))
    }

    /// Loads the files again; on error the current pair stays in use.
    pub fn reload(&self) -> Result<(), String> {
        let loaded = load_pair(&self.cert, &self.key)?;
        *self.current.write().expect("not poisoned") = Arc::new(loaded);
        Ok(())
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.current.read().expect("not poisoned")))
    }
}

fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in it", cert.display()));
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key_der)
        .map_err(|e| format!("{}: {e}", key.display()))?;
    Ok(CertifiedKey::new(chain, signing))
}

/// The TLS server configuration every shard shares.
pub fn server_config(certs: Arc<CertStore>) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("ring supports TLS 1.2 and 1.3")
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A TLS session over a client connection.
pub struct TlsStream {
    conn: Conn,
    tls: RefCell<ServerConnection>,
}

impl TlsStream {
    /// Runs the server handshake on `conn`, whose first bytes (`already_read`, the
    /// sniffer's) are the start of the ClientHello.
    pub async fn accept(
        conn: Conn,
        already_read: &[u8],
        config: Arc<ServerConfig>,
    ) -> io::Result<TlsStream> {
        let mut tls = ServerConnection::new(config).map_err(io::Error::other)?;
        let mut first = already_read;
        while !first.is_empty() {
            tls.read_tls(&mut first)?;
        }
        let stream = TlsStream {
            conn,
            tls: RefCell::new(tls),
        };
        stream.process()?;
        while stream.tls.borrow().is_handshaking() {
            stream.flush().await?;
            if stream.tls.borrow().wants_read() {
                let n = poll_fn(|cx| stream.poll_ciphertext(cx)).await?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            }
        }
        stream.flush().await?;
        Ok(stream)
    }

    /// Feeds received ciphertext to rustls; a TLS error sends its alert and fails.
    fn process(&self) -> io::Result<()> {
        let result = self.tls.borrow_mut().process_new_packets();
        result.map(drop).map_err(|e| {
            // The alert rustls queued goes out with the next flush; best effort here.
            let mut out = Vec::new();
            let _ = self.tls.borrow_mut().write_tls(&mut out);
            let _ = nonblocking_send(&self.conn, &out);
            io::Error::new(io::ErrorKind::InvalidData, e)
        })
    }

    /// Reads one batch of ciphertext from the socket into rustls. Ready(0) at EOF.
    fn poll_ciphertext(&self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut buf = [0u8; TLS_READ];
        let n = match self.conn.poll_read(cx, &mut buf) {
            Poll::Ready(Ok(n)) => n,
            other => return other,
        };
        let mut data = &buf[..n];
        while !data.is_empty() {
            self.tls.borrow_mut().read_tls(&mut data)?;
            self.process()?;
        }
        Poll::Ready(Ok(n))
    }

    /// Writes out whatever rustls has queued (handshake messages, records, alerts).
    async fn flush(&self) -> io::Result<()> {
        let mut out = Vec::new();
        while self.tls.borrow().wants_write() {
            self.tls.borrow_mut().write_tls(&mut out)?;
        }
        if !out.is_empty() {
            self.conn.write_all(&out).await?;
        }
        Ok(())
    }

    /// Whether the client negotiated HTTP (ALPN), e.g. a browser.
    pub fn alpn_http(&self) -> bool {
        self.tls.borrow().alpn_protocol() == Some(b"http/1.1")
    }
}

/// Sends what fits now, without waiting (for alerts on the way out).
fn nonblocking_send(conn: &Conn, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: send(2) on a descriptor owned by a live Conn, from a live buffer.
    let n = unsafe {
        libc::send(
            conn.fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

impl ByteStream for TlsStream {
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            match self.tls.borrow_mut().reader().read(buf) {
                Ok(n) => return Poll::Ready(Ok(n)), // n == 0: close_notify received
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            match self.poll_ciphertext(cx) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(0)),
                Poll::Ready(Ok(_)) => continue,
                other => return other,
            }
        }
    }

    async fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        // rustls takes plaintext up to its buffer limit; what it took is encrypted and
        // written before the rest is offered, so memory stays bounded.
        let mut rest = buf;
        while !rest.is_empty() {
            let n = self.tls.borrow_mut().writer().write(rest)?;
            rest = &rest[n..];
            self.flush().await?;
        }
        Ok(())
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.tls.borrow_mut().send_close_notify();
        let mut out = Vec::new();
        while self.tls.borrow().wants_write() {
            self.tls.borrow_mut().write_tls(&mut out)?;
        }
        let _ = nonblocking_send(&self.conn, &out);
        self.conn.shutdown_write()
    }

    fn shutdown_read(&self) {
        self.conn.shutdown_read()
    }

    fn shutdown_both(&self) {
        self.conn.shutdown_both()
    }

    fn is_local(&self) -> bool {
        self.conn.is_local()
    }

    fn bytes_acked(&self) -> Option<u64> {
        self.conn.bytes_acked()
    }

    fn is_tls(&self) -> bool {
        true
    }
}
