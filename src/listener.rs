//! Binding a front-end's listening socket, the same way for HTTP and the Redis protocol.
//!
//! Must never: bind without `SO_REUSEADDR` (a restart would wait for the old port's
//! `TIME_WAIT` sockets to clear).

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// Binds `addr` with `SO_REUSEADDR` and a deep backlog.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}
