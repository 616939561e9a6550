//! The client leg of the handshake: the client's hello, the challenge, the check of its
//! answer, and the choice of its session. With a password file, failed logins feed the
//! shared throttle (`engine/auth_throttle.rs`): a blocked address or user is refused
//! before the challenge, and again before its answer is checked (attempts sent in
//! parallel do not all get through).

use std::time::Instant;

use super::reader::{PacketReader, ReadError};
use super::{disconnect_frame, Refusal, RefusalKind, XpraDoor};
use crate::control::stats::ShardStats;
use crate::engine::auth_throttle::Blocked;
use crate::engine::log_rate::LogRate;
use crate::front::dispatch::Ctx;
use crate::relay::stream::ByteStream;
use std::sync::Arc;

use crate::xpra::auth::{requested_display, Challenge, SessionTarget, Transport};
use crate::xpra::header::Compression;
use crate::xpra::header::Encoding;
use crate::xpra::packet::{encode_frame, Packet};
use crate::xpra::Value;

/// xpra's disconnect reason codes (xpra/util.py), which clients print and act on.
pub mod reason {
    pub const LOGIN_TIMEOUT: &str = "login timeout";
    pub const PROTOCOL_ERROR: &str = "protocol error";
    pub const AUTHENTICATION_ERROR: &str = "authentication error";
    pub const SESSION_NOT_FOUND: &str = "session not found error";
    pub const SERVER_ERROR: &str = "server error";
    pub const IDLE_TIMEOUT: &str = "idle timeout";
    /// Not one of xpra's own (its servers have no session limit); clients print it as
    /// given, with the detail: `--max-sessions` or `--max-sessions-per-client` is reached.
    pub const SERVER_FULL: &str = "server full";
}

/// What a throttled client is told: no more than it knows (not whether its address or the
/// user is blocked).
pub const THROTTLED: &str = "too many failed logins";

/// A client that passed authentication, and where it goes.
pub struct Admitted {
    pub username: Option<String>,
    /// The uid whose local sessions the user may join (multifile's uid column).
    pub uid: u32,
    pub target: SessionTarget,
    pub env: Vec<(String, String)>,
    pub session_options: Vec<(String, String)>,
    /// The client's last hello (its capabilities).
    pub caps: Value,
    /// The encoder the client writes with; the proxy answers in it.
    pub encoding: Encoding,
    /// Time from sending the challenge to its answer (the client's round trip).
    pub client_rtt_ms: Option<f64>,
    /// Bytes the client sent past its hello.
    pub leftover: Vec<u8>,
}

