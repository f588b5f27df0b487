//! The threads of a server: one runtime each, serving connections from a listener or from the acceptor.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use futures::channel::{mpsc as chan, oneshot};
use futures::{FutureExt, StreamExt};

use super::{Balance, Builder, Pattern, RunningServer, Worker, WorkerStats};
use crate::net::{TcpListener, TcpStream};

/// Where a worker's connections come from.
enum Source {
    /// It accepts them itself; `shared`: other workers accept from the same socket.
    Listener { listener: std::net::TcpListener, shared: bool },
    /// The acceptor hands them over.
    Handed(chan::UnboundedReceiver<std::net::TcpStream>),
}

/// A running thread and the way to tell it to stop (with the deadline for its open connections).
struct Running {
    stop: oneshot::Sender<Duration>,
    join: std::thread::JoinHandle<io::Result<()>>,
}

impl Running {
    fn stop(self, deadline: Duration) -> io::Result<()> {
        let _ = self.stop.send(deadline); // a thread that already ended has dropped its receiver
        self.join.join().unwrap_or_else(|_| Err(io::Error::other("a server thread panicked")))
    }
}

/// The threads of a running server. The acceptor (if any) stops first, so that every connection it accepted
/// reaches a worker before the workers stop taking them.
#[derive(Default)]
pub(super) struct Threads {
    acceptor: Option<Running>,
    workers: Vec<Running>,
}

impl Threads {
    /// Stops every thread and joins it; the first error any of them had.
    pub(super) fn stop(&mut self, deadline: Duration) -> io::Result<()> {
        let mut first = self.acceptor.take().map_or(Ok(()), |a| a.stop(deadline));
        for worker in self.workers.drain(..) {
            let res = worker.stop(deadline);
            if first.is_ok() {
                first = res;
            }
        }
        first
    }
}

/// The handler as every worker shares it.
type Shared<H> = Arc<H>;

pub(super) fn start<H, F>(
    builder: Builder,
    listeners: Vec<std::net::TcpListener>,
    local_addr: SocketAddr,
    handler: Shared<H>,
) -> io::Result<RunningServer>
where
    H: Fn(TcpStream, Worker) -> F + Send + Sync + 'static,
    F: Future<Output = io::Result<()>> + 'static,
{
    let pattern = builder.pattern;
    let n = builder.workers(pattern);
    let stats: Vec<Arc<WorkerStats>> = (0..n).map(|_| Arc::default()).collect();
    let mut threads = Threads::default();
    let mut handed = Vec::new();
    for (index, stats) in stats.iter().enumerate() {
        let source = match pattern {
            Pattern::ReusePort => Source::Listener { listener: listeners[index].try_clone()?, shared: false },
            Pattern::AcceptorWorkers => {
                let (tx, rx) = chan::unbounded();
                handed.push(tx);
                Source::Handed(rx)
            }
            Pattern::SingleLoop => Source::Listener { listener: listeners[0].try_clone()?, shared: false },
            Pattern::SharedListener => Source::Listener { listener: listeners[0].try_clone()?, shared: true },
        };
        let (stats, handler, interval) = (stats.clone(), handler.clone(), builder.health_interval);
        let spawned = spawn_thread(&builder, format!("uvio-server-{index}"), move |stop| {
            let (stopping_tx, stopping) = oneshot::channel();
            let worker = Worker { index, handle: crate::Handle::current(), stopping: stopping.shared() };
            serve(worker, stopping_tx, source, stats, handler, interval, stop)
        });
        match spawned {
            Ok(running) => threads.workers.push(running),
            Err(e) => {
                let _ = threads.stop(Duration::ZERO);
                return Err(e);
            }
        }
    }
    if pattern == Pattern::AcceptorWorkers {
        let listener = listeners[0].try_clone()?;
        let (stats, balance) = (stats.clone(), builder.balance);
        match spawn_thread(&builder, "uvio-server-acceptor".into(), move |stop| {
            accept_and_hand(listener, handed, stats, balance, stop)
        }) {
            Ok(running) => threads.acceptor = Some(running),
            Err(e) => {
                let _ = threads.stop(Duration::ZERO);
                return Err(e);
            }
        }
    }
    Ok(RunningServer { local_addr, pattern, stats, threads })
}

/// A thread with a runtime of `builder`'s engine running `main(stop)`; returns once the runtime is built (or
/// with the error that kept it from being built).
fn spawn_thread<M, Fut>(builder: &Builder, name: String, main: M) -> io::Result<Running>
where
    M: FnOnce(oneshot::Receiver<Duration>) -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<()>>,
{
    let backend = builder.backend;
    let (stop, stop_rx) = oneshot::channel();
    let (ready_tx, ready) = mpsc::channel();
    let join = std::thread::Builder::new().name(name).spawn(move || {
        let rt = match crate::Builder::new().backend(backend).build() {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return Ok(());
            }
        };
        let _ = ready_tx.send(Ok(()));
        let _enter = rt.enter();
        rt.block_on(main(stop_rx))
    })?;
    match ready.recv() {
        Ok(Ok(())) => Ok(Running { stop, join }),
        Ok(Err(e)) => {
            let _ = join.join();
            Err(e)
        }
        Err(_) => Err(io::Error::other("a server thread died while starting")),
    }
}

