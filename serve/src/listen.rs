//! Admission of connections (the gRPC and HTTP ports): at most `connections` open at once and `connections_per_ip`
//! from one address, and a back-off when accepting fails (at the file-descriptor limit `accept`
//! fails at once, every time: retrying in a tight loop would spin the cores and flood the log).

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// The caps on connections.
#[derive(Debug, Clone, Copy)]
pub struct Admission {
    /// Open at once, from everyone.
    pub connections: usize,
    /// Open at once from one IP address.
    pub per_ip: usize,
    /// The port's name in log lines (`gRPC`, `HTTP`).
    pub port: &'static str,
}

/// An accepted connection; it frees its slots when dropped (closed).
pub struct Conn {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    _ip: IpSlot,
}

/// One connection counted against its address; uncounted on drop.
struct IpSlot {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Longest pause between failed accepts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Accepts connections on `listener` within `admission`, as a stream for tonic's
/// `serve_with_incoming`. At the total cap it stops accepting (new connections wait in the
/// kernel's backlog); over the per-address cap a connection is closed at once.
pub fn incoming(
    listener: TcpListener,
    admission: Admission,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<Conn>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(admission.connections.max(1)));
        let counts: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
        let mut backoff = Duration::ZERO;
        let mut last_warning: Option<Instant> = None;
        let mut refused = 0u64;
        loop {
            let slot = tokio::select! {
                slot = slots.clone().acquire_owned() => match slot {
                    Ok(s) => s,
                    Err(_) => return,
                },
                _ = tx.closed() => return,
            };
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = tx.closed() => return,
            };
            let (stream, peer) = match accepted {
                Ok(a) => {
                    backoff = Duration::ZERO;
                    a
                }
                Err(e) => {
                    backoff = (backoff * 2).clamp(Duration::from_millis(10), MAX_BACKOFF);
                    // One line a minute at most: at the descriptor limit this fails every time.
                    if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                        tracing::warn!(port = admission.port, error = %e, ?backoff, "accepting a connection failed; backing off");
                        last_warning = Some(Instant::now());
                    }
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            };
            let ip = peer.ip();
            {
                let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
                let n = counts.entry(ip).or_insert(0);
                if *n >= admission.per_ip {
                    refused += 1;
                    if refused.is_power_of_two() {
                        tracing::warn!(port = admission.port, %ip, cap = admission.per_ip, refused, "over the connections per address: connection closed");
                    }
                    continue;
                }
                *n += 1;
            }
            let _ = stream.set_nodelay(true);
            let conn = Conn {
                stream,
                _slot: slot,
                _ip: IpSlot {
                    counts: counts.clone(),
                    ip,
                },
            };
            if tx.send(Ok(conn)).await.is_err() {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// [`incoming`] with each connection's TLS handshake done here, with the configuration `tls`
/// holds when it arrives, within `handshake_timeout`; a handshake that fails or times out
/// closes its connection (and frees its slots) without holding up the others.
pub fn incoming_tls(
    listener: TcpListener,
    admission: Admission,
    tls: Arc<crate::tls::Reloading>,
    handshake_timeout: Duration,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<tokio_rustls::server::TlsStream<Conn>>> {
    use tokio_stream::StreamExt;
    let mut plain = incoming(listener, admission);
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let conn = tokio::select! {
                conn = plain.next() => match conn {
                    Some(Ok(conn)) => conn,
                    Some(Err(_)) => continue,
                    None => return,
                },
                _ = tx.closed() => return,
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.config());
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(handshake_timeout, acceptor.accept(conn)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(?handshake_timeout, "TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
