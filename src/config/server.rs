//! What the bus's own address is, for the parts that call it back (the bundled payment
//! mock's confirmations).

use super::ServerConfig;
use std::net::SocketAddr;

impl ServerConfig {
    /// The address the bus's own services answer on when bound to `addr`, as a client on
    /// this machine reaches them (an unspecified address becomes loopback).
    pub fn own_base_url(&self, addr: SocketAddr) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let host = if addr.ip().is_unspecified() {
            match addr {
                SocketAddr::V4(_) => std::net::IpAddr::from([127, 0, 0, 1]),
                SocketAddr::V6(_) => std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
            }
        } else {
            addr.ip()
        };
        format!("{scheme}://{}", SocketAddr::new(host, addr.port()))
    }
}
