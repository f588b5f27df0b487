//! The listening sockets of a server, made with `socket2` before any runtime exists, so that a bind error comes
//! back from `bind` and every option (the backlog, `SO_REUSEPORT`) is set before `listen`.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

use super::Pattern;

/// `shards` listening sockets on `addr` (one unless `pattern` is `ReusePort`), all on the same port: the first
/// binds (port 0 picks one), the others bind to the port it got.
pub(super) fn bind(
    addr: SocketAddr,
    pattern: Pattern,
    shards: usize,
    backlog: i32,
) -> io::Result<Vec<std::net::TcpListener>> {
    let reuse_port = pattern == Pattern::ReusePort;
    let first = listener(addr, reuse_port, backlog)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..shards {
        listeners.push(listener(addr, reuse_port, backlog)?);
    }
    Ok(listeners)
}

fn listener(addr: SocketAddr, reuse_port: bool, backlog: i32) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std and libuv do on Unix: a restarted server can bind while old connections sit in TIME_WAIT. (On
    // Windows SO_REUSEADDR would let another process steal the port: std leaves it off there.)
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    if reuse_port {
        #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}
