//! Helpers for the async UDP tests (`net_udp`, `engine_epoll_udp`).

use std::net::SocketAddr;
use std::time::Duration;

use uvio::net::UdpSocket;
use uvio::time::timeout;

/// Waits at most a second: a lost datagram fails the test instead of hanging it.
pub async fn recv_from(s: &UdpSocket, buf: &mut [u8]) -> (usize, SocketAddr) {
    timeout(Duration::from_secs(1), s.recv_from(buf)).await.expect("datagram arrives").unwrap()
}

/// Datagram `i`: its index, then a pattern of a length that varies with `i` (4 to 1403 bytes).
pub fn datagram(i: u32) -> Vec<u8> {
    let len = 4 + (i as usize * 37) % 1400;
    let mut d = i.to_le_bytes().to_vec();
    d.extend((4..len).map(|k| (k as u32 ^ i.wrapping_mul(2654435761)) as u8));
    d
}
