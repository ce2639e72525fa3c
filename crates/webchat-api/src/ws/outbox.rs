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
use std::cell::RefCell;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use tokio::sync::mpsc;

/// Frames the session task may have waiting before its writes wait for the client.
const DIRECT_CAPACITY: usize = 64;

/// The session task's side of its frames' way to the writer. Both run on the connection's
/// worker thread, so this is a plain queue under a `RefCell`: nothing is allocated until
/// the first frame (a channel would allocate a block per idle socket, 1.6 KiB in W5).
#[derive(Debug)]
pub struct Mailbox(Rc<RefCell<Shared>>);

#[derive(Debug, Default)]
struct Shared {
    items: VecDeque<Direct>,
    /// The writer, waiting for items.
    reader: Option<Waker>,
    /// The session task, waiting for room.
    writer: Option<Waker>,
    /// The writer was dropped (the connection is gone).
    reader_gone: bool,
    /// The session task ended: the writer ends once it has written what is queued.
    writer_gone: bool,
}

/// The writer is gone; the item was not queued.
#[derive(Debug)]
pub struct Gone;

/// Why [`Mailbox::try_send`] did not queue the item.
#[derive(Debug)]
pub enum Refused {
    Full(Direct),
    Gone,
}

impl Mailbox {
    /// Queues `item` if there is room.
    /// # Errors
    /// `Full` (with the item back) or `Gone`.
    pub fn try_send(&self, item: Direct) -> Result<(), Refused> {
        let reader = {
            let mut shared = self.0.borrow_mut();
            if shared.reader_gone {
                return Err(Refused::Gone);
            }
            if shared.items.len() >= DIRECT_CAPACITY {
                return Err(Refused::Full(item));
            }
            shared.items.push_back(item);
            shared.reader.take()
        };
        // Woken outside the borrow: a waker must never find the queue borrowed.
        wake(reader);
        Ok(())
    }

    /// Queues `item`, waiting for room.
    /// # Errors
    /// `Gone` when the writer is.
    pub async fn send(&self, item: Direct) -> Result<(), Gone> {
        let mut item = Some(item);
        std::future::poll_fn(|cx| {
            let Some(next) = item.take() else { return Poll::Ready(Ok(())) };
            match self.try_send(next) {
                Ok(()) => Poll::Ready(Ok(())),
                Err(Refused::Gone) => Poll::Ready(Err(Gone)),
                Err(Refused::Full(back)) => {
                    item = Some(back);
                    self.0.borrow_mut().writer = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        let reader = {
            let mut shared = self.0.borrow_mut();
            shared.writer_gone = true;
            shared.reader.take()
        };
        wake(reader);
    }
}

fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// What the session task writes, in this order.
#[derive(Debug)]
pub enum Direct {
    Frame(Frame),
    /// Everything before this (replays, `ready`) is written: the hub's queue follows.
    Live,
    /// The close frame; nothing is written after it, and the hub's queue is discarded.
    Close(Frame),
}

/// The writer's side of the [`Mailbox`].
#[derive(Debug)]
struct Inbox(Rc<RefCell<Shared>>);

/// A mailbox and its inbox.
fn mailbox() -> (Mailbox, Inbox) {
    let shared = Rc::new(RefCell::new(Shared::default()));
    (Mailbox(shared.clone()), Inbox(shared))
}

impl Inbox {
    /// The session task's next item, registering for a wake-up when there is none.
    /// `Ready(None)`: the session task ended and everything it queued is out.
    fn poll_next(&self, cx: &Context<'_>) -> Poll<Option<Direct>> {
        let mut shared = self.0.borrow_mut();
        if let Some(item) = shared.items.pop_front() {
            let writer = shared.writer.take();
            drop(shared);
            wake(writer);
            return Poll::Ready(Some(item));
        }
        if shared.writer_gone {
            return Poll::Ready(None);
        }
        if !shared.reader.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            shared.reader = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let writer = {
            let mut shared = self.0.borrow_mut();
            shared.reader_gone = true;
            shared.items.clear();
            shared.writer.take()
        };
        wake(writer);
    }
}

/// The body of a WebSocket's `101` response.
pub struct Outbox {
    direct: Inbox,
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
    /// The writer of `conn`, draining `queue` (the hub's) once live; returns the mailbox the
    /// session task writes to.
    #[must_use]
    pub fn new(conn: Arc<Conn>, queue: mpsc::Receiver<Outgoing>) -> (Mailbox, Self) {
        let (mailbox, direct) = mailbox();
        (mailbox, Self { direct, queue, conn, live: false, ended: false, read_side: None })
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
            match this.direct.poll_next(cx) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::task::Waker;

    fn frame(n: u8) -> Direct {
        Direct::Frame(super::super::frames::pong_control(&[n]))
    }

    fn payload(item: &Direct) -> Option<u8> {
        match item {
            Direct::Frame(f) => f.as_bytes().last().copied(),
            _ => None,
        }
    }

    #[test]
    fn items_come_out_in_order_and_end_after_the_session_task_is_gone() {
        let (mailbox, inbox) = mailbox();
        let cx = Context::from_waker(Waker::noop());
        assert!(inbox.poll_next(&cx).is_pending());
        for n in 0..3 {
            mailbox.try_send(frame(n)).expect("room");
        }
        drop(mailbox);
        let got: Vec<_> = (0..3)
            .map(|_| match inbox.poll_next(&cx) {
                Poll::Ready(Some(item)) => payload(&item),
                other => panic!("an item, not {other:?}"),
            })
            .collect();
        assert_eq!(got, vec![Some(0), Some(1), Some(2)]);
        assert!(matches!(inbox.poll_next(&cx), Poll::Ready(None)), "ended once drained");
    }

    #[test]
    fn a_full_mailbox_makes_the_session_wait_until_the_writer_takes_one() {
        let (mailbox, inbox) = mailbox();
        for n in 0..DIRECT_CAPACITY {
            mailbox.try_send(frame(u8::try_from(n % 200).unwrap_or(0))).expect("room");
        }
        assert!(matches!(mailbox.try_send(frame(1)), Err(Refused::Full(_))));
        let mut cx = Context::from_waker(Waker::noop());
        let mut send = pin!(mailbox.send(frame(255)));
        assert!(send.as_mut().poll(&mut cx).is_pending(), "waits for room");
        assert!(inbox.poll_next(&cx).is_ready());
        assert!(matches!(send.as_mut().poll(&mut cx), Poll::Ready(Ok(()))), "room made, queued");
        assert_eq!(inbox.0.borrow().items.back().and_then(payload), Some(255));
    }

    #[test]
    fn sends_fail_once_the_writer_is_gone() {
        let (mailbox, inbox) = mailbox();
        mailbox.try_send(frame(0)).expect("room");
        drop(inbox);
        assert!(matches!(mailbox.try_send(frame(1)), Err(Refused::Gone)));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(pin!(mailbox.send(frame(2))).poll(&mut cx), Poll::Ready(Err(Gone))));
    }
}