/// Counts a connection in and starts its handler; the handler's end (or cancellation) counts it out.
fn start_handler<H, F>(conn: TcpStream, worker: &Worker, stats: &Arc<WorkerStats>, handler: &H)
where
    H: Fn(TcpStream, Worker) -> F,
    F: Future<Output = io::Result<()>> + 'static,
{
    stats.accepted.fetch_add(1, Ordering::Relaxed);
    stats.open.fetch_add(1, Ordering::Relaxed);
    let open = Open(stats.clone());
    let fut = handler(conn, worker.clone());
    crate::spawn_local(async move {
        let res = fut.await;
        open.0.finished.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = res {
            open.0.errors.fetch_add(1, Ordering::Relaxed);
            log::debug!(target: "uvio", "server: a handler failed: {e}");
        }
        drop(open);
    });
}

/// One open connection of a worker: dropping it (the handler returned or was cancelled) counts it out.
struct Open(Arc<WorkerStats>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A worker's life: take connections until told to stop, then take what is already queued, stop taking, tell
/// the handlers (`Worker::stopping`), and let open connections finish until the deadline. Returning ends the runtime, which cancels what still runs.
async fn serve<H, F>(
    worker: Worker,
    stopping: oneshot::Sender<()>,
    source: Source,
    stats: Arc<WorkerStats>,
    handler: Shared<H>,
    health_interval: Duration,
    stop: oneshot::Receiver<Duration>,
) -> io::Result<()>
where
    H: Fn(TcpStream, Worker) -> F,
    F: Future<Output = io::Result<()>> + 'static,
{
    let health_stats = stats.clone();
    crate::spawn_local(async move {
        if let Ok(mut monitor) = crate::health::Monitor::new(Duration::from_millis(10), health_interval) {
            while let Some(report) = monitor.next().await {
                *health_stats.health.lock().unwrap_or_else(|e| e.into_inner()) = Some(report);
            }
        }
    });
    let deadline = match source {
        Source::Listener { listener, shared } => {
            let listener =
                if shared { TcpListener::from_std_shared(listener)? } else { TcpListener::from_std(listener)? };
            let accepting = async {
                loop {
                    match listener.accept().await {
                        Ok((conn, _)) => start_handler(conn, &worker, &stats, &*handler),
                        Err(e) => accept_failed(&stats, e).await,
                    }
                    stats.empty_wakeups.store(listener.empty_wakeups(), Ordering::Relaxed);
                }
            };
            let deadline = until_stopped(accepting, stop).await;
            stats.empty_wakeups.store(listener.empty_wakeups(), Ordering::Relaxed);
            for conn in accepted_by_windows_libuv(&listener).await {
                start_handler(conn, &worker, &stats, &*handler);
            }
            for conn in drain(listener, &stats) {
                take_handed(conn, &worker, &stats, &*handler);
            }
            deadline
        }
        Source::Handed(mut handed) => {
            let taking = async {
                while let Some(conn) = handed.next().await {
                    take_handed(conn, &worker, &stats, &*handler);
                }
                std::future::pending::<()>().await
            };
            let deadline = until_stopped(taking, stop).await;
            // The acceptor has stopped: what it handed over is all in the channel.
            handed.close();
            while let Ok(conn) = handed.try_recv() {
                take_handed(conn, &worker, &stats, &*handler);
            }
            deadline
        }
    };
    // Handlers waiting on `Worker::stopping` finish now; the queued connections taken above see it at once.
    drop(stopping);
    let until = Instant::now() + deadline;
    while stats.open() > 0 {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        crate::time::sleep(left.min(Duration::from_millis(5))).await;
    }
    Ok(())
}

fn take_handed<H, F>(conn: std::net::TcpStream, worker: &Worker, stats: &Arc<WorkerStats>, handler: &H)
where
    H: Fn(TcpStream, Worker) -> F,
    F: Future<Output = io::Result<()>> + 'static,
{
    match TcpStream::from_std(conn) {
        Ok(conn) => start_handler(conn, worker, stats, handler),
        Err(e) => {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            log::debug!(target: "uvio", "server: a handed connection could not be taken: {e}");
        }
    }
}

/// An accept error (`EMFILE`, a connection reset before it was taken, …): counted, logged, and followed by a
/// short pause, since retrying at once would usually meet the same error.
async fn accept_failed(stats: &WorkerStats, e: io::Error) {
    stats.errors.fetch_add(1, Ordering::Relaxed);
    log::debug!(target: "uvio", "server: accept failed: {e}");
    crate::time::sleep(Duration::from_millis(5)).await;
}

/// Runs `work` (which never ends) until `stop` says so: the deadline it sent, or zero if its sender is gone.
async fn until_stopped(work: impl Future<Output = ()>, stop: oneshot::Receiver<Duration>) -> Duration {
    let mut work = std::pin::pin!(work);
    futures::select_biased! {
        deadline = stop.fuse() => deadline.unwrap_or(Duration::ZERO),
        () = work.as_mut().fuse() => Duration::ZERO,
    }
}

/// On Windows, libuv accepts ahead with `AcceptEx` on sockets of its own, which handing the listener to std
/// (as [`drain`] does) would lose: there the queue is first taken through the engine, until no connection has
/// come for [`QUIET`]. Elsewhere nothing (the exact drain takes it all).
async fn accepted_by_windows_libuv(listener: &TcpListener) -> Vec<TcpStream> {
    let mut taken = Vec::new();
    if cfg!(windows) {
        while let Ok(Ok((conn, _))) = crate::time::timeout(QUIET, listener.accept()).await {
            taken.push(conn);
        }
    }
    taken
}

/// How long the listen queue must stay empty before [`accepted_by_windows_libuv`] stops taking connections.
const QUIET: Duration = Duration::from_millis(10);

/// Stops accepting on `listener` and takes every connection it holds: those its engine had already accepted,
/// then the kernel's accept queue, with non-blocking accepts until `EAGAIN`. A connection left queued in a
/// listener that closes would be reset; one that arrives after this is refused (or, on a shared listener,
/// taken by a worker still running). Failures are counted on `stats` and end the drain.
fn drain(listener: TcpListener, stats: &WorkerStats) -> Vec<std::net::TcpStream> {
    let failed = |e: io::Error| {
        stats.errors.fetch_add(1, Ordering::Relaxed);
        log::debug!(target: "uvio", "server: draining the listen queue failed: {e}");
    };
    let (listener, mut taken) = match listener.into_std() {
        Ok(parts) => parts,
        Err(e) => {
            failed(e);
            return Vec::new();
        }
    };
    if let Err(e) = listener.set_nonblocking(true) {
        failed(e);
        return taken;
    }
    loop {
        match listener.accept() {
            Ok((conn, _)) => taken.push(conn),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return taken,
            // Interrupted, or a connection reset while queued: the next one.
            Err(e) if matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted) => {}
            Err(e) => {
                failed(e);
                return taken;
            }
        }
    }
}

