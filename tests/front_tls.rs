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