/// Runs the client leg. On refusal, the caller sends the disconnect and closes.
pub async fn admit(
    door: &XpraDoor,
    client: &impl ByteStream,
    ctx: &Ctx<'_>,
) -> Result<Admitted, Refusal> {
    let dp = ctx.dp;
    let deadline = Instant::now() + door.pre_auth_timeout;
    let mut reader = PacketReader::new(door.pre_auth_limits());
    let first = reader
        .next(client, deadline, dp)
        .await
        .map_err(|e| refusal_for_read(e, Encoding::Rencode, door, ctx))?;
    let encoding = first.encoding;
    let caps = hello_caps(first.packet).ok_or_else(|| {
        Refusal::new(
            reason::PROTOCOL_ERROR,
            "invalid packet: expected a hello",
            encoding,
        )
    })?;
    if caps.get("cipher").is_some_and(Value::is_true) {
        return Err(Refusal::new(
            reason::PROTOCOL_ERROR,
            "packet encryption is not supported by this proxy: connect with TLS instead",
            encoding,
        ));
    }
    let username = caps
        .get("username")
        .and_then(Value::as_str)
        .map(String::from);

    let (entry_displays, uid, env, session_options, caps, rtt) = match &door.auth {
        super::AuthMode::Allow { session } => (
            vec![session.clone()],
            // SAFETY: getuid(2) cannot fail.
            unsafe { libc::getuid() },
            vec![],
            vec![],
            caps,
            None,
        ),
        super::AuthMode::MultiFile(file) => {
            let ip = ctx.client_addr.map(|a| a.ip());
            let user = username.as_deref();
            let throttled = |b: Blocked| {
                ShardStats::add(&ctx.live.stats.auth_throttled, 1);
                let detail = format!("{THROTTLED}; retry in {} s", b.retry_secs());
                Refusal::throttled(&detail, encoding)
            };
            ctx.throttle.check(ip, user).map_err(throttled)?;
            let transport = if client.is_tls() {
                Transport::Tls
            } else if client.is_local() {
                Transport::Loopback
            } else {
                Transport::Plain
            };
            let mut challenge = Challenge::new(&caps, transport, Arc::clone(&door.ledger))
                .map_err(|e| {
                    Refusal::new(reason::AUTHENTICATION_ERROR, &e.to_string(), encoding)
                })?;
            let frame = encode_frame(
                &Packet {
                    items: challenge.packet(),
                },
                encoding,
                Compression::None,
            )
            .map_err(|e| Refusal::new(reason::SERVER_ERROR, &e.to_string(), encoding))?;
            let sent = Instant::now();
            client
                .write_all(&frame)
                .await
                .map_err(|_| Refusal::silent())?;
            let answer = reader
                .next(client, deadline, dp)
                .await
                .map_err(|e| refusal_for_read(e, encoding, door, ctx))?;
            let rtt = sent.elapsed().as_secs_f64() * 1e3;
            let caps = hello_caps(answer.packet).ok_or_else(|| {
                Refusal::new(
                    reason::PROTOCOL_ERROR,
                    "invalid packet: expected a hello with the challenge response",
                    encoding,
                )
            })?;
            ctx.throttle.check(ip, user).map_err(throttled)?;
            let entry = user.and_then(|u| file.lookup(u));
            // An unknown user is checked against an empty password: it fails exactly like
            // a wrong one, so the answer does not tell which users exist.
            let password = entry.as_ref().map_or(&b""[..], |e| e.password.expose());
            let verified = challenge.verify(&caps, password);
            let entry = match (verified, entry) {
                (Ok(()), Some(entry)) => entry,
                _ => {
                    door.count_auth_failure();
                    ctx.throttle.failed(ip, user);
                    return Err(Refusal::new(
                        reason::AUTHENTICATION_ERROR,
                        "authentication failed",
                        encoding,
                    ));
                }
            };
            ctx.throttle.succeeded(ip, user);
            (
                entry.displays.clone(),
                entry.uid,
                entry.env.clone(),
                entry.session_options.clone(),
                caps,
                Some(rtt),
            )
        }
    };
    door.count_auth_success();
    let requested = requested_display(&caps);
    let target = crate::xpra::auth::choose(&entry_displays, requested.as_deref())
        .map_err(|e| Refusal::new(reason::SESSION_NOT_FOUND, &e.to_string(), encoding))?
        .clone();
    Ok(Admitted {
        username,
        uid,
        target,
        env,
        session_options,
        caps,
        encoding,
        client_rtt_ms: rtt,
        leftover: reader.into_leftover(),
    })
}

/// The capabilities dictionary of a hello packet, taken out of it.
pub fn hello_caps(packet: Packet) -> Option<Value> {
    let mut items = packet.items.into_iter();
    match (items.next(), items.next()) {
        (Some(kind), Some(caps @ Value::Dict(_))) if kind.as_str() == Some("hello") => Some(caps),
        _ => None,
    }
}

/// Login timeouts of every shard, logged at most a line a second.
static LOGIN_TIMEOUT_LOG: LogRate = LogRate::new();

fn refusal_for_read(err: ReadError, encoding: Encoding, door: &XpraDoor, ctx: &Ctx<'_>) -> Refusal {
    match err {
        ReadError::Timeout => {
            ShardStats::add(&ctx.live.stats.login_timeouts, 1);
            if let Some(suppressed) = LOGIN_TIMEOUT_LOG.allow_counted() {
                let client = ctx
                    .client_addr
                    .map_or_else(|| "?".into(), |a| a.to_string());
                tracing::info!(
                    suppressed,
                    "xpra login timeout: {client} did not log in within {:?}",
                    door.pre_auth_timeout
                );
            }
            Refusal {
                kind: RefusalKind::LoginTimeout,
                ..Refusal::new(
                    reason::LOGIN_TIMEOUT,
                    "no valid hello before the deadline",
                    encoding,
                )
            }
        }
        ReadError::Protocol(e) => Refusal::new(reason::PROTOCOL_ERROR, &e.to_string(), encoding),
        ReadError::Closed | ReadError::Io(_) => Refusal::silent(),
    }
}

/// The frame that tells a client why it is being disconnected.
pub fn refusal_frame(refusal: &Refusal) -> Option<Vec<u8>> {
    refusal
        .code
        .map(|code| disconnect_frame(code, &refusal.detail, refusal.encoding))
}
