//! A fault-injecting TCP proxy for peer links, on its own runtime: every
//! connection accepted on `addr` is forwarded to the current target. The
//! test can cut the link (sever live connections and refuse new ones),
//! heal it, sever live connections once, delay every chunk, or point the
//! proxy at another target (a restarted node). Dropping the proxy stops it
//! and closes every connection it carried.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Ctl {
    blocked: AtomicBool,
    generation: AtomicU64,
    delay_ms: AtomicU64,
    target: Mutex<SocketAddr>,
}

pub struct Proxy {
    rt: Option<tokio::runtime::Runtime>,
    pub addr: SocketAddr,
    ctl: Arc<Ctl>,
}

impl Proxy {
    /// Binds 127.0.0.1:0 now; forwards to `target` (which may be set
    /// later with [`Proxy::set_target`]).
    pub fn start(target: SocketAddr) -> Proxy {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = rt
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("proxy binds");
        let addr = listener.local_addr().unwrap();
        let ctl = Arc::new(Ctl {
            blocked: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            delay_ms: AtomicU64::new(0),
            target: Mutex::new(target),
        });
        rt.spawn(accept(listener, ctl.clone()));
        Proxy {
            rt: Some(rt),
            addr,
            ctl,
        }
    }

    /// Severs live connections and refuses new ones until [`Proxy::heal`].
    pub fn cut(&self) {
        self.ctl.blocked.store(true, Ordering::SeqCst);
        self.ctl.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub fn heal(&self) {
        self.ctl.blocked.store(false, Ordering::SeqCst);
        self.ctl.delay_ms.store(0, Ordering::SeqCst);
    }

    /// Severs live connections once (they may reconnect).
    pub fn sever(&self) {
        self.ctl.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Delays every forwarded chunk by `ms`.
    pub fn delay(&self, ms: u64) {
        self.ctl.delay_ms.store(ms, Ordering::SeqCst);
    }

    pub fn set_target(&self, target: SocketAddr) {
        *self.ctl.target.lock().unwrap() = target;
        self.sever();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

async fn accept(listener: TcpListener, ctl: Arc<Ctl>) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            continue;
        };
        if ctl.blocked.load(Ordering::SeqCst) {
            drop(inbound);
            continue;
        }
        let ctl = ctl.clone();
        tokio::spawn(async move {
            let target = *ctl.target.lock().unwrap();
            let generation = ctl.generation.load(Ordering::SeqCst);
            let Ok(Ok(outbound)) =
                tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(target)).await
            else {
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let (ri, wi) = inbound.into_split();
            let (ro, wo) = outbound.into_split();
            tokio::select! {
                _ = pump(ri, wo, &ctl, generation) => {}
                _ = pump(ro, wi, &ctl, generation) => {}
            }
        });
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    ctl: &Ctl,
    generation: u64,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let live = || ctl.generation.load(Ordering::SeqCst) == generation;
    while live() {
        let n = match tokio::time::timeout(Duration::from_millis(20), from.read(&mut buf)).await {
            Err(_) => continue,
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => n,
        };
        let delay = ctl.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if !live() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
