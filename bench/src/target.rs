//! Where the bench may send traffic: loopback only.
//!
//! A load generator pointed at the wrong host is an attack. The bench resolves `--host` and
//! refuses unless every address it resolves to is loopback (127.0.0.0/8 or ::1), so a name
//! that resolves to both a loopback and a routable address is refused too.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// Why a target was refused.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The host did not resolve.
    #[error("cannot resolve --host {host:?}: {source}")]
    Resolve {
        /// The host as given.
        host: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// The host resolved to nothing.
    #[error("--host {0:?} resolves to no address")]
    Empty(String),
    /// The host resolved to a non-loopback address.
    #[error(
        "refusing --host {host:?}: it resolves to {addr}, which is not a loopback address; \
         skua-bench only sends load to 127.0.0.0/8 or ::1 on this machine"
    )]
    NotLoopback {
        /// The host as given.
        host: String,
        /// The first non-loopback address found.
        addr: IpAddr,
    },
}

/// True for 127.0.0.0/8, ::1 and IPv4-mapped 127.0.0.0/8 (::ffff:127.x.y.z).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Resolves `host:port` and returns the first address, if all resolved addresses are loopback.
pub fn resolve_loopback(host: &str, port: u16) -> Result<SocketAddr, TargetError> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|source| TargetError::Resolve { host: host.to_owned(), source })?
        .collect();
    check_all_loopback(host, &addrs)?;
    Ok(addrs[0])
}

/// The check itself, apart from the resolver so it can be tested on any address list.
pub fn check_all_loopback(host: &str, addrs: &[SocketAddr]) -> Result<(), TargetError> {
    if addrs.is_empty() {
        return Err(TargetError::Empty(host.to_owned()));
    }
    match addrs.iter().find(|a| !is_loopback(a.ip())) {
        Some(bad) => Err(TargetError::NotLoopback { host: host.to_owned(), addr: bad.ip() }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_ranges() {
        for ok in ["127.0.0.1", "127.255.3.4", "::1", "::ffff:127.0.0.2"] {
            assert!(is_loopback(ok.parse().unwrap()), "{ok}");
        }
        for bad in [
            "10.0.0.1",
            "192.168.1.1",
            "172.16.0.1",
            "8.8.8.8",
            "0.0.0.0",
            "::",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_loopback(bad.parse().unwrap()), "{bad}");
        }
    }

    #[test]
    fn resolves_literal_and_localhost() {
        assert_eq!(resolve_loopback("127.0.0.1", 143).unwrap().port(), 143);
        assert!(resolve_loopback("::1", 24).unwrap().ip().is_loopback());
        assert!(resolve_loopback("localhost", 24).is_ok());
    }

    #[test]
    fn refuses_routable_addresses_with_a_clear_message() {
        let err = resolve_loopback("192.0.2.7", 143).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("not a loopback address") && text.contains("192.0.2.7"), "{text}");
        let mixed: Vec<SocketAddr> =
            vec!["127.0.0.1:1".parse().unwrap(), "10.1.2.3:1".parse().unwrap()];
        assert!(matches!(check_all_loopback("x", &mixed), Err(TargetError::NotLoopback { .. })));
        assert!(matches!(check_all_loopback("x", &[]), Err(TargetError::Empty(_))));
    }
}
