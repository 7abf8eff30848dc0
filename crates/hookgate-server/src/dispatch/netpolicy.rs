//! Which addresses a delivery may dial.
//!
//! Endpoint URLs come from customers, so a delivery must not become a way to
//! reach the server's own network: loopback, private, link-local, CGNAT,
//! multicast, unspecified, documentation and metadata addresses are refused,
//! including when written as IPv4-mapped or NAT64 IPv6, unless a CIDR in the
//! settings' allow-list opens them. The check runs on the address actually
//! dialled, after resolution, at every attempt, so DNS that changes between
//! registration and delivery gains nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// The allow-list and the check.
#[derive(Clone, Debug, Default)]
pub struct NetworkPolicy {
    allow: Vec<IpNet>,
}

impl NetworkPolicy {
    /// A policy that opens `allow` on top of the public internet.
    pub fn new(allow: Vec<IpNet>) -> Self {
        Self { allow }
    }

    /// Whether `addr` may be dialled.
    pub fn permits(&self, addr: IpAddr) -> bool {
        if self.allow.iter().any(|net| net.contains(&addr)) {
            return true;
        }
        match embedded_v4(addr) {
            Some(v4) if self.allow.iter().any(|net| net.contains(&IpAddr::V4(v4))) => true,
            Some(v4) => is_public_v4(v4),
            None => match addr {
                IpAddr::V6(v6) => is_public_v6(v6),
                IpAddr::V4(v4) => is_public_v4(v4),
            },
        }
    }
}

/// The IPv4 address inside an IPv4 address, an IPv4-mapped (::ffff:0:0/96)
/// or IPv4-translated (::ffff:0:0:0/96) IPv6 address, or a NAT64 address
/// (64:ff9b::/96, and the local-use 64:ff9b:1::/48, whose last 32 bits are
/// taken as the IPv4 address whatever the prefix length in use).
fn embedded_v4(addr: IpAddr) -> Option<Ipv4Addr> {
    match addr {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return Some(v4);
            }
            let s = v6.segments();
            let o = v6.octets();
            let last_32 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
            let well_known_nat64 = s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0];
            let local_nat64 = s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1;
            let translated = s[0..4] == [0, 0, 0, 0] && s[4] == 0xffff && s[5] == 0;
            (well_known_nat64 || local_nat64 || translated).then_some(last_32)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    let blocked = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (64..128).contains(&o[1]))
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
        || o[0] >= 240;
    !blocked
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let blocked = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])
        || (s[0] == 0x2002)
        || (s[0] == 0x2001 && s[1] == 0)
        || ip
            .to_ipv4()
            .is_some_and(|v4| s[0..6] == [0; 6] && !is_public_v4(v4));
    !blocked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(addr: &str) -> bool {
        !NetworkPolicy::default().permits(addr.parse().unwrap())
    }

    #[test]
    fn non_public_v4_is_refused() {
        for addr in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "192.0.2.1",
            "198.18.0.1",
        ] {
            assert!(refused(addr), "{addr}");
        }
    }

    #[test]
    fn non_public_v6_and_disguised_v4_are_refused() {
        for addr in [
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::10.0.0.1",
            "64:ff9b::7f00:1",
            "2001:db8::1",
            "fd00:ec2::254",
            "::ffff:0:127.0.0.1",
            "::ffff:0:a9fe:a9fe",
            "64:ff9b:1::7f00:1",
            "64:ff9b:1:abcd::a00:1",
        ] {
            assert!(refused(addr), "{addr}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for addr in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "64:ff9b::5db8:d822",
        ] {
            assert!(!refused(addr), "{addr}");
        }
    }

    #[test]
    fn allow_list_opens_exactly_its_networks() {
        let policy = NetworkPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(policy.permits("127.0.0.1".parse().unwrap()));
        assert!(policy.permits("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!policy.permits("::1".parse().unwrap()));
        assert!(!policy.permits("10.0.0.1".parse().unwrap()));
    }
}
