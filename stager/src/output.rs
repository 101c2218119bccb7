//! What a staging step prints. Every line goes to our stdout or stderr (the
//! task's log: `kubectl logs`, the local backend's task log) and, inside
//! [`ship`] with St8ge's log URL, to St8ge (`POST …/stage/{guid}/logs`), which
//! `cube push` follows.
//!
//! Shipping never blocks or fails staging: lines wait in a bounded queue
//! ([`MAX_QUEUED_LINES`], [`MAX_QUEUED_BYTES`]); a background task sends them
//! in batches every [`BATCH_INTERVAL`] or [`BATCH_LINES`] lines. When St8ge is
//! slow or unreachable the oldest lines are dropped and St8ge gets a
//! `[N lines dropped]` line in their place; when it does not know the staging
//! (404) shipping stops. [`ship`] sends what is left when the step ends
//! (waiting at most [`FLUSH_TIMEOUT`]), before the step reports its outcome,
//! so the log is complete when St8ge hears that staging is done. Each step
//! process ships its own lines, so one `cube stage run` and three successive
//! `cube stage download|build|upload` processes work alike.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use reqwest::Url;
use tokio::sync::Notify;

/// Most lines waiting to be sent.
pub const MAX_QUEUED_LINES: usize = 10_000;
/// Most bytes waiting to be sent.
pub const MAX_QUEUED_BYTES: usize = 1 << 20;
/// Lines are sent at least this often.
pub const BATCH_INTERVAL: Duration = Duration::from_millis(200);
/// … or as soon as this many wait.
pub const BATCH_LINES: usize = 500;
/// The longest a step waits at its end for its last lines to be sent.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

tokio::task_local! {
    static SHIPPER: Shipper;
}

/// Prints `line` to stdout (and ships it).
pub fn say(line: impl AsRef<str>) {
    let line = line.as_ref();
    println!("{line}");
    queue(line);
}

/// Prints `line` to stderr (and ships it).
pub fn warn(line: impl AsRef<str>) {
    let line = line.as_ref();
    eprintln!("{line}");
    queue(line);
}

fn queue(line: &str) {
    let _ = SHIPPER.try_with(|shipper| shipper.push(line));
}

/// Runs `step` with what it prints shipped to St8ge's `logs_url` (when
/// given), then sends the rest (see the module docs).
pub async fn ship<F: Future>(logs_url: Option<Url>, step: F) -> F::Output {
    // Steps are deep futures; on the heap they cannot overflow a small stack.
    let step = Box::pin(step);
    let Some(url) = logs_url else {
        return step.await;
    };
    let shipper = match Shipper::start(url) {
        Ok(shipper) => shipper,
        Err(error) => {
            eprintln!("[staging output is not sent to St8ge: {error}]");
            return step.await;
        }
    };
    let output = SHIPPER.scope(shipper.clone(), step).await;
    shipper.finish().await;
    output
}

#[derive(Default)]
struct Queue {
    lines: VecDeque<String>,
    bytes: usize,
    /// Lines dropped since the last batch taken.
    dropped: u64,
    /// The step ended: send the rest, then stop.
    closed: bool,
    /// St8ge does not know the staging: queue nothing more.
    refused: bool,
}

impl Queue {
    fn push(&mut self, line: String) {
        if self.refused {
            return;
        }
        self.bytes += line.len();
        self.lines.push_back(line);
        while self.lines.len() > MAX_QUEUED_LINES || self.bytes > MAX_QUEUED_BYTES {
            let Some(old) = self.lines.pop_front() else {
                break;
            };
            self.bytes -= old.len();
            self.dropped += 1;
        }
    }

    /// The next batch as text (with the dropped-lines marker first); empty
    /// when nothing waits.
    fn take(&mut self) -> String {
        let mut text = String::new();
        if self.dropped > 0 {
            text.push_str(&crate::logs::dropped_marker(self.dropped));
            text.push('\n');
            self.dropped = 0;
        }
        let count = self.lines.len().min(BATCH_LINES);
        for line in self.lines.drain(..count) {
            self.bytes -= line.len();
            text.push_str(&line);
            text.push('\n');
        }
        text
    }

