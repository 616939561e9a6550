//! Cross-checks against xpra 3.1.3 itself: its `gendigest`, its client's
//! `send_challenge_reply`, its `multifile` authenticator. Runs Debian's `/usr/bin/python3`
//! (which has the `xpra` package) from the temp dir, so nothing in our tree shadows a module.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use rand::RngCore;

use super::{dict, strs, TempDir};
use crate::xpra::auth::{answer, AuthError, Challenge, Digest, SaltLedger, Transport};
use crate::xpra::Value;

const PYTHON: &str = "/usr/bin/python3";

fn python() -> Command {
    let mut cmd = Command::new(PYTHON);
    cmd.current_dir(std::env::temp_dir());
    cmd
}

/// Runs `script` with `args` and `input` on stdin; returns stdout, failing with stderr.
fn run_python(script: &str, args: &[&str], input: &str) -> String {
    let mut child = python()
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run /usr/bin/python3 (the test setup installs python3 and xpra)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write to python");
    let out = child.wait_with_output().expect("python output");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn random(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut v);
    v
}

const GENDIGEST: &str = r#"
import sys, binascii
from xpra.net.digest import gendigest
for line in sys.stdin:
    d, k, m = line.split()
    v = gendigest(d, binascii.unhexlify(k), binascii.unhexlify(m))
    if isinstance(v, str):
        v = v.encode("latin1")
    print(binascii.hexlify(v).decode())
"#;

#[test]
fn gendigest_matches_xpra_for_every_digest() {
    let mut cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"secret".to_vec(), random(64)),
        (random(32), random(64)),
        (b"p\xe9ss\x00w\xffrd".to_vec(), b"x".to_vec()),
        (random(200), random(64)), // key longer than every hash's block
        (b"abc".to_vec(), b"12345".to_vec()),
    ];
    // The shape of the second step: the key is a password, the message a hex salt.
    cases.push((b"hunter2".to_vec(), hex::encode(random(64)).into_bytes()));
    let mut input = String::new();
    let mut expected = Vec::new();
    for d in Digest::PREFERENCE {
        for (k, m) in &cases {
            input += &format!("{} {} {}\n", d.name(), hex::encode(k), hex::encode(m));
            expected.push((d, hex::encode(d.compute(k, m))));
        }
    }
    let got = run_python(GENDIGEST, &[], &input);
    let got: Vec<&str> = got.lines().collect();
    assert_eq!(got.len(), expected.len(), "python answered every vector");
    for ((d, ours), theirs) in expected.iter().zip(got) {
        assert_eq!(ours, theirs, "{}", d.name());
    }
}

/// The hello capabilities a 3.1.3 client sends, and its `send_challenge_reply` run on the
/// challenge given as `salt_hex digest salt_digest password`.
const CLIENT: &str = r#"
import sys, binascii
from xpra.net.net_util import get_network_caps
from xpra.client.client_base import XpraClientBase
if sys.argv[1] == "caps":
    caps = get_network_caps()
    print(",".join(caps["digest"]))
    print(",".join(caps["salt-digest"]))
else:
    salt, digest, salt_digest, password = sys.argv[1:5]
    c = XpraClientBase.__new__(XpraClientBase)
    c.encryption = None
    out = {}
    c.do_send_challenge_reply = lambda r, s: out.update(r=r, s=s)
    packet = ["challenge", binascii.unhexlify(salt), "", digest, salt_digest, "password"]
    c.send_challenge_reply(packet, password)
    r = out["r"].encode("latin1") if isinstance(out["r"], str) else out["r"]
    print(binascii.hexlify(r).decode(), binascii.hexlify(out["s"]).decode())
"#;

#[test]
fn the_real_clients_answer_passes_verify_once() {
    let caps = run_python(CLIENT, &["caps"], "");
    let mut lines = caps.lines();
    let digests: Vec<&str> = lines.next().expect("digest list").split(',').collect();
    let salt_digests: Vec<&str> = lines.next().expect("salt-digest list").split(',').collect();
    let hello = dict(vec![
        ("challenge", Value::Bool(true)),
        ("username", Value::str("alice")),
        ("digest", strs(&digests)),
        ("salt-digest", strs(&salt_digests)),
    ]);
    let ledger = Arc::new(SaltLedger::default());
    let mut challenge =
        Challenge::new(&hello, Transport::Plain, ledger.clone()).expect("challenge");
    assert_eq!(challenge.digest(), Digest::HmacSha512, "what 3.1.3 picks");
    assert_eq!(challenge.salt_digest(), Digest::HmacSha512);
    let packet = challenge.packet();
    let salt = packet[1].as_bytes().expect("salt bytes");
    let reply = run_python(
        CLIENT,
        &[
            &hex::encode(salt),
            "hmac+sha512",
            "hmac+sha512",
            "s3cret pass",
        ],
        "",
    );
    let (response, client_salt) = reply.trim().split_once(' ').expect("two fields");
    let (response, client_salt) = (
        hex::decode(response).unwrap(),
        hex::decode(client_salt).unwrap(),
    );
    assert_eq!(client_salt.len(), 32);
    let second = dict(vec![
        ("challenge_response", Value::Str(response.clone())),
        ("challenge_client_salt", Value::Bytes(client_salt.clone())),
    ]);
    assert_eq!(challenge.verify(&second, b"s3cret pass"), Ok(()));
    assert_eq!(
        challenge.verify(&second, b"s3cret pass"),
        Err(AuthError::AlreadyAnswered)
    );
    // The same answer replayed to a fresh challenge is refused by the ledger.
    let mut again = Challenge::new(&hello, Transport::Plain, ledger).expect("challenge");
    assert_eq!(
        again.verify(&second, b"s3cret pass"),
        Err(AuthError::ReplayedSalt)
    );
}

