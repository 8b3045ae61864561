//! A TCP proxy on 127.0.0.1:0 in front of one or more servers (connections go to them in
//! turn, as a load balancer sends them; [`Proxy::per_request`] makes every HTTP request a
//! connection of its own, so no client keeps to one server). Switched down, it cuts every open connection and
//! closes new ones at once, as an unreachable server looks to a client; switched up, it
//! forwards again. The servers behind it keep their state (moto's bucket is in memory).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub url: String,
    up: watch::Sender<bool>,
    targets: Arc<Mutex<Vec<SocketAddr>>>,
    // Dropped last: stops the accept loop and every connection.
    _rt: tokio::runtime::Runtime,
}

impl Proxy {
    pub fn start(targets: Vec<SocketAddr>) -> Proxy {
        Proxy::spawn(targets, false)
    }

    /// A balancer without affinity: each request's head gets `Connection: close`, so the
    /// server closes after answering and the client's next request is a new connection,
    /// sent to the next server in turn.
    pub fn per_request(targets: Vec<SocketAddr>) -> Proxy {
        Proxy::spawn(targets, true)
    }

    fn spawn(targets: Vec<SocketAddr>, per_request: bool) -> Proxy {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (up, rx) = watch::channel(true);
        let targets = Arc::new(Mutex::new(targets));
        let to = targets.clone();
        rt.spawn(async move {
            let mut turn = 0usize;
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                if !*rx.borrow() {
                    // Down: closed at once.
                    continue;
                }
                let target = {
                    let to = to.lock().unwrap();
                    if to.is_empty() {
                        continue;
                    }
                    turn += 1;
                    to[turn % to.len()]
                };
                let mut down = rx.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    if per_request && close_after_one(&mut inbound, &mut outbound).await.is_err() {
                        return;
                    }
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = down.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Proxy {
            url: format!("http://{addr}"),
            up,
            targets,
            _rt: rt,
        }
    }

    /// Forward (`true`) or cut and refuse (`false`).
    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }

    pub fn set_targets(&self, targets: Vec<SocketAddr>) {
        *self.targets.lock().unwrap() = targets;
    }
}

/// Forward the request head from `inbound` with `Connection: close` added after its request
/// line (the test's requests are GETs: no body follows the head).
async fn close_after_one(inbound: &mut TcpStream, outbound: &mut TcpStream) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = inbound.read(&mut buf).await?;
        if n == 0 || head.len() > 64 << 10 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.windows(2).position(|w| w == b"\r\n").unwrap_or(0) + 2;
    outbound.write_all(&head[..line]).await?;
    outbound.write_all(b"Connection: close\r\n").await?;
    outbound.write_all(&head[line..]).await
}
