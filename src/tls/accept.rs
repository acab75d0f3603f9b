//! The accept loop: TCP → TLS (with a deadline) → HTTP/1.1 or HTTP/2.
//!
//! Our own loop rather than a ready-made server because the handler must
//! see the peer certificate: each connection's verified leaf is parsed once
//! into a [`PeerCert`] and attached to every request on it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::config::TlsState;
use super::connections::{Connections, Registration};
use super::identity::Identity;
use super::identity::PeerCert;

/// Limits of the accept loop.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Most simultaneous connections; beyond it new TCP connections are
    /// closed at once, so a flood cannot exhaust memory or descriptors.
    pub max_connections: usize,
    /// Time to finish the TLS handshake (slow or silent clients lose their
    /// slot after this).
    pub handshake_timeout: Duration,
    /// Time to send a request's headers (slowloris).
    pub header_read_timeout: Duration,
    /// Largest request head (HTTP/1.1 read buffer, at least 8 KiB) or
    /// header list (HTTP/2).
    pub max_header_bytes: usize,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// Most connections one identity (or unidentified serial) may hold.
    pub max_connections_per_identity: usize,
    /// How long a connection may stay open with no request in progress.
    pub idle_timeout: Duration,
    /// How long an HTTP/2 peer has to answer a keep-alive ping.
    pub keep_alive_timeout: Duration,
}

/// hyper's smallest HTTP/1.1 read buffer (it panics below this).
const MIN_HEADER_BUF: usize = 8192;

impl ServeOptions {
    /// The limits `[server]` sets, shared by the gateway and the benchmark's
    /// baseline echo server so both accept connections the same way.
    pub fn from_config(server: &crate::config::ServerConfig) -> Self {
        Self {
            max_connections: server.max_connections,
            handshake_timeout: Duration::from_secs(server.handshake_timeout_secs),
            header_read_timeout: Duration::from_secs(server.header_read_timeout_secs),
            max_header_bytes: server.max_header_bytes,
            shutdown_grace: Duration::from_secs(server.shutdown_grace_secs),
            max_connections_per_identity: server.per_identity_connections(),
            idle_timeout: Duration::from_secs(server.idle_timeout_secs.max(1)),
            keep_alive_timeout: Duration::from_secs(server.keep_alive_timeout_secs.max(1)),
        }
    }
}

/// Facts about the connection a request arrived on, attached to each
/// request as an extension.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// Connection number (for logs).
    pub id: u64,
    /// The peer's address.
    pub remote: SocketAddr,
    /// The verified client certificate.
    pub peer: Arc<PeerCert>,
}

