//! Networks: parsing, refusals, matching at the edges, mapped IPv4 clients.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::{Cidr, TrustedSources};

fn cidr(s: &str) -> Cidr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn parses_networks_and_hosts() {
    for (input, shown, prefix) in [
        ("10.0.0.0/8", "10.0.0.0/8", 8),
        ("127.0.0.1", "127.0.0.1/32", 32),
        ("127.0.0.1/32", "127.0.0.1/32", 32),
        ("0.0.0.0/0", "0.0.0.0/0", 0),
        ("::1/128", "::1/128", 128),
        ("::1", "::1/128", 128),
        ("fe80::/10", "fe80::/10", 10),
        ("::/0", "::/0", 0),
        ("2001:DB8::/32", "2001:db8::/32", 32),
    ] {
        let c = cidr(input);
        assert_eq!(c.to_string(), shown);
        assert_eq!(c.prefix_len(), prefix);
        assert_eq!(c.to_string().parse::<Cidr>(), Ok(c), "Display parses back");
    }
}

#[test]
fn mapped_networks_are_read_as_ipv4() {
    let c = cidr("::ffff:10.0.0.0/104");
    assert_eq!(c, cidr("10.0.0.0/8"));
    assert_eq!(c.network(), ip("10.0.0.0"));
    assert_eq!(cidr("::ffff:127.0.0.1"), cidr("127.0.0.1"));
    assert_eq!(cidr("::ffff:0:0/96"), cidr("0.0.0.0/0"));
    // Wider than the mapped range: an IPv6 network, for IPv6 clients only.
    let wide = cidr("::fffe:0:0/95");
    assert!(wide.network().is_ipv6());
    assert!(wide.contains(ip("::fffe:1:2")));
    assert!(!wide.contains(ip("::ffff:10.1.2.3")) && !wide.contains(ip("10.1.2.3")));
}

#[test]
fn refuses_bad_input() {
    for (input, reason) in [
        ("", "not an IP address"),
        ("10.0.0.0/", "prefix length is not a number"),
        ("10.0.0.0/-1", "prefix length is not a number"),
        ("10.0.0.0/+8", "prefix length is not a number"),
        ("10.0.0.0/8/8", "prefix length is not a number"),
        ("10.0.0.0/1000", "prefix length out of range"),
        ("10.0.0.0/33", "prefix longer than 32 bits"),
        ("::/129", "prefix longer than 128 bits"),
        ("10.0.0.0/256", "prefix length out of range"),
        ("10.0.0/8", "not an IP address"),
        ("010.0.0.0/8", "not an IP address"),
        ("10.0.0.0 /8", "not an IP address"),
        (" 10.0.0.0/8", "not an IP address"),
        ("fe80::1%eth0", "not an IP address"),
        ("example.com/8", "not an IP address"),
        ("10.0.0.0/255.0.0.0", "prefix length is not a number"),
        ("10.0.0.1/8", "host bits set (the network is 10.0.0.0/8)"),
        ("fe80::1/10", "host bits set (the network is fe80::/10)"),
        ("1.2.3.4/0", "host bits set (the network is 0.0.0.0/0)"),
        (
            "::ffff:10.0.0.1/104",
            "host bits set (the network is 10.0.0.0/8)",
        ),
    ] {
        let err = input.parse::<Cidr>().expect_err(input);
        assert_eq!(
            err.to_string(),
            format!("invalid network {input:?}: {reason}"),
            "{input}"
        );
    }
}

