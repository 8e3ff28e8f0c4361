//! The server's open connections and the `--web.max-connections` cap.
//!
//! When the cap is reached, a new connection closes the oldest *idle* one: a connection that
//! is not serving a request, i.e. one that has not sent a complete request head yet (a
//! slow-loris or a connection that sends nothing) or a keep-alive connection between two
//! requests. A flood of idle connections therefore cannot lock a scraper out: the scraper's
//! connection takes the place of the oldest idle one, and clients that keep a connection
//! open between scrapes just reconnect. Only when every open connection is serving a
//! request is the new one closed at once.
//!
//! A connection is busy from its request head until its response has been handed to the
//! socket: the request's [`Busy`] guard lives in the response body, and the connection only
//! counts as idle again after the next successful flush of its [`Tracked`] stream (hyper
//! may still hold the tail of a response when it drops the body).

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

/// The table of open connections, oldest first.
pub(crate) struct Connections {
    max: usize,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    open: BTreeMap<u64, Slot>,
}

struct Slot {
    /// What the connection is doing.
    activity: Arc<Activity>,
    /// Fired when the connection must close to make room.
    evict: oneshot::Sender<()>,
    /// Completes once the connection's task has closed it (its [`Ticket`] dropped).
    gone: oneshot::Receiver<()>,
}

/// What [`Connections::admit`] did.
pub(crate) enum Admission {
    /// Room was free.
    Admitted(Ticket),
    /// The cap was reached: the oldest idle connection was told to close; the receiver
    /// completes once it has. Waiting for it before accepting more keeps the descriptors
    /// in use within the cap however fast connections arrive.
    AdmittedByEviction(Ticket, oneshot::Receiver<()>),
    /// The cap was reached and every connection is serving a request.
    Refused,
}

/// One admitted connection; leaves the table when dropped.
pub(crate) struct Ticket {
    conns: Arc<Connections>,
    id: u64,
    activity: Arc<Activity>,
    evicted: oneshot::Receiver<()>,
    gone: Option<oneshot::Sender<()>>,
}

impl Connections {
    /// A table for at most `max` connections (at least one).
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            table: Mutex::new(Table::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a new connection, evicting the oldest idle one when the cap is reached.
    pub(crate) fn admit(self: &Arc<Self>) -> Admission {
        let mut t = self.lock();
        let mut evicted = None;
        if t.open.len() >= self.max {
            let victim = t
                .open
                .iter()
                .find(|(_, s)| s.activity.busy.load(Ordering::Acquire) == 0)
                .map(|(id, _)| *id);
            let Some(id) = victim else {
                return Admission::Refused;
            };
            if let Some(slot) = t.open.remove(&id) {
                let _ = slot.evict.send(());
                evicted = Some(slot.gone);
            }
        }
        let id = t.next_id;
        t.next_id += 1;
        let (evict_tx, evict_rx) = oneshot::channel();
        let (gone_tx, gone_rx) = oneshot::channel();
        let activity = Arc::new(Activity::default());
        t.open.insert(
            id,
            Slot {
                activity: activity.clone(),
                evict: evict_tx,
                gone: gone_rx,
            },
        );
        let ticket = Ticket {
            conns: self.clone(),
            id,
            activity,
            evicted: evict_rx,
            gone: Some(gone_tx),
        };
        match evicted {
            Some(gone) => Admission::AdmittedByEviction(ticket, gone),
            None => Admission::Admitted(ticket),
        }
    }

    /// Connections in the table now.
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.lock().open.len()
    }
}

impl Ticket {
    /// Marks the connection busy for each request (see [`BusyCounter`]).
    pub(crate) fn busy_counter(&self) -> BusyCounter {
        BusyCounter(self.activity.clone())
    }

    /// Completes when the connection must close to make room for a newer one.
    pub(crate) async fn evicted(&mut self) {
        // A dropped sender also means "no longer in the table".
        let _ = (&mut self.evicted).await;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.conns.lock().open.remove(&self.id);
        if let Some(gone) = self.gone.take() {
            let _ = gone.send(());
        }
    }
}

/// Requests of one connection: `busy` counts those not yet fully handed to the socket,
/// `finished` those whose response body is done but not yet flushed.
#[derive(Default)]
struct Activity {
    busy: AtomicUsize,
    finished: AtomicUsize,
}

/// Hands out [`Busy`] guards for one connection.
#[derive(Clone)]
pub(crate) struct BusyCounter(Arc<Activity>);

impl BusyCounter {
    /// The connection is busy from now until the guard is dropped and the stream flushed
    /// after that.
    pub(crate) fn enter(&self) -> Busy {
        self.0.busy.fetch_add(1, Ordering::AcqRel);
        Busy(self.0.clone())
    }

    /// Everything written so far reached the socket: finished requests stop counting.
    fn flushed(&self) {
        let n = self.0.finished.swap(0, Ordering::AcqRel);
        if n > 0 {
            self.0.busy.fetch_sub(n, Ordering::AcqRel);
        }
    }
}

/// See [`BusyCounter::enter`].
pub(crate) struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, Ordering::AcqRel);
    }
}

/// A connection's stream that reports its successful flushes to the [`BusyCounter`].
pub(crate) struct Tracked<S> {
    inner: S,
    activity: BusyCounter,
}

impl<S> Tracked<S> {
    pub(crate) fn new(inner: S, activity: BusyCounter) -> Self {
        Self { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        if let Poll::Ready(Ok(())) = r {
            self.activity.flushed();
        }
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(a: Admission) -> Ticket {
        match a {
            Admission::Admitted(t) | Admission::AdmittedByEviction(t, _) => t,
            Admission::Refused => panic!("refused"),
        }
    }

    #[tokio::test]
    async fn at_the_cap_the_oldest_idle_connection_makes_room() {
        let c = Connections::new(3);
        let mut first = ticket(c.admit());
        let second = ticket(c.admit());
        let _busy_second = second.busy_counter().enter();
        let _third = ticket(c.admit());
        assert_eq!(c.open(), 3);
        // Full: the oldest idle one (the first; the second is serving a request) goes.
        let fourth = c.admit();
        let Admission::AdmittedByEviction(_, mut gone) = fourth else {
            panic!("no eviction at the cap");
        };
        first.evicted().await;
        assert_eq!(c.open(), 3);
        assert!(
            gone.try_recv().is_err(),
            "gone before the connection closed"
        );
        drop(first);
        assert!(gone.await.is_ok(), "closing is reported to the admitter");
        assert_eq!(c.open(), 3, "an evicted ticket's drop removes nothing else");
    }

    #[test]
    fn refused_when_every_connection_is_busy() {
        let c = Connections::new(2);
        let a = ticket(c.admit());
        let b = ticket(c.admit());
        let _ga = a.busy_counter().enter();
        let gb = b.busy_counter().enter();
        assert!(matches!(c.admit(), Admission::Refused));
        // A finished response whose tail may still sit in hyper's buffer keeps the
        // connection busy until the stream is flushed.
        drop(gb);
        assert!(matches!(c.admit(), Admission::Refused));
        b.busy_counter().flushed();
        assert!(matches!(c.admit(), Admission::AdmittedByEviction(..)));
    }

    #[test]
    fn dropping_a_ticket_frees_its_place() {
        let c = Connections::new(1);
        let a = ticket(c.admit());
        let _g = a.busy_counter().enter();
        assert!(matches!(c.admit(), Admission::Refused));
        drop(a);
        assert!(matches!(c.admit(), Admission::Admitted(_)));
    }
}