/// Serves `app` on `listener` until `shutdown` completes, then lets open
/// requests finish for up to `shutdown_grace`. Every connection is
/// registered in `connections`, so a revocation or suspension can close it.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<TlsState>,
    app: Router,
    opts: ServeOptions,
    connections: Arc<Connections>,
    shutdown: impl Future<Output = ()>,
) {
    let limit = Arc::new(Semaphore::new(opts.max_connections));
    let pending = Arc::new(Pending::new(opts.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let counter = AtomicU64::new(0);
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let id = counter.fetch_add(1, Ordering::Relaxed);
        // A handshake in progress takes no connection slot: a client
        // without any certificate could otherwise hold every slot by
        // opening connections and sending nothing. Handshakes have their
        // own bounded list, and when it is full the one waiting longest
        // gives way to the new one (a real client finishes its handshake
        // in milliseconds; a staller is the one waiting).
        let pending_guard = pending.admit(id);
        let shared = Shared {
            tls: tls.clone(),
            app: app.clone(),
            opts: opts.clone(),
            connections: connections.clone(),
            limit: limit.clone(),
            stop: stop_rx.clone(),
        };
        tokio::spawn(connection(shared, stream, remote, id, pending_guard));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a permit until it ends: having them all back
    // means every open request finished.
    let all = u32::try_from(opts.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(opts.shutdown_grace, limit.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period elapsed with requests still open");
    }
}

/// What each connection's task takes from the accept loop.
struct Shared {
    tls: Arc<TlsState>,
    app: Router,
    opts: ServeOptions,
    connections: Arc<Connections>,
    limit: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
}

/// One connection from TCP to its end: the handshake (unless a newer one
/// takes its place), the connection limits, then HTTP until the peer
/// leaves, its certificate is revoked, it idles out or the gateway stops.
async fn connection(
    s: Shared,
    stream: TcpStream,
    remote: SocketAddr,
    id: u64,
    pending_guard: PendingGuard,
) {
    let Shared {
        tls,
        app,
        opts,
        connections,
        limit,
        mut stop,
    } = s;
    let shaken = tokio::select! {
        r = handshake(stream, remote, id, &tls, opts.handshake_timeout) => r,
        () = pending_guard.evicted() => {
            tracing::info!(conn = id, %remote, "TLS handshake given up for a newer one (too many in progress)");
            None
        }
    };
    drop(pending_guard);
    let Some((io, info)) = shaken else {
        return;
    };
    let Some((_permit, registration)) = admit(&limit, &connections, &info, &opts) else {
        return;
    };
    let activity = Arc::new(Activity::default());
    let service = service(app, info, activity.clone());
    let builder = http_builder(&opts);
    // HTTP/2 has no heads to time: its frames (pings, settings) come
    // between requests, and its streams each begin a request. Which one
    // the connection speaks is decided as hyper-util's auto builder does,
    // by its first bytes (ALPN is not consulted: a client that negotiated
    // `h2` and sends an HTTP/1.1 head is served HTTP/1.1).
    let io = TokioIo::new(Watched {
        inner: io,
        activity: activity.clone(),
        proto: Proto::Undecided(0),
    });
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut draining = false;
    // When the orderly close began: a peer that does not let it finish
    // (an HTTP/2 peer that never answers the GOAWAY's ping) is cut once
    // it has had `closing_grace` with no request in progress.
    let mut closing_since: Option<Instant> = None;
    let closing_grace = opts.header_read_timeout.max(Duration::from_secs(1));
    let idle_check =
        (opts.idle_timeout.min(opts.header_read_timeout) / 4).max(Duration::from_millis(100));
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(conn = id, error = %e, "connection ended with an error");
                }
                break;
            }
            () = registration.close.notified() => {
                // Revoked or suspended: drop the socket now, even mid-request.
                tracing::info!(conn = id, %remote, "connection closed: certificate revoked or partner suspended");
                break;
            }
            _ = stop.changed(), if !draining => {
                draining = true;
                closing_since = Some(Instant::now());
                close_in_order(conn.as_mut(), &activity);
            }
            () = tokio::time::sleep(idle_check) => {
                if activity.head_overdue(opts.header_read_timeout) {
                    // A request head begun and not finished in time
                    // (slowloris), or a draining connection's: cut off.
                    tracing::info!(conn = id, %remote, "request head not finished in time; connection closed");
                    break;
                }
                if activity.answer_stalled(opts.idle_timeout) {
                    // An answer the client stopped reading (a slow read):
                    // it counts as a request in progress, so neither the
                    // idle close nor a drain would ever end it.
                    tracing::info!(conn = id, %remote, "answer not read by the client in time; connection closed");
                    break;
                }
                if closing_since.is_some_and(|t| t.elapsed() >= closing_grace)
                    && activity.idle_for(closing_grace)
                {
                    tracing::info!(conn = id, %remote, "orderly close not finished by the peer; connection closed");
                    break;
                }
                if !draining && activity.idle_for(opts.idle_timeout) {
                    // No request in progress for the idle timeout
                    // (HTTP/2 has no deadline of its own for this):
                    // let the slot go.
                    tracing::debug!(conn = id, "idle connection closed");
                    draining = true;
                    closing_since = Some(Instant::now());
                    close_in_order(conn.as_mut(), &activity);
                }
            }
        }
    }
}

