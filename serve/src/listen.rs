//! Admission of connections (the gRPC and HTTP ports): at most `connections` open at once and `connections_per_ip`
//! from one address, and a back-off when accepting fails (at the file-descriptor limit `accept`
//! fails at once, every time: retrying in a tight loop would spin the cores and flood the log).
//! On the TLS port a connection is counted once its handshake succeeds; handshakes in progress
//! are bounded by the same numbers, the oldest ended to make room ([`incoming_tls`]).

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
    slot: Option<OwnedSemaphorePermit>,
    ip: Option<IpSlot>,
}

impl Conn {
    /// A connection that holds no slot yet (a TLS handshake in progress).
    fn unadmitted(stream: TcpStream) -> Conn {
        Conn {
            stream,
            slot: None,
            ip: None,
        }
    }

    /// Counts the connection against the caps from now until it closes.
    fn admit(&mut self, slot: OwnedSemaphorePermit, ip: IpSlot) {
        self.slot = Some(slot);
        self.ip = Some(ip);
    }
}

/// One connection counted against its address; uncounted on drop.
struct IpSlot {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl IpSlot {
    /// A slot of `ip`'s, unless it has `per_ip` already.
    fn take(
        counts: &Arc<Mutex<HashMap<IpAddr, usize>>>,
        ip: IpAddr,
        per_ip: usize,
    ) -> Option<IpSlot> {
        let mut all = counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = all.entry(ip).or_insert(0);
        if *n >= per_ip {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            counts: counts.clone(),
            ip,
        })
    }
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

/// Accepting on a port, backing off while `accept` fails.
struct Accepting {
    port: &'static str,
    backoff: Duration,
    last_warning: Option<Instant>,
}

impl Accepting {
    fn new(port: &'static str) -> Accepting {
        Accepting {
            port,
            backoff: Duration::ZERO,
            last_warning: None,
        }
    }

