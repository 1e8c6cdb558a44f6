//! Allocation of per-call RTP ports.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::net::UdpSocket;

/// Hands out even UDP ports (RTP convention: RTCP would take the odd one above) from the
/// configured range, round-robin so a port just released is not reused at once while late
/// packets of the old call may still arrive on it.
pub struct RtpPortPool {
    next: AtomicU32,
}

impl Default for RtpPortPool {
    fn default() -> Self {
        Self::new()
    }
}

impl RtpPortPool {
    pub fn new() -> Self {
        RtpPortPool { next: AtomicU32::new(0) }
    }

    /// Binds the next free even port in `min..=max` on `ip`.
    pub async fn bind(&self, ip: IpAddr, min: u16, max: u16) -> std::io::Result<UdpSocket> {
        let first = u32::from(min + (min % 2));
        let slots = (u32::from(max).saturating_sub(first)) / 2 + 1;
        for _ in 0..slots {
            let slot = self.next.fetch_add(1, Ordering::Relaxed) % slots;
            let port = (first + slot * 2) as u16;
            match UdpSocket::bind(SocketAddr::new(ip, port)).await {
                Ok(s) => return Ok(s),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, format!("every RTP port in {min}-{max} is in use")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hands_out_distinct_even_ports_and_reports_exhaustion() {
        let pool = RtpPortPool::new();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = pool.bind(ip, 41000, 41003).await.unwrap();
        let b = pool.bind(ip, 41000, 41003).await.unwrap();
        let (pa, pb) = (a.local_addr().unwrap().port(), b.local_addr().unwrap().port());
        assert_ne!(pa, pb);
        assert_eq!(pa % 2, 0);
        assert_eq!(pb % 2, 0);
        let err = pool.bind(ip, 41000, 41003).await.unwrap_err();
        assert!(err.to_string().contains("41000-41003"), "{err}");
    }
}
