//! A socket's writer: the response body that actix-http's dispatcher polls for the
//! connection's outgoing bytes.
//!
//! It takes the session task's own frames (replays, `ready`, acks, errors, pongs, pings and
//! the close), and, once the session has gone live, the frames the hub queued for the
//! socket, straight into the connection's write buffer. Frames come encoded (see
//! [`frames`](super::frames)), so a message fanned out to a thousand sockets is encoded
//! once, and the fan-out wakes one task per socket (the connection's) rather than the
//! session task first and the connection after it.

use super::frames::{Frame, Outgoing};
use super::hub::Conn;
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::web::Bytes;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// Frames the session task may have waiting before its writes wait for the client.
const DIRECT_CAPACITY: usize = 64;

/// What the session task writes, in this order.
#[derive(Debug)]
pub enum Direct {
    Frame(Frame),
    /// Everything before this (replays, `ready`) is written: the hub's queue follows.
    Live,
    /// The close frame; nothing is written after it, and the hub's queue is discarded.
    Close(Frame),
}

/// The body of a WebSocket's `101` response.
pub struct Outbox {
    direct: mpsc::Receiver<Direct>,
    queue: mpsc::Receiver<Outgoing>,
    conn: Arc<Conn>,
    live: bool,
    ended: bool,
    /// actix-ws's own body, never polled. Dropped with this one (the last field, so after
    /// the queue), it tells actix-ws's reading side that the connection is gone.
    read_side: Option<BoxBody>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("conn", &self.conn.id)
            .field("live", &self.live)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// The writer of `conn`, draining `queue` (the hub's) once live; returns the sender the
    /// session task writes to.
    #[must_use]
    pub fn new(conn: Arc<Conn>, queue: mpsc::Receiver<Outgoing>) -> (mpsc::Sender<Direct>, Self) {
        let (tx, direct) = mpsc::channel(DIRECT_CAPACITY);
        (tx, Self { direct, queue, conn, live: false, ended: false, read_side: None })
    }

    /// Takes the place of actix-ws's body, keeping it until this one is dropped.
    #[must_use]
    pub fn replacing(mut self, read_side: BoxBody) -> Self {
        self.read_side = Some(read_side);
        self
    }
}

impl MessageBody for Outbox {
    type Error = Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Infallible>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        // The session's frames first: before going live they must precede every queued
        // frame, and after it they are few (acks, errors, pongs).
        loop {
            match this.direct.poll_recv(cx) {
                Poll::Ready(Some(Direct::Frame(frame))) => return Poll::Ready(Some(Ok(frame.into_bytes()))),
                Poll::Ready(Some(Direct::Live)) => this.live = true,
                Poll::Ready(Some(Direct::Close(frame))) => {
                    this.ended = true;
                    return Poll::Ready(Some(Ok(frame.into_bytes())));
                }
                // The session task ended without a close (the client went away).
                Poll::Ready(None) => {
                    this.ended = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => break,
            }
        }
        if this.live
            && let Poll::Ready(Some(out)) = this.queue.poll_recv(cx)
        {
            this.conn.written();
            if let Some(stored_at) = out.stored_at_ms {
                crate::metrics::delivered(stored_at);
            }
            return Poll::Ready(Some(Ok(out.frame.into_bytes())));
        }
        Poll::Pending
    }
}