#[test]
fn matching_edges() {
    let any4 = cidr("0.0.0.0/0");
    let any6 = cidr("::/0");
    assert!(any4.contains(ip("0.0.0.0")) && any4.contains(ip("255.255.255.255")));
    assert!(
        !any4.contains(ip("::1")),
        "IPv4 networks hold no IPv6 client"
    );
    assert!(any6.contains(ip("::")) && any6.contains(ip("ffff::ffff")));
    assert!(
        !any6.contains(ip("10.1.2.3")),
        "::/0 does not trust IPv4 clients"
    );
    assert!(!any6.contains(ip("::ffff:10.1.2.3")), "nor mapped ones");

    let host = cidr("192.0.2.7/32");
    assert!(host.contains(ip("192.0.2.7")));
    assert!(!host.contains(ip("192.0.2.6")) && !host.contains(ip("192.0.2.8")));

    let host6 = cidr("2001:db8::7/128");
    assert!(host6.contains(ip("2001:db8::7")));
    assert!(!host6.contains(ip("2001:db8::6")) && !host6.contains(ip("2001:db8::8")));

    let net = cidr("10.0.0.0/8");
    assert!(net.contains(ip("10.0.0.0")) && net.contains(ip("10.255.255.255")));
    assert!(!net.contains(ip("9.255.255.255")) && !net.contains(ip("11.0.0.0")));

    let link = cidr("fe80::/10");
    assert!(link.contains(ip("fe80::1")) && link.contains(ip("febf:ffff::1")));
    assert!(!link.contains(ip("fec0::1")) && !link.contains(ip("fe7f::1")));
}

#[test]
fn mapped_clients_match_ipv4_networks() {
    let net = cidr("10.0.0.0/8");
    assert!(net.contains(ip("::ffff:10.1.2.3")));
    assert!(!net.contains(ip("::ffff:11.1.2.3")));
    assert!(cidr("127.0.0.1").contains(ip("::ffff:127.0.0.1")));
    assert!(cidr("0.0.0.0/0").contains(ip("::ffff:0.0.0.0")));
    // The deprecated IPv4-compatible form (::a.b.c.d) is an IPv6 address.
    assert!(!cidr("10.0.0.0/8").contains(ip("::10.1.2.3")));
    // A mapped network matches plain IPv4 clients too.
    assert!(cidr("::ffff:192.168.0.0/112").contains(ip("192.168.4.4")));
}

#[test]
fn trusted_sources() {
    let trusted: TrustedSources = "10.0.0.0/8, 127.0.0.1 ,::1".parse().unwrap();
    assert_eq!(trusted.0.len(), 3);
    assert!(trusted.contains(ip("10.9.8.7")));
    assert!(trusted.contains(ip("::ffff:127.0.0.1")));
    assert!(trusted.contains(ip("::1")));
    assert!(!trusted.contains(ip("127.0.0.2")));
    assert!(!trusted.contains(ip("::2")));

    let nobody: TrustedSources = "".parse().unwrap();
    assert!(nobody.is_empty() && !nobody.contains(ip("127.0.0.1")));
    assert!(TrustedSources::default().is_empty());

    let err = "10.0.0.0/8,10.0.0.1/8"
        .parse::<TrustedSources>()
        .unwrap_err();
    assert!(err.to_string().contains("\"10.0.0.1/8\""), "{err}");
    assert!("10.0.0.0/8,".parse::<TrustedSources>().is_err());

    let collected: TrustedSources = [cidr("::1")].into_iter().collect();
    assert!(collected.contains(ip("::1")));
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(s in "[0-9a-fA-F:./%+ -]{0,48}") {
        let _ = s.parse::<Cidr>();
        let _ = s.parse::<TrustedSources>();
    }

    #[test]
    fn v4_matches_by_prefix_bits(net in any::<u32>(), addr in any::<u32>(), prefix in 0u8..=32) {
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        let c = Cidr::new(IpAddr::V4(Ipv4Addr::from(net & mask)), prefix).unwrap();
        let addr4 = Ipv4Addr::from(addr);
        let inside = (addr & mask) == (net & mask);
        prop_assert_eq!(c.contains(IpAddr::V4(addr4)), inside);
        prop_assert_eq!(c.contains(IpAddr::V6(addr4.to_ipv6_mapped())), inside);
    }

    #[test]
    fn v6_matches_by_prefix_bits(net in any::<u128>(), addr in any::<u128>(), prefix in 0u8..=128) {
        let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
        let c = Cidr::new(IpAddr::V6(Ipv6Addr::from(net & mask)), prefix).unwrap();
        let addr6 = Ipv6Addr::from(addr);
        // Mapped clients are IPv4 ones: only the networks read as IPv4 hold them.
        let inside = if addr6.to_ipv4_mapped().is_some() {
            c.network().is_ipv4() && (addr & mask) == (net & mask)
        } else {
            c.network().is_ipv6() && (addr & mask) == (net & mask)
        };
        prop_assert_eq!(c.contains(IpAddr::V6(addr6)), inside);
    }
}