    /// The next connection; failures are waited out with a growing pause.
    async fn accept(&mut self, listener: &TcpListener) -> (TcpStream, std::net::SocketAddr) {
        loop {
            match listener.accept().await {
                Ok(accepted) => {
                    self.backoff = Duration::ZERO;
                    return accepted;
                }
                Err(e) => {
                    self.backoff = (self.backoff * 2).clamp(Duration::from_millis(10), MAX_BACKOFF);
                    // One line a minute at most: at the descriptor limit this fails every time.
                    if self
                        .last_warning
                        .is_none_or(|t| t.elapsed() > Duration::from_secs(60))
                    {
                        tracing::warn!(port = self.port, error = %e, backoff = ?self.backoff, "accepting a connection failed; backing off");
                        self.last_warning = Some(Instant::now());
                    }
                    tokio::time::sleep(self.backoff).await;
                }
            }
        }
    }
}

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
        let mut accepting = Accepting::new(admission.port);
        let mut refused = 0u64;
        loop {
            let slot = tokio::select! {
                slot = slots.clone().acquire_owned() => match slot {
                    Ok(s) => s,
                    Err(_) => return,
                },
                _ = tx.closed() => return,
            };
            let (stream, peer) = tokio::select! {
                accepted = accepting.accept(&listener) => accepted,
                _ = tx.closed() => return,
            };
            let ip = peer.ip();
            let Some(ip_slot) = IpSlot::take(&counts, ip, admission.per_ip) else {
                refused += 1;
                if refused.is_power_of_two() {
                    tracing::warn!(port = admission.port, %ip, cap = admission.per_ip, refused, "over the connections per address: connection closed");
                }
                continue;
            };
            let _ = stream.set_nodelay(true);
            let mut conn = Conn::unadmitted(stream);
            conn.admit(slot, ip_slot);
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

/// [`incoming`] for the TLS port: each connection's handshake is done here, with the
/// configuration `tls` holds when it arrives, within `handshake_timeout`, and only a connection
/// whose handshake succeeded takes the `admission` slots (over them it is closed). Handshakes
/// still in progress are unauthenticated and cost the attacker 5 bytes each: up to `admission`'s
/// numbers of them run at once, and one more from an address at its cap (or anyone's at the total)
/// ends the oldest in progress instead of being refused, so stalled handshakes from the address
/// KEDA shares cannot lock KEDA out: its handshake takes milliseconds, theirs are evicted.
pub fn incoming_tls(
    listener: TcpListener,
    admission: Admission,
    tls: Arc<crate::tls::Reloading>,
    handshake_timeout: Duration,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<tokio_rustls::server::TlsStream<Conn>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(admission.connections.max(1)));
        let counts: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
        let handshakes: Arc<Mutex<Handshakes>> = Arc::default();
        let mut accepting = Accepting::new(admission.port);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = accepting.accept(&listener) => accepted,
                _ = tx.closed() => return,
            };
            let ip = peer.ip();
            let _ = stream.set_nodelay(true);
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.config());
            let (tx, slots, counts, done) = (
                tx.clone(),
                slots.clone(),
                counts.clone(),
                handshakes.clone(),
            );
            let mut table = handshakes.lock().unwrap_or_else(|p| p.into_inner());
            let id = table.next_id();
            let task = tokio::spawn(async move {
                let shaken = tokio::time::timeout(
                    handshake_timeout,
                    acceptor.accept(Conn::unadmitted(stream)),
                )
                .await;
                done.lock().unwrap_or_else(|p| p.into_inner()).finished(id);
                let mut stream = match shaken {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => return tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => {
                        return tracing::debug!(?handshake_timeout, "TLS handshake timed out")
                    }
                };
                // Authenticated: now it counts against the connection caps.
                let Ok(slot) = slots.try_acquire_owned() else {
                    return tracing::debug!(
                        port = admission.port,
                        "over the connections: closed after its handshake"
                    );
                };
                let Some(ip_slot) = IpSlot::take(&counts, ip, admission.per_ip) else {
                    return tracing::debug!(port = admission.port, %ip, "over the connections per address: closed after its handshake");
                };
                stream.get_mut().0.admit(slot, ip_slot);
                let _ = tx.send(Ok(stream)).await;
            });
            table.started(id, ip, task.abort_handle(), &admission);
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// The TLS handshakes in progress, oldest first.
#[derive(Default)]
struct Handshakes {
    running: std::collections::VecDeque<(u64, IpAddr, tokio::task::AbortHandle)>,
    ids: u64,
    evicted: u64,
}

impl Handshakes {
    fn next_id(&mut self) -> u64 {
        self.ids += 1;
        self.ids
    }

    /// Records handshake `id` from `ip`, first ending the oldest in progress from `ip` when it
    /// has `per_ip` of them, and the oldest of all at `connections`.
    fn started(
        &mut self,
        id: u64,
        ip: IpAddr,
        task: tokio::task::AbortHandle,
        admission: &Admission,
    ) {
        if self
            .running
            .iter()
            .filter(|(_, from, _)| *from == ip)
            .count()
            >= admission.per_ip
        {
            if let Some(at) = self.running.iter().position(|(_, from, _)| *from == ip) {
                self.evict(at, admission.port);
            }
        }
        if self.running.len() >= admission.connections && !self.running.is_empty() {
            self.evict(0, admission.port);
        }
        self.running.push_back((id, ip, task));
    }

    fn evict(&mut self, at: usize, port: &'static str) {
        if let Some((_, ip, task)) = self.running.remove(at) {
            task.abort();
            self.evicted += 1;
            if self.evicted.is_power_of_two() {
                tracing::warn!(port, %ip, evicted = self.evicted, "TLS handshakes still in progress at the cap: the oldest ended for a new connection");
            }
        }
    }

    fn finished(&mut self, id: u64) {
        self.running.retain(|(i, _, _)| *i != id);
    }
}