/// The router for one connection: each request carries the connection's
/// facts and counts as in progress in `activity` until its answer is sent
/// whole (or given up). Bytes of a pipelined request that come meanwhile
/// wait in hyper's buffer and are no late head, and a long download is not
/// idle.
fn service(
    app: Router,
    info: ConnectionInfo,
    activity: Arc<Activity>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(info.clone());
        let busy = activity.begin();
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await?;
            Ok(resp.map(|body| {
                axum::body::Body::new(Answering {
                    body,
                    rest: bytes::Bytes::new(),
                    sending: Some(Sending::start(&busy.0)),
                    busy: Some(busy),
                })
            }))
        }
    })
}

/// Ends a connection in order: hyper finishes the request in progress and
/// closes with TLS `close_notify`. Before the first byte, hyper-util is
/// still reading the bytes that tell HTTP/1.1 from HTTP/2, and its graceful
/// shutdown gives that up with an error (the socket dropped, no
/// `close_notify`); the connection reads an end of stream instead, which
/// hyper closes in order.
fn close_in_order<I, S, B>(
    conn: std::pin::Pin<&mut auto::Connection<'_, I, S, TokioExecutor>>,
    activity: &Activity,
) where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    TokioExecutor: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    if activity.spoke.load(Ordering::Relaxed) {
        conn.graceful_shutdown();
    } else {
        activity.unspoken_end.store(true, Ordering::Relaxed);
    }
}

/// A slot for a connection whose handshake is done: one of the gateway's
/// `max_connections` and one of its identity's; `None` (logged) when
/// either is full. Both are held until the connection ends.
fn admit(
    limit: &Arc<Semaphore>,
    connections: &Arc<Connections>,
    info: &ConnectionInfo,
    opts: &ServeOptions,
) -> Option<(tokio::sync::OwnedSemaphorePermit, Registration)> {
    let remote = info.remote;
    let Ok(permit) = limit.clone().try_acquire_owned() else {
        tracing::warn!(%remote, max = opts.max_connections, "connection limit reached; closing new connection");
        return None;
    };
    let partner = match &info.peer.identity {
        Ok(Identity::Partner(p)) => Some(p.to_string()),
        _ => None,
    };
    let key = info.peer.limit_key();
    let Some(registration) = connections.register_within(
        &key,
        &info.peer.serial,
        partner.as_deref(),
        opts.max_connections_per_identity,
    ) else {
        tracing::warn!(
            conn = info.id,
            %remote,
            max = opts.max_connections_per_identity,
            "connection limit of this certificate identity reached; closing new connection"
        );
        return None;
    };
    Some((permit, registration))
}