/// xpra's own multifile authenticator issues a challenge and judges our answer.
const SERVER: &str = r#"
import sys, binascii
from xpra.server.auth.multifile_auth import Authenticator
a = Authenticator(sys.argv[2], filename=sys.argv[1])
offered = ["xor", "hmac", "hmac+sha512", "hmac+sha384", "hmac+sha256", "hmac+sha1"]
salt, digest = a.get_challenge(offered)
salt_digest = a.choose_salt_digest(offered[2:])
print(binascii.hexlify(salt).decode(), digest, salt_digest, flush=True)
response, client_salt = sys.stdin.readline().split()
# server_core reads both with typedict.strget: latin-1 text.
ok = a.authenticate(binascii.unhexlify(response).decode("latin1"),
                    binascii.unhexlify(client_salt).decode("latin1"))
print(ok, a.get_sessions()[2] if ok else None)
"#;

fn xpra_server_judges(file: &std::path::Path, user: &str, password: &[u8]) -> String {
    let mut child = python()
        .arg("-c")
        .arg(SERVER)
        .arg(file)
        .arg(user)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run /usr/bin/python3");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("challenge line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "challenge line: {line:?}");
    let packet = vec![
        Value::str("challenge"),
        Value::Bytes(hex::decode(fields[0]).expect("salt hex")),
        Value::str(""),
        Value::str(fields[1]),
        Value::str(fields[2]),
        Value::str("password"),
    ];
    let ours = answer(&packet, password, Transport::Plain).expect("answer");
    writeln!(
        stdin,
        "{} {}",
        hex::encode(ours.response()),
        hex::encode(ours.client_salt())
    )
    .expect("send answer");
    drop(stdin);
    let mut verdict = String::new();
    stdout.read_line(&mut verdict).expect("verdict");
    let status = child.wait().expect("python exit");
    assert!(status.success(), "python failed");
    verdict.trim().to_string()
}

#[test]
fn our_answer_passes_xpras_multifile_authenticator() {
    let dir = TempDir::new("py-multifile");
    let file = dir.write(
        "auth.txt",
        b"alice|open sesame|1000|1000|:10,tcp://b:1/\n",
        0o600,
    );
    assert_eq!(
        xpra_server_judges(&file, "alice", b"open sesame"),
        "True [':10', 'tcp://b:1/']"
    );
    assert_eq!(
        xpra_server_judges(&file, "alice", b"open sesame!"),
        "False None"
    );
}

/// xpra's own parser on a multifile (its warnings go to stderr), one line per user:
/// `user password uid gid displays env session_options`.
const PARSE: &str = r#"
import sys
from xpra.server.auth.multifile_auth import Authenticator
a = Authenticator("nobody-in-particular", filename=sys.argv[1])
with open(sys.argv[1], "rb") as f:
    users = a.parse_filedata(f.read())
pairs = lambda d: ";".join("%s=%s" % (k.decode(), v.decode()) for k, v in d.items())
for user in sorted(users):
    pw, uid, gid, displays, env, options = users[user]
    print("|".join((user.decode(), pw.decode(), str(uid), str(gid), ",".join(displays),
                    pairs(env), pairs(options))))
"#;

#[test]
fn multifile_parses_as_xpra_parses_it() {
    // Only lines both parsers accept, with explicit ids: with the gid left out xpra looks up
    // a "nobody" group, which Debian lacks, and falls back to its own gid (root's, 0).
    let data = b"# users of the proxy\n\n\
        alice|pw one|1000|1001|:10,tcp://h:1/|A=1;B=x=y;|compression=0\r\n\
        \t bob|pw2|daemon|daemon|:11||\n\
        carol|pw3|2000|2000|\n";
    let dir = TempDir::new("py-parse");
    let file = dir.write("auth.txt", data, 0o600);
    let theirs = run_python(PARSE, &[file.to_str().expect("utf-8 path")], "");
    let ours = crate::xpra::auth::multifile::parse(data).expect("parse");
    let mut names: Vec<&String> = ours.keys().collect();
    names.sort();
    let pairs = |v: &[(String, String)]| {
        v.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";")
    };
    let ours: Vec<String> = names
        .iter()
        .map(|n| {
            let e = &ours[*n];
            let displays: Vec<String> = e.displays.iter().map(|d| d.to_string()).collect();
            format!(
                "{}|{}|{}|{}|{}|{}|{}",
                e.username,
                String::from_utf8_lossy(e.password.expose()),
                e.uid,
                e.gid,
                displays.join(","),
                pairs(&e.env),
                pairs(&e.session_options)
            )
        })
        .collect();
    let theirs: Vec<&str> = theirs.lines().collect();
    assert_eq!(ours.len(), 3, "all three users parsed");
    // The first five fields agree. The last two never reach xpra 3.1.3 under Python 3: its
    // parse_simple_dict splits bytes on a str "=", and the TypeError drops every pair.
    let head = |line: &str| line.splitn(6, '|').take(5).collect::<Vec<_>>().join("|");
    let tail = |line: &str| line.splitn(6, '|').nth(5).unwrap_or_default().to_string();
    assert_eq!(
        ours.iter().map(|l| head(l)).collect::<Vec<_>>(),
        theirs.iter().map(|l| head(l)).collect::<Vec<_>>()
    );
    assert_eq!(tail(&ours[0]), "A=1;B=x=y|compression=0");
    assert_eq!(
        tail(theirs[0]),
        "|",
        "3.1.3 drops env_vars and session_options"
    );
}
