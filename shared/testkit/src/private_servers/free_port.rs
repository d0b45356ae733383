use anyhow::bail;
use std::net::{Ipv4Addr, TcpListener};
use uuid::Uuid;

/// A loopback port nobody listens on, below Linux's ephemeral range (32768+): a server that
/// is stopped and started again must find its port free, and a port in the ephemeral range
/// could meanwhile be taken as the local end of some client's connection.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    for _ in 0..200 {
        let port = 20_000 + (Uuid::new_v4().as_u128() % 12_000) as u16;
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free loopback port found in 20000..32000")
}