/// HTTP/1.1 and HTTP/2 with the head-size and timeout limits of `opts`.
fn http_builder(opts: &ServeOptions) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // hyper's header timer also runs while a keep-alive connection
        // waits for its next request, and drops it without TLS
        // `close_notify` when it fires: the idle limit would be the header
        // limit, and a client's request sent as it fired would meet a
        // truncated connection. `watch` bounds a head once its first
        // byte came, and idleness by `idle_timeout` with an orderly close.
        .header_read_timeout(None)
        .max_buf_size(opts.max_header_bytes.max(MIN_HEADER_BUF))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(128)
        .max_header_list_size(u32::try_from(opts.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(opts.keep_alive_timeout);
    builder
}

/// The TLS handshakes in progress, oldest first, at most `max`.
struct Pending {
    max: usize,
    list: std::sync::Mutex<std::collections::VecDeque<(u64, Arc<tokio::sync::Notify>)>>,
}

/// One handshake in the list; leaves it when dropped.
struct PendingGuard {
    id: u64,
    evict: Arc<tokio::sync::Notify>,
    pending: Arc<Pending>,
}

impl Pending {
    fn new(max: usize) -> Self {
        Self {
            max,
            list: std::sync::Mutex::new(std::collections::VecDeque::new()),
        }
    }

    fn with<R>(
        &self,
        f: impl FnOnce(&mut std::collections::VecDeque<(u64, Arc<tokio::sync::Notify>)>) -> R,
    ) -> R {
        match self.list.lock() {
            Ok(mut l) => f(&mut l),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Adds handshake `id`; when the list is full, the oldest is told to
    /// give up.
    fn admit(self: &Arc<Self>, id: u64) -> PendingGuard {
        let evict = Arc::new(tokio::sync::Notify::new());
        self.with(|l| {
            while l.len() >= self.max {
                match l.pop_front() {
                    // notify_one keeps a permit if the task is not waiting yet.
                    Some((_, oldest)) => oldest.notify_one(),
                    None => break,
                }
            }
            l.push_back((id, evict.clone()));
        });
        PendingGuard {
            id,
            evict,
            pending: self.clone(),
        }
    }
}

impl PendingGuard {
    /// Completes when a newer handshake took this one's place.
    async fn evicted(&self) {
        self.evict.notified().await;
    }
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        let id = self.id;
        self.pending.with(|l| l.retain(|(i, _)| *i != id));
    }
}

/// Requests in progress on one connection and when the last one ended,
/// for the idle timeout.
#[derive(Debug)]
struct Activity {
    in_flight: AtomicUsize,
    last: std::sync::Mutex<Instant>,
    /// When bytes came with no request in progress: a head begun (or a
    /// body hyper drains after its answer), which must become a request
    /// within the header timeout.
    head_since: std::sync::Mutex<Option<Instant>>,
    /// Some byte came (hyper-util has begun telling the protocol).
    spoke: std::sync::atomic::AtomicBool,
    /// Closing before any byte came: the stream reads as ended.
    unspoken_end: std::sync::atomic::AtomicBool,
    /// Answers whose bodies are being sent, by number, each with whose
    /// turn it is. hyper asks for the next frame only once the last is on
    /// its way: when the client stops reading, HTTP/1.1's socket fills and
    /// HTTP/2's flow-control window stays shut, and no frame is asked for.
    /// Each answer is timed on its own (one HTTP/2 stream kept shut is not
    /// hidden by others that move), and only while the client holds it up,
    /// not while the server is still making its next frame.
    answers: std::sync::Mutex<std::collections::HashMap<u64, Turn>>,
    /// The number of the next answer.
    next_answer: AtomicU64,
}

/// Whose turn an answer being sent is.
#[derive(Debug, Clone, Copy)]
enum Turn {
    /// hyper has the last frame (or the head) and has not asked for the
    /// next since this instant: it waits for the client to take it.
    Client(Instant),
    /// hyper asked for the next frame and the body has none yet (an audit
    /// page being queried, a chunk being read): the server's turn.
    Server,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            last: std::sync::Mutex::new(Instant::now()),
            head_since: std::sync::Mutex::new(None),
            spoke: std::sync::atomic::AtomicBool::new(false),
            unspoken_end: std::sync::atomic::AtomicBool::new(false),
            answers: std::sync::Mutex::new(std::collections::HashMap::new()),
            next_answer: AtomicU64::new(0),
        }
    }
}

/// Locks `m` even if a holder panicked (the values are plain instants).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One request in progress; ends it when dropped (answered or abandoned).
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body; its request stays in progress until the body ends or
/// is dropped, and each frame hyper takes from it is progress.
struct Answering {
    body: axum::body::Body,
    /// What is left of a data frame larger than [`MAX_PIECE`], handed to
    /// hyper a piece at a time: HTTP/2 takes a frame whole into its send
    /// buffer whatever the stream's window, so one large frame (a `Json`,
    /// a `Vec<u8>`) would end the body at once and leave an answer the
    /// client never reads with nothing to time it.
    rest: bytes::Bytes,
    /// Dropped before `busy`: the answer ends first.
    sending: Option<Sending>,
    busy: Option<Busy>,
}

