//! Whether to upgrade a request to a WebSocket, where it then goes, and the `101` that says
//! so (RFC 6455 §4.2).
//!
//! Checks, in order, each refused before any upgrade: a valid handshake (400; a version
//! other than 13, or none, is 426 with `Sec-WebSocket-Version: 13`); the `Origin`
//! allow-list (403); the subprotocol; the route (403).
//!
//! Subprotocol: `binary` is echoed and chosen when offered (xpra's HTML5 client and noVNC
//! offer it; xpra's own Python client insists on seeing it back). A client that offers
//! subprotocols but not `binary` (say, websockify's old `base64`) is refused with 400, as
//! xpra's server does: we only relay binary frames, and browsers fail a connection whose
//! offered subprotocols all go unanswered anyway, so a clear refusal costs nothing. A client
//! offering none is upgraded without the header. Extensions (permessage-deflate) are never
//! accepted.
//!
//! Route: the target comes only from the token map. No token: [`Route::Xpra`]. `?token=`
//! found: [`Route::Token`]. Unknown or empty token, or no token map: 403. The path is
//! ignored (xpra's client puts its page's path there), and a query naming a target itself
//! (`host=`, `port=`, `target=`, the nginx `/x2gows/<port>` hole in query form) is refused
//! with 403: no URL can pick a local port.

use std::sync::Arc;

use tungstenite::handshake::derive_accept_key;

use super::error::HttpError;
use super::request::{is_websocket_key, Request, Version};
use super::response::{Response, Status};
use super::tokens::{Target, TokenLookup};

/// The refusal of a `?token=` the tokens map does not know (counted as a failure).
pub const UNKNOWN_TOKEN: &str = "unknown token";

/// The subprotocol we speak.
pub const SUBPROTOCOL: &str = "binary";

/// Query parameters that would name a target directly.
const TARGET_PARAMS: [&str; 3] = ["host", "port", "target"];

/// What may upgrade and where it may go; shared by all shards.
#[derive(Clone, Default)]
pub struct UpgradePolicy {
    /// Origins allowed to open a WebSocket (`https://desk.example.com`, compared ASCII
    /// case-insensitively, a trailing `/` ignored); `None` allows any.
    pub allowed_origins: Option<Vec<String>>,
    /// With an allow-list, also refuse requests without `Origin`. Off by default: browsers
    /// always send it, so cross-site pages (what the list stops) are always checked, while
    /// non-browser clients such as xpra's own never send one.
    pub require_origin: bool,
    /// The `--tokens` map; `None` refuses every `?token=`.
    pub tokens: Option<Arc<dyn TokenLookup + Send + Sync>>,
}

impl std::fmt::Debug for UpgradePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpgradePolicy")
            .field("allowed_origins", &self.allowed_origins)
            .field("require_origin", &self.require_origin)
            .field("tokens", &self.tokens.as_ref().map(|_| "..."))
            .finish()
    }
}

/// Where an upgraded connection goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// No token: the xpra door (authentication inside the xpra protocol).
    Xpra,
    /// The backend a valid token maps to.
    Token(Target),
}

/// An accepted upgrade: send `response`, then speak WebSocket; bytes after the request head
/// are already frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub response: Vec<u8>,
    pub route: Route,
    /// The subprotocol chosen, if any.
    pub protocol: Option<&'static str>,
}

/// Decides on a WebSocket upgrade; an `Err` is answered with [`HttpError::response`] and
/// the connection closed.
pub fn accept(req: &Request, policy: &UpgradePolicy) -> Result<Accepted, HttpError> {
    if !req.wants_websocket() || req.version != Version::Http11 {
        return Err(HttpError::BadRequest("not a WebSocket upgrade"));
    }
    if req.header("sec-websocket-version") != Some("13") {
        return Err(HttpError::WebSocketVersion);
    }
    let key = req
        .header("sec-websocket-key")
        .filter(|k| is_websocket_key(k))
        .ok_or(HttpError::BadRequest("Sec-WebSocket-Key"))?;
    check_origin(req, policy)?;
    let protocol = choose_protocol(req)?;
    let route = route(req, policy)?;
    let mut head = Response::new(Status::SwitchingProtocols)
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Accept", derive_accept_key(key.as_bytes()));
    if let Some(p) = protocol {
        head = head.header("Sec-WebSocket-Protocol", p);
    }
    Ok(Accepted {
        response: head.encode(),
        route,
        protocol,
    })
}

fn check_origin(req: &Request, policy: &UpgradePolicy) -> Result<(), HttpError> {
    let Some(allowed) = &policy.allowed_origins else {
        return Ok(());
    };
    let Some(origin) = req.header("origin") else {
        return if policy.require_origin {
            Err(HttpError::Forbidden("Origin required"))
        } else {
            Ok(())
        };
    };
    let norm = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
    let origin = norm(origin);
    if allowed.iter().any(|a| norm(a) == origin) {
        Ok(())
    } else {
        Err(HttpError::Forbidden("Origin not allowed"))
    }
}

fn choose_protocol(req: &Request) -> Result<Option<&'static str>, HttpError> {
    let mut offered = req.header_tokens("sec-websocket-protocol").peekable();
    if offered.peek().is_none() {
        return Ok(None);
    }
    if offered.any(|p| p == SUBPROTOCOL) {
        Ok(Some(SUBPROTOCOL))
    } else {
        Err(HttpError::BadRequest("subprotocol binary not offered"))
    }
}

fn route(req: &Request, policy: &UpgradePolicy) -> Result<Route, HttpError> {
    if req
        .query
        .iter()
        .any(|(n, _)| TARGET_PARAMS.iter().any(|t| n.eq_ignore_ascii_case(t)))
    {
        return Err(HttpError::Forbidden("target named in the URL"));
    }
    let mut tokens = req.query.iter().filter(|(n, _)| n == "token");
    let Some((_, token)) = tokens.next() else {
        return Ok(Route::Xpra);
    };
    if tokens.next().is_some() {
        return Err(HttpError::BadRequest("more than one token"));
    }
    policy
        .tokens
        .as_ref()
        .filter(|_| !token.is_empty())
        .and_then(|map| map.lookup(token))
        .map(Route::Token)
        .ok_or(HttpError::Forbidden(UNKNOWN_TOKEN))
}

#[cfg(test)]
#[path = "upgrade_tests.rs"]
mod tests;
