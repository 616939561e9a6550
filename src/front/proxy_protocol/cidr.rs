//! [`Cidr`] and [`TrustedSources`]: which peers may send a PROXY header.
//!
//! An IPv4 client is an IPv4 client however the socket spells it: an IPv4-mapped IPv6
//! peer (`::ffff:10.1.2.3`, as a dual-stack listener reports it) matches IPv4 networks, and
//! an IPv6 network written inside `::ffff:0:0/96` is read as the IPv4 network it maps.
//! Other IPv6 networks hold IPv6 clients only: `::/0` does not trust every IPv4 client.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::canonical;

/// An IP network: an address and a prefix length, host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a network could not be read (configuration input, reported before serving).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid network {input:?}: {reason}")]
pub struct CidrError {
    input: String,
    reason: String,
}

impl CidrError {
    fn new(input: &str, reason: impl Into<String>) -> Self {
        CidrError {
            input: input.to_owned(),
            reason: reason.into(),
        }
    }
}

impl Cidr {
    /// The network `addr/prefix`; refused when the prefix is longer than the address or
    /// when `addr` has bits set past the prefix (likely a typo: say which network it is).
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, CidrError> {
        let input = format!("{addr}/{prefix}");
        let max = max_prefix(addr);
        if prefix > max {
            return Err(CidrError::new(
                &input,
                format!("prefix longer than {max} bits"),
            ));
        }
        // A network inside ::ffff:0:0/96 is the IPv4 network it maps.
        let (addr, prefix) = match addr {
            IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => (IpAddr::V4(v4), prefix - 96),
                None => (addr, prefix),
            },
            _ => (addr, prefix),
        };
        let network = masked(addr, prefix);
        if network != addr {
            return Err(CidrError::new(
                &input,
                format!("host bits set (the network is {network}/{prefix})"),
            ));
        }
        Ok(Cidr { network, prefix })
    }

    /// The network's first address.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in this network; an IPv4-mapped IPv6 address counts as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.network, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                masked(ip, self.prefix) == self.network
            }
            _ => false,
        }
    }
}

fn max_prefix(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `ip` with every bit past the first `prefix` cleared; `prefix` is at most the width.
fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// `10.0.0.0/8`, `fe80::/10`, or a bare address for one host (`127.0.0.1`, `::1`).
    fn from_str(s: &str) -> Result<Self, CidrError> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| CidrError::new(s, "not an IP address"))?;
        let prefix = match prefix {
            None => max_prefix(addr),
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse::<u8>()
                .map_err(|_| CidrError::new(s, "prefix length out of range"))?,
            Some(_) => return Err(CidrError::new(s, "prefix length is not a number")),
        };
        Cidr::new(addr, prefix).map_err(|e| CidrError::new(s, e.reason))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The balancers allowed to send a PROXY header; any other peer sending one is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedSources(pub Vec<Cidr>);

impl TrustedSources {
    /// Whether `ip` is in one of the networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// Whether no network is trusted (then nobody may send a header).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for TrustedSources {
    type Err = CidrError;

    /// A comma-separated list (`10.0.0.0/8, ::1`), as a command-line flag gives it; spaces
    /// around the items are ignored; an empty string trusts nobody.
    fn from_str(s: &str) -> Result<Self, CidrError> {
        if s.trim().is_empty() {
            return Ok(TrustedSources::default());
        }
        s.split(',')
            .map(|item| item.trim().parse())
            .collect::<Result<_, _>>()
            .map(TrustedSources)
    }
}

impl FromIterator<Cidr> for TrustedSources {
    fn from_iter<I: IntoIterator<Item = Cidr>>(iter: I) -> Self {
        TrustedSources(iter.into_iter().collect())
    }
}
