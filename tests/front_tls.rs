//! TLS on the shared port: a real xpra 3.1.3 client attaches over `ssl://` through the
//! sniffing door, and SIGHUP swaps the certificate without a restart.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::xpra::{ServerOpts, XpraClient, XpraServer, STARTUP};
use common::RelayProcess;

/// A scratch dir with a self-signed certificate for 127.0.0.1 (cert.pem, key.pem).
struct Certs {
    dir: PathBuf,
}

impl Certs {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("deskrelay-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let certs = Self { dir };
        certs.rotate();
        certs
    }

    /// Writes a fresh key pair over the files.
    fn rotate(&self) {
        let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .unwrap();
        std::fs::write(self.cert(), key.cert.pem()).unwrap();
        std::fs::write(self.key(), key.key_pair.serialize_pem()).unwrap();
        std::fs::set_permissions(self.key(), std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn users_file(dir: &Path, line: &str) -> PathBuf {
    let path = dir.join("users");
    std::fs::write(&path, format!("{line}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// The certificate the server at `addr` presents, as PEM (via openssl s_client).
fn presented_cert(addr: std::net::SocketAddr) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo | timeout 10 openssl s_client -connect {addr} 2>/dev/null | openssl x509"
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_real_client_attaches_over_tls_through_the_shared_port() {
    let server = XpraServer::start(ServerOpts::default());
    let certs = Certs::new("attach");
    let users = users_file(
        &certs.dir,
        &format!("amy|amy-pw|1000|1000|{}||", server.uri()),
    );
    let relay = RelayProcess::start(&[
        "--auth",
        &format!("multifile:{}", users.display()),
        "--tls-cert",
        certs.cert().to_str().unwrap(),
        "--tls-key",
        certs.key().to_str().unwrap(),
    ]);
    let uri = format!("ssl://amy@127.0.0.1:{}/", relay.addr.port());
    let client = XpraClient::attach(
        &uri,
        Some("amy-pw"),
        &["--ssl-server-verify-mode=none", "--ssl-check-hostname=no"],
    );
    let took = client
        .wait_for_window("xclock", STARTUP)
        .unwrap_or_else(|e| panic!("{e}\nrelay:\n{}", relay.stderr()));
    println!("attach over TLS through deskrelay -> xclock window mapped: {took:?}");
    // The same port still speaks plain xpra.
    let plain = XpraClient::attach(
        &format!("tcp://amy@127.0.0.1:{}/", relay.addr.port()),
        Some("amy-pw"),
        &[],
    );
    plain.wait_for_window("xclock", STARTUP).unwrap();
}

#[test]
fn sighup_swaps_the_certificate_for_new_connections() {
    let certs = Certs::new("reload");
    let users = users_file(&certs.dir, "bo|bo-pw|1000|1000|tcp://127.0.0.1:9/||");
    let relay = RelayProcess::start(&[
        "--auth",
        &format!("multifile:{}", users.display()),
        "--tls-cert",
        certs.cert().to_str().unwrap(),
        "--tls-key",
        certs.key().to_str().unwrap(),
    ]);
    let before = presented_cert(relay.addr);
    assert!(
        before.contains("BEGIN CERTIFICATE"),
        "no TLS answer: {before:?}\n{}",
        relay.stderr()
    );
    certs.rotate();
    assert_eq!(
        presented_cert(relay.addr),
        before,
        "no reload without SIGHUP"
    );
    relay.signal(libc::SIGHUP);
    assert!(relay.wait_for_log("TLS certificate reloaded", Duration::from_secs(10)));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let after = presented_cert(relay.addr);
        if after.contains("BEGIN CERTIFICATE") && after != before {
            break;
        }
        assert!(Instant::now() < deadline, "still the old certificate");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A broken file on reload keeps the current certificate.
    std::fs::write(certs.key(), "not a key").unwrap();
    relay.signal(libc::SIGHUP);
    assert!(relay.wait_for_log(
        "not reloaded, keeping the current one",
        Duration::from_secs(10)
    ));
    assert!(presented_cert(relay.addr).contains("BEGIN CERTIFICATE"));
}

#[test]
fn tls_traffic_that_is_not_xpra_is_relayed_in_plaintext_to_the_fallback() {
    let echo = common::Backend::echo();
    let certs = Certs::new("fallback");
    let users = users_file(&certs.dir, "cy|cy-pw|1000|1000|tcp://127.0.0.1:9/||");
    let relay = RelayProcess::start(&[
        "--auth",
        &format!("multifile:{}", users.display()),
        "--tls-cert",
        certs.cert().to_str().unwrap(),
        "--tls-key",
        certs.key().to_str().unwrap(),
        "--fallback",
        &echo.addr.to_string(),
    ]);
    // An independent TLS client (Python's ssl, i.e. OpenSSL): 1 MiB through and back.
    let script = format!(
        r#"
import socket, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", {port}), timeout=20))
data = bytes((i * 7) % 251 for i in range(1 << 20))
s.sendall(b"DATA" + data)
got = b""
while len(got) < len(data) + 4:
    chunk = s.recv(65536)
    if not chunk:
        break
    got += chunk
print(s.version(), "ok" if got == b"DATA" + data else "mismatch %d" % len(got))
"#,
        port = relay.addr.port()
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.trim_end().ends_with("ok"),
        "{text}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        relay.stderr()
    );
    assert!(text.starts_with("TLSv1.3"), "{text}");
}
