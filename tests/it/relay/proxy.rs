//! A fault-injecting TCP proxy for tests: put it between the relay and the real broker
//! or Redis (which are never stopped), then cut, black-hole or delay the traffic, and
//! heal it.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What the proxy does to traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything at once.
    None,
    /// Close every connection, and every new one as soon as it is accepted (a broker
    /// restart, a firewall reset).
    Cut,
    /// Keep connections open and accept new ones, but forward nothing: bytes read are
    /// dropped (a network partition; nothing tells either side).
    BlackHole,
    /// Forward every chunk this long after it was read, in order (a slow link).
    Delay(Duration),
}

/// The proxy. Dropping it stops accepting; connections end with their peers.
pub struct FaultProxy {
    addr: SocketAddr,
    fault: watch::Sender<(Fault, u64)>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free port of 127.0.0.1, forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (fault, _) = watch::channel((Fault::None, 0));
        let watcher = fault.subscribe();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let faults = watcher.clone();
                tokio::spawn(async move {
                    if matches!(faults.borrow().0, Fault::Cut) {
                        return; // dropped: closed at once
                    }
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    pipe(client, server, faults).await;
                });
            }
        });
        Self {
            addr,
            fault,
            accept,
        }
    }

    /// Where to connect instead of the broker: its URL through the proxy (guest, the
    /// default vhost).
    pub fn amqp_url(&self) -> powens_webhooks::relay::AmqpUrl {
        powens_webhooks::relay::AmqpUrl::parse(&self.amqp_url_text()).unwrap()
    }

    /// [`FaultProxy::amqp_url`] as text, password included (for a child's environment).
    pub fn amqp_url_text(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }

    /// Redis through the proxy, database `db`.
    pub fn redis_url(&self, db: u8) -> String {
        format!("redis://{}/{db}", self.addr)
    }

    /// Starts `fault` (replacing any other); [`Fault::Cut`] closes every open
    /// connection now.
    pub fn inject(&self, fault: Fault) {
        self.fault.send_modify(|(current, epoch)| {
            *current = fault;
            *epoch += 1;
        });
    }

    /// Back to forwarding everything.
    pub fn heal(&self) {
        self.inject(Fault::None);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Forwards both ways until either side closes or the traffic is cut.
async fn pipe(client: TcpStream, server: TcpStream, faults: watch::Receiver<(Fault, u64)>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = forward(client_read, server_write, faults.clone());
    let down = forward(server_read, client_write, faults);
    // When one direction ends (or is cut), the other is dropped with it: both sockets
    // close.
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

/// One direction: a reader that applies the fault to each chunk, and a writer that
/// sends chunks when they are due.
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut faults: watch::Receiver<(Fault, u64)>,
) {
    let (queue, mut due) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = async move {
        while let Some((at, chunk)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
    };
    // Returns true when the traffic was cut, false when the reading side closed.
    let reader = async move {
        let mut buffer = vec![0; 64 * 1024];
        loop {
            if matches!(faults.borrow_and_update().0, Fault::Cut) {
                return true;
            }
            let read = tokio::select! {
                read = from.read(&mut buffer) => read,
                changed = faults.changed() => {
                    if changed.is_err() {
                        return false;
                    }
                    continue;
                }
            };
            let n = match read {
                Ok(0) | Err(_) => return false,
                Ok(n) => n,
            };
            let at = match faults.borrow().0 {
                Fault::None => Instant::now(),
                Fault::Delay(delay) => Instant::now() + delay,
                Fault::BlackHole => continue,
                Fault::Cut => return true,
            };
            if queue.send((at, buffer[..n].to_vec())).is_err() {
                return false;
            }
        }
    };
    let mut writer = tokio::spawn(writer);
    if reader.await {
        writer.abort();
    } else {
        // Closed normally: deliver what is queued, then close.
        let _ = (&mut writer).await;
    }
}
