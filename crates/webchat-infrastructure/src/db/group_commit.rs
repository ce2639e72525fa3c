//! Group commit: appends queue up, and the store's appender thread commits everything queued
//! in one transaction, then hands each caller its outcome.
//!
//! A message is acknowledged only once it is durable, so every append waits for a commit.
//! One transaction per message made the commit (and, on PostgreSQL, the round trips of each
//! statement) the bottleneck of stored throughput, and each waiting send held a blocking
//! thread. Here a send costs a queue entry and a callback: the appender takes up to
//! `max_batch` queued messages, commits them together, and runs the callbacks in batch
//! order (so a room's outcomes leave in `seq` order). A lone message is committed at once,
//! so an idle server adds no latency; under load, what arrives during one commit makes the
//! next batch.
//!
//! The same queue feeds PostgreSQL's reader thread (`pg_list`): room listings queued while
//! it reads are answered by its next statement.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// A queued item and what to do with its outcome.
type Entry<T, R> = (T, Box<dyn FnOnce(R) + Send>);

struct State<T, R> {
    queue: VecDeque<Entry<T, R>>,
    closed: bool,
}

/// The queue between callers and the appender thread.
pub(super) struct GroupCommit<T, R> {
    state: Mutex<State<T, R>>,
    ready: Condvar,
}

impl<T: Send + 'static, R: Send + 'static> GroupCommit<T, R> {
    /// Starts the appender thread. It runs `run` on batches of at most `max_batch` items (in
    /// arrival order; one result per item, in order) until the queue is closed and drained.
    /// Results that `run` does not give (it panicked or returned too few) are `failed()`.
    pub(super) fn start(
        name: &str,
        max_batch: usize,
        run: impl Fn(Vec<T>) -> Vec<R> + Send + 'static,
        failed: impl Fn() -> R + Send + 'static,
    ) -> std::io::Result<Arc<Self>> {
        let queue = Arc::new(Self {
            state: Mutex::new(State { queue: VecDeque::new(), closed: false }),
            ready: Condvar::new(),
        });
        let worker = Arc::clone(&queue);
        std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            while let Some(batch) = worker.next_batch(max_batch.max(1)) {
                let (items, dones): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
                let mut results =
                    catch_unwind(AssertUnwindSafe(|| run(items))).unwrap_or_default().into_iter();
                for done in dones {
                    let result = results.next().unwrap_or_else(&failed);
                    // A callback that panics must not take the appender (and every later
                    // send) down with it.
                    let _ = catch_unwind(AssertUnwindSafe(|| done(result)));
                }
            }
        })?;
        Ok(queue)
    }

    fn lock(&self) -> MutexGuard<'_, State<T, R>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item`; `done` runs on the appender thread with its result. After
    /// [`close`](Self::close), `done` runs at once with `closed()`.
    ///
    /// The queue has no limit of its own because its callers already have one: a socket
    /// awaits each send's outcome before it reads its next frame, and an HTTP send or
    /// listing holds its request, so at most one entry per open connection is ever queued
    /// (one whose client went away is still answered, to nobody).
    pub(super) fn submit(&self, item: T, done: Box<dyn FnOnce(R) + Send>, closed: impl FnOnce() -> R) {
        let mut state = self.lock();
        if state.closed {
            drop(state);
            done(closed());
            return;
        }
        state.queue.push_back((item, done));
        drop(state);
        self.ready.notify_one();
    }

    /// Queues `item` and waits for its result.
    pub(super) fn submit_and_wait(&self, item: T, closed: impl Fn() -> R) -> R {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.submit(
            item,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
            &closed,
        );
        rx.recv().unwrap_or_else(|_| closed())
    }

    /// Takes no more items; the appender drains what is queued, then ends.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// The next batch, waiting for one; `None` once closed and drained.
    fn next_batch(&self, max_batch: usize) -> Option<Vec<Entry<T, R>>> {
        let mut state = self.lock();
        loop {
            if !state.queue.is_empty() {
                let take = state.queue.len().min(max_batch);
                return Some(state.queue.drain(..take).collect());
            }
            if state.closed {
                return None;
            }
            state = self.ready.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::GroupCommit;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier, Mutex};
    use std::time::Duration;

    fn doubling(batches: Arc<AtomicUsize>, largest: Arc<AtomicUsize>) -> Arc<GroupCommit<i64, i64>> {
        GroupCommit::start(
            "test-appender",
            8,
            move |items: Vec<i64>| {
                batches.fetch_add(1, Ordering::SeqCst);
                largest.fetch_max(items.len(), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(10));
                items.iter().map(|i| i * 2).collect()
            },
            || -1,
        )
        .expect("the appender starts")
    }

    #[test]
    fn a_lone_item_is_run_at_once_and_answered() {
        let gc = doubling(Arc::default(), Arc::default());
        assert_eq!(gc.submit_and_wait(7, || -2), 14);
    }

    #[test]
    fn concurrent_items_share_batches_and_each_gets_its_own_result() {
        let (batches, largest) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let gc = doubling(batches.clone(), largest.clone());
        let start = Arc::new(Barrier::new(32));
        let handles: Vec<_> = (0..32_i64)
            .map(|i| {
                let (gc, start) = (gc.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    gc.submit_and_wait(i, || -2)
                })
            })
            .collect();
        let results: Vec<i64> = handles.into_iter().map(|h| h.join().expect("thread")).collect();
        assert_eq!(results, (0..32).map(|i| i * 2).collect::<Vec<_>>());
        assert!(batches.load(Ordering::SeqCst) < 32, "some items shared a batch");
        assert!(largest.load(Ordering::SeqCst) <= 8, "never more than max_batch at once");
    }

    #[test]
    fn callbacks_run_in_arrival_order() {
        let gc = doubling(Arc::default(), Arc::default());
        let seen = Arc::new(Mutex::new(Vec::new()));
        for i in 0..50 {
            let seen = seen.clone();
            gc.submit(i, Box::new(move |r| seen.lock().expect("lock").push(r)), || -2);
        }
        assert_eq!(gc.submit_and_wait(50, || -2), 100);
        assert_eq!(*seen.lock().expect("lock"), (0..50).map(|i| i * 2).collect::<Vec<_>>());
    }

    #[test]
    fn a_panicking_batch_fails_its_items_and_the_next_batch_still_runs() {
        let gc = GroupCommit::start(
            "test-appender",
            8,
            |items: Vec<i64>| {
                assert!(items != [1], "boom");
                items
            },
            || -1,
        )
        .expect("the appender starts");
        assert_eq!(gc.submit_and_wait(1, || -2), -1);
        assert_eq!(gc.submit_and_wait(2, || -2), 2);
    }

    #[test]
    fn after_close_items_are_answered_at_once_as_closed() {
        let gc = doubling(Arc::default(), Arc::default());
        gc.close();
        assert_eq!(gc.submit_and_wait(3, || -2), -2);
    }
}