/// The largest data frame hyper is given (HTTP/2's default frame size):
/// what an HTTP/2 stream can hold past its window once its body ended.
const MAX_PIECE: usize = 16 * 1024;

/// An answer being sent; ends it when dropped.
struct Sending {
    activity: Arc<Activity>,
    id: u64,
}

impl Sending {
    fn start(activity: &Arc<Activity>) -> Self {
        let id = activity.next_answer.fetch_add(1, Ordering::Relaxed);
        lock(&activity.answers).insert(id, Turn::Client(Instant::now()));
        Self {
            activity: activity.clone(),
            id,
        }
    }

    /// hyper asked for a frame and got `ready` or not.
    fn polled(&self, ready: bool) {
        let turn = if ready {
            Turn::Client(Instant::now())
        } else {
            Turn::Server
        };
        lock(&self.activity.answers).insert(self.id, turn);
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        lock(&self.activity.answers).remove(&self.id);
    }
}

impl http_body::Body for Answering {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if !self.rest.is_empty() {
            let n = self.rest.len().min(MAX_PIECE);
            let piece = self.rest.split_to(n);
            if let Some(s) = &self.sending {
                s.polled(true);
            }
            return std::task::Poll::Ready(Some(Ok(http_body::Frame::data(piece))));
        }
        let mut polled = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &mut polled
            && let Some(data) = frame.data_mut()
            && data.len() > MAX_PIECE
        {
            self.rest = data.split_off(MAX_PIECE);
        }
        match &polled {
            std::task::Poll::Ready(Some(Ok(_))) => {
                if let Some(s) = &self.sending {
                    s.polled(true);
                }
            }
            std::task::Poll::Ready(None | Some(Err(_))) => {
                self.sending = None;
                self.busy = None;
            }
            std::task::Poll::Pending => {
                if let Some(s) = &self.sending {
                    s.polled(false);
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let body = self.body.size_hint();
        let rest = self.rest.len() as u64;
        let mut hint = http_body::SizeHint::new();
        hint.set_lower(body.lower().saturating_add(rest));
        if let Some(upper) = body.upper() {
            hint.set_upper(upper.saturating_add(rest));
        }
        hint
    }
}

impl Activity {
    fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        *lock(&self.head_since) = None;
        self.touch();
        Busy(self.clone())
    }

    /// Bytes arrived: with no request in progress they begin a head.
    fn received(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            lock(&self.head_since).get_or_insert_with(Instant::now);
        }
    }

    /// What was timed as a head was none (the HTTP/2 preface).
    fn no_head(&self) {
        *lock(&self.head_since) = None;
    }

    /// A head begun with no request made of it within `limit`.
    fn head_overdue(&self, limit: Duration) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
            && lock(&self.head_since).is_some_and(|t| t.elapsed() >= limit)
    }

    fn touch(&self) {
        *lock(&self.last) = Instant::now();
    }

    /// An answer being sent has waited on the client for `limit` with no
    /// frame taken: the client stopped reading it.
    fn answer_stalled(&self, limit: Duration) -> bool {
        lock(&self.answers)
            .values()
            .any(|t| matches!(t, Turn::Client(since) if since.elapsed() >= limit))
    }

    /// No request in progress, none begun, and none ended within `limit`.
    fn idle_for(&self, limit: Duration) -> bool {
        if lock(&self.head_since).is_some() {
            return false;
        }
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return false;
        }
        lock(&self.last).elapsed() >= limit
    }
}

