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

/// `receivers` tasks wait on one socket at once, then as many one-byte datagrams arrive: each task gets one,
/// none is lost or given twice.
pub async fn check_waiting_receivers_each_get_a_datagram(receivers: u8) {
    let rx = std::rc::Rc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let to = rx.local_addr().unwrap();
    let tasks: Vec<_> = (0..receivers)
        .map(|_| {
            let rx = rx.clone();
            uvio::spawn_local(async move {
                let mut buf = [0u8; 4];
                let (n, _) = recv_from(&rx, &mut buf).await;
                buf[..n].to_vec()
            })
        })
        .collect();
    uvio::time::sleep(Duration::from_millis(5)).await; // every task waits now
    let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sent: Vec<Vec<u8>> = (0..receivers).map(|i| vec![b'a' + i]).collect();
    for d in &sent {
        tx.send_to(d, to).await.unwrap();
    }
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap());
    }
    got.sort();
    assert_eq!(got, sent);
}