/// The acceptor's life: accept, hand each connection to a worker (as a std socket: it moves to the worker's
/// runtime), until told to stop; then hand over what is already queued too.
async fn accept_and_hand(
    listener: std::net::TcpListener,
    workers: Vec<chan::UnboundedSender<std::net::TcpStream>>,
    stats: Vec<Arc<WorkerStats>>,
    balance: Balance,
    stop: oneshot::Receiver<Duration>,
) -> io::Result<()> {
    let listener = TcpListener::from_std(listener)?;
    let mut picker = Picker { balance, next: 0, sent: vec![0; workers.len()] };
    let hand = |conn: TcpStream, picker: &mut Picker| {
        let workers = &workers;
        let stats = &stats;
        let to = picker.pick(stats);
        async move {
            match conn.into_std().await {
                Ok((conn, unread)) => {
                    // A connection nobody has read from has nothing received in user space.
                    debug_assert!(unread.is_empty());
                    let _ = workers[to].unbounded_send(conn);
                }
                Err(e) => {
                    stats[to].errors.fetch_add(1, Ordering::Relaxed);
                    log::debug!(target: "uvio", "server: a connection could not be handed over: {e}");
                }
            }
        }
    };
    let accepting = async {
        loop {
            match listener.accept().await {
                Ok((conn, _)) => hand(conn, &mut picker).await,
                // Counted on the worker it would have gone to next.
                Err(e) => accept_failed(&stats[picker.next % stats.len()], e).await,
            }
        }
    };
    let _deadline = until_stopped(accepting, stop).await;
    for conn in accepted_by_windows_libuv(&listener).await {
        hand(conn, &mut picker).await;
    }
    for conn in drain(listener, &stats[picker.next % stats.len()]) {
        let to = picker.pick(&stats);
        let _ = workers[to].unbounded_send(conn);
    }
    Ok(())
}

/// Picks the worker for each handed connection.
struct Picker {
    balance: Balance,
    next: usize,
    /// Connections handed to each worker (some may still be in its channel).
    sent: Vec<u64>,
}

impl Picker {
    fn pick(&mut self, stats: &[Arc<WorkerStats>]) -> usize {
        let to = match self.balance {
            Balance::RoundRobin => self.next % stats.len(),
            // Open = handed and not yet finished, counting what still waits in the channel.
            Balance::LeastLoaded => {
                (0..stats.len()).min_by_key(|&i| self.sent[i].saturating_sub(stats[i].finished())).unwrap_or(0)
            }
        };
        self.next = to + 1;
        self.sent[to] += 1;
        to
    }
}