async fn handshake(
    stream: TcpStream,
    remote: SocketAddr,
    id: u64,
    tls: &TlsState,
    timeout: Duration,
) -> Option<(tokio_rustls::server::TlsStream<TcpStream>, ConnectionInfo)> {
    let _ = stream.set_nodelay(true);
    let acceptor = TlsAcceptor::from(tls.current());
    let tls_stream = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::info!(conn = id, %remote, error = %e, "TLS handshake refused");
            return None;
        }
        Err(_) => {
            tracing::info!(conn = id, %remote, "TLS handshake timed out");
            return None;
        }
    };
    let (_, session) = tls_stream.get_ref();
    // The verifier requires a client certificate, so this is always set.
    let (leaf, rest) = session.peer_certificates()?.split_first()?;
    let mut peer = PeerCert::from_der(leaf);
    // Which accepted CA issued it: the gate checks on every request that
    // this CA may vouch for the identity the certificate names.
    peer.anchor = tls.anchor_of(leaf, rest);
    let peer = Arc::new(peer);
    Some((tls_stream, ConnectionInfo { id, remote, peer }))
}

/// The TLS stream, noting in [`Activity`] when bytes arrive, so a request
/// head is timed from its first byte rather than from the end of the
/// previous answer.
struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
    /// What the connection speaks, as far as its first bytes tell.
    proto: Proto,
}

/// The protocol of a connection, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    /// The bytes so far (this many) are a beginning of the HTTP/2 preface;
    /// until it is whole they are timed as a head.
    Undecided(usize),
    /// HTTP/1.1: bytes between requests begin a head.
    Http1,
    /// HTTP/2: no heads.
    Http2,
}

/// How an HTTP/2 connection begins (hyper-util's auto builder serves
/// HTTP/2 exactly when the first bytes are these).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

impl Proto {
    /// The protocol after `read` follows the bytes seen so far.
    fn after(self, read: &[u8]) -> Proto {
        let Proto::Undecided(seen) = self else {
            return self;
        };
        let rest = H2_PREFACE.get(seen..).unwrap_or_default();
        let n = read.len().min(rest.len());
        if read.get(..n) != rest.get(..n) {
            Proto::Http1
        } else if n == rest.len() {
            Proto::Http2
        } else {
            Proto::Undecided(seen + n)
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Watched<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.proto == Proto::Undecided(0) && self.activity.unspoken_end.load(Ordering::Relaxed) {
            // Closed before its first byte (see `close_in_order`).
            return std::task::Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().get(before..).unwrap_or_default();
        if matches!(polled, std::task::Poll::Ready(Ok(()))) && !read.is_empty() {
            self.activity.spoke.store(true, Ordering::Relaxed);
            let was = self.proto;
            self.proto = was.after(read);
            match self.proto {
                // A preface dripped from "P" is timed like any head.
                Proto::Undecided(_) | Proto::Http1 => self.activity.received(),
                // Its first bytes were timed as a head until whole.
                Proto::Http2 if was != Proto::Http2 => self.activity.no_head(),
                Proto::Http2 => {}
            }
        }
        polled
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::{H2_PREFACE, Proto};

    #[test]
    fn the_protocol_is_told_by_the_whole_preface() {
        let start = Proto::Undecided(0);
        assert_eq!(start.after(H2_PREFACE), Proto::Http2);
        assert_eq!(start.after(b"GET / HTTP/1.1\r\n"), Proto::Http1);
        // Dripped: undecided until whole, HTTP/1.1 at the first difference.
        let half = start.after(b"PRI * HTTP/2.0");
        assert_eq!(half, Proto::Undecided(14));
        assert_eq!(half.after(b"\r\n\r\nSM\r\n\r\n"), Proto::Http2);
        assert_eq!(half.after(b"\r\nHost: x\r\n"), Proto::Http1);
        // Once decided, later bytes change nothing.
        assert_eq!(Proto::Http1.after(H2_PREFACE), Proto::Http1);
        assert_eq!(Proto::Http2.after(b"GET"), Proto::Http2);
    }
}