    /// Puts a batch that could not be sent back in front (newer lines win
    /// when that overflows).
    fn put_back(&mut self, batch: &str) {
        let mut dropped = 0;
        let mut lines = Vec::new();
        for line in batch.lines() {
            match line
                .strip_prefix('[')
                .and_then(|l| l.strip_suffix(" lines dropped]"))
                .and_then(|n| n.parse::<u64>().ok())
            {
                Some(n) if lines.is_empty() => dropped += n,
                _ => lines.push(line.to_owned()),
            }
        }
        let newer = std::mem::take(&mut self.lines);
        self.bytes = 0;
        self.dropped += dropped;
        for line in lines.into_iter().chain(newer) {
            self.push(line);
        }
    }
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The queue of one step and its sender task.
#[derive(Clone)]
struct Shipper {
    shared: Arc<Shared>,
    sender: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Shipper {
    fn start(url: Url) -> crate::Result<Self> {
        // St8ge's token and CA, as the task received them.
        let access = cube_runtime::access::ClientAccess::from_env()
            .map_err(|e| crate::Error::Config(e.to_string()))?;
        let http = access
            .builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| crate::Error::Internal(format!("cannot build HTTP client: {e}")))?;
        let shared = Arc::new(Shared {
            queue: Mutex::default(),
            wake: Notify::new(),
        });
        let sender = tokio::spawn(send_batches(shared.clone(), http, url));
        Ok(Self {
            shared,
            sender: Arc::new(Mutex::new(Some(sender))),
        })
    }

    fn push(&self, line: &str) {
        let waiting = {
            let mut queue = self.shared.lock();
            queue.push(line.to_owned());
            queue.lines.len()
        };
        if waiting >= BATCH_LINES {
            self.shared.wake.notify_one();
        }
    }

    /// Sends what is left (at most [`FLUSH_TIMEOUT`]) and stops.
    async fn finish(&self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        let sender = self
            .sender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let Some(mut sender) = sender else {
            return;
        };
        if tokio::time::timeout(FLUSH_TIMEOUT, &mut sender)
            .await
            .is_err()
        {
            sender.abort();
            let lost = self.shared.lock().lines.len();
            eprintln!("[{lost} lines of staging output could not be sent to St8ge]");
        }
    }
}

/// The sender task: a batch every [`BATCH_INTERVAL`] (sooner when woken),
/// until the queue is closed and empty.
async fn send_batches(shared: Arc<Shared>, http: reqwest::Client, url: Url) {
    let shown = crate::report::redact(&url);
    let mut backoff = BATCH_INTERVAL;
    let mut warned = false;
    loop {
        let (batch, closed) = {
            let mut queue = shared.lock();
            (queue.take(), queue.closed)
        };
        if batch.is_empty() {
            if closed {
                return;
            }
            tokio::select! {
                () = shared.wake.notified() => {}
                () = tokio::time::sleep(BATCH_INTERVAL) => {}
            }
            continue;
        }
        let sent = http
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(batch.clone())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                backoff = BATCH_INTERVAL;
                continue;
            }
            Ok(response) if response.status() == reqwest::StatusCode::NOT_FOUND => {
                eprintln!("[St8ge at {shown} does not know this staging: output is not sent]");
                let mut queue = shared.lock();
                queue.refused = true;
                queue.lines.clear();
                queue.bytes = 0;
                queue.dropped = 0;
                continue;
            }
            Ok(response) => {
                if !warned {
                    eprintln!(
                        "[St8ge at {shown} answered {}: staging output is retried]",
                        response.status()
                    );
                    warned = true;
                }
            }
            Err(error) => {
                if !warned {
                    eprintln!("[cannot send staging output to {shown}: {error}; retrying]");
                    warned = true;
                }
            }
        }
        shared.lock().put_back(&batch);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_them() {
        let mut queue = Queue::default();
        for i in 0..MAX_QUEUED_LINES + 3 {
            queue.push(format!("line {i}"));
        }
        let batch = queue.take();
        let mut lines = batch.lines();
        assert_eq!(lines.next(), Some("[3 lines dropped]"));
        assert_eq!(lines.next(), Some("line 3"));
        assert_eq!(batch.lines().count(), BATCH_LINES + 1);
        assert_eq!(queue.lines.len(), MAX_QUEUED_LINES - BATCH_LINES);
        assert_eq!(queue.take().lines().next(), Some("line 503"));
    }

    #[tokio::test]
    async fn an_unreachable_st8ge_neither_fails_nor_holds_the_step() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let url = Url::parse(&format!("http://127.0.0.1:{port}/stage/g/logs")).unwrap();
        let step = async {
            say("-----> a line nobody receives");
            42
        };
        let outcome = tokio::time::timeout(Duration::from_secs(60), ship(Some(url), step))
            .await
            .expect("the step ends (the flush gives up)");
        assert_eq!(outcome, 42);
    }

    #[test]
    fn a_batch_that_failed_goes_back_in_front() {
        let mut queue = Queue::default();
        for line in ["a", "b"] {
            queue.push(line.into());
        }
        queue.dropped = 2;
        let batch = queue.take();
        queue.push("c".into());
        queue.put_back(&batch);
        assert_eq!(queue.take(), "[2 lines dropped]\na\nb\nc\n");
        assert_eq!(queue.bytes, 0);
    }
}
