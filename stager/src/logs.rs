//! St8ge's staging logs: what the staging steps print, kept per staging so
//! `cube push` (through CC and OPI) can show it while it happens. Real CF sends
//! staging output to Loggregator under the app's log guid; Cube has no
//! Loggregator, so St8ge is the hub.
//!
//! Everything is bounded ([`Limits`]): each staging keeps its last
//! [`Limits::max_lines`] lines and at most [`Limits::max_bytes`] bytes (older
//! lines are dropped, and readers are told how many with `[N lines dropped]`);
//! a line longer than [`Limits::max_line_bytes`] is cut. Logs of finished
//! stagings are kept [`Limits::keep_finished`], logs that never finish
//! [`Limits::max_age`], and at most [`Limits::max_stagings`] stagings are
//! held (finished ones go first). The logs live in memory only: a restarted
//! St8ge has none, and the steps then stop shipping (404).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// The bounds of the staging logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Lines kept per staging (the newest).
    pub max_lines: usize,
    /// Bytes kept per staging (the newest lines).
    pub max_bytes: usize,
    /// Longer lines are cut to this many bytes.
    pub max_line_bytes: usize,
    /// Stagings held at once.
    pub max_stagings: usize,
    /// How long a finished staging's log is kept.
    pub keep_finished: Duration,
    /// How long a staging that never finishes is kept.
    pub max_age: Duration,
}

impl Default for Limits {
    /// 10,000 lines / 4 MiB per staging, lines ≤ 16 KiB, 256 stagings,
    /// finished ones kept 10 minutes, unfinished ones 2 hours.
    fn default() -> Self {
        Self {
            max_lines: 10_000,
            max_bytes: 4 << 20,
            max_line_bytes: 16 << 10,
            max_stagings: 256,
            keep_finished: Duration::from_secs(600),
            max_age: Duration::from_secs(2 * 3600),
        }
    }
}

/// The text readers get for lines that were dropped before they read them.
pub fn dropped_marker(count: u64) -> String {
    format!("[{count} lines dropped]")
}

/// The staging logs St8ge holds (cheap to clone; clones share the logs).
#[derive(Clone, Default)]
pub struct Logs {
    inner: Arc<Mutex<Inner>>,
    limits: Limits,
}

#[derive(Default)]
struct Inner {
    stagings: HashMap<String, Staging>,
    closed: bool,
}

struct Staging {
    lines: VecDeque<String>,
    bytes: usize,
    /// The sequence number of `lines[0]` (lines ever appended before it).
    first: u64,
    created: Instant,
    finished: Option<Instant>,
    /// Ticks on every append and at the end; dropped when the log is.
    changed: watch::Sender<()>,
}

/// What one read returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Lines between the asked position and the first line returned that are
    /// no longer kept.
    pub dropped: u64,
    /// The lines, oldest first.
    pub lines: Vec<String>,
    /// Where the next read starts.
    pub next: u64,
    /// Whether the staging completed (no more lines are expected).
    pub finished: bool,
}

impl Chunk {
    /// The chunk as text: a `[N lines dropped]` line if lines were lost, then
    /// each line with a newline.
    pub fn text(&self) -> String {
        let mut text = String::new();
        if self.dropped > 0 {
            text.push_str(&dropped_marker(self.dropped));
            text.push('\n');
        }
        for line in &self.lines {
            text.push_str(line);
            text.push('\n');
        }
        text
    }
}

/// Most lines one [`Logs::read`] returns.
const MAX_READ_LINES: usize = 1000;

impl Logs {
    /// Logs with these bounds.
    pub fn new(limits: Limits) -> Self {
        Self {
            inner: Arc::default(),
            limits,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every
        // mutation is a few plain assignments), so poisoning is ignored.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts the log of staging `guid`; `false` when it exists already (it
    /// is kept as it is) or St8ge is shutting down.
    pub fn open(&self, guid: &str) -> bool {
        self.open_at(guid, Instant::now())
    }

    fn open_at(&self, guid: &str, now: Instant) -> bool {
        let mut inner = self.lock();
        if inner.closed || inner.stagings.contains_key(guid) {
            return false;
        }
        prune(&mut inner, &self.limits, now);
        while inner.stagings.len() >= self.limits.max_stagings.max(1) {
            let oldest = inner
                .stagings
                .iter()
                .min_by_key(|(_, s)| (s.finished.is_none(), s.finished.unwrap_or(s.created)))
                .map(|(guid, _)| guid.clone());
            match oldest {
                Some(guid) => inner.stagings.remove(&guid),
                None => break,
            };
        }
        let (changed, _) = watch::channel(());
        inner.stagings.insert(
            guid.to_owned(),
            Staging {
                lines: VecDeque::new(),
                bytes: 0,
                first: 0,
                created: now,
                finished: None,
                changed,
            },
        );
        true
    }

    /// Forgets staging `guid` (its staging request was refused).
    pub fn remove(&self, guid: &str) {
        self.lock().stagings.remove(guid);
    }

    /// Appends `text` (newline-separated lines; a trailing newline ends the
    /// last one) to staging `guid`'s log. `false` when St8ge has no such log.
    pub fn append(&self, guid: &str, text: &str) -> bool {
        let mut inner = self.lock();
        let Some(staging) = inner.stagings.get_mut(guid) else {
            return false;
        };
        let text = text.strip_suffix('\n').unwrap_or(text);
        if text.is_empty() {
            return true;
        }
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let line = cut(line, self.limits.max_line_bytes);
            staging.bytes += line.len();
            staging.lines.push_back(line);
        }
        while staging.lines.len() > self.limits.max_lines || staging.bytes > self.limits.max_bytes {
            let Some(old) = staging.lines.pop_front() else {
                break;
            };
            staging.bytes -= old.len();
            staging.first += 1;
        }
        staging.changed.send_replace(());
        true
    }

    /// Marks staging `guid` completed: followers get the rest and stop.
    pub fn finish(&self, guid: &str) {
        let mut inner = self.lock();
        if let Some(staging) = inner.stagings.get_mut(guid)
            && staging.finished.is_none()
        {
            staging.finished = Some(Instant::now());
            staging.changed.send_replace(());
        }
    }

    /// Up to 1000 lines of staging `guid` from position `from` (0: the
    /// start); `None` when there is no such log (any more).
    pub fn read(&self, guid: &str, from: u64) -> Option<Chunk> {
        let inner = self.lock();
        let staging = inner.stagings.get(guid)?;
        let start = from.max(staging.first);
        let skip = usize::try_from(start - staging.first).unwrap_or(usize::MAX);
        let lines: Vec<String> = staging
            .lines
            .iter()
            .skip(skip)
            .take(MAX_READ_LINES)
            .cloned()
            .collect();
        let next = start + lines.len() as u64;
        let end = staging.first + staging.lines.len() as u64;
        Some(Chunk {
            dropped: start - from.min(start),
            lines,
            next,
            finished: staging.finished.is_some() && next >= end,
        })
    }

    /// A receiver that sees every change of staging `guid`'s log, and an
    /// error once the log is gone; `None` when there is no such log.
    pub fn subscribe(&self, guid: &str) -> Option<watch::Receiver<()>> {
        let inner = self.lock();
        inner.stagings.get(guid).map(|s| s.changed.subscribe())
    }

    /// Drops logs past their time (see [`Limits`]).
    pub fn prune(&self) {
        prune(&mut self.lock(), &self.limits, Instant::now());
    }

    /// Drops every log and takes no more: followers end (St8ge shuts down).
    pub fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        inner.stagings.clear();
    }

    /// How many stagings have logs.
    pub fn len(&self) -> usize {
        self.lock().stagings.len()
    }

    /// Whether no staging has a log.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn prune(inner: &mut Inner, limits: &Limits, now: Instant) {
    inner.stagings.retain(|_, s| match s.finished {
        Some(at) => now.saturating_duration_since(at) < limits.keep_finished,
        None => now.saturating_duration_since(s.created) < limits.max_age,
    });
}

/// `line` cut to at most `max` bytes, on a character boundary.
fn cut(line: &str, max: usize) -> String {
    if line.len() <= max {
        return line.to_owned();
    }
    let mut end = max;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Limits {
        Limits {
            max_lines: 3,
            max_bytes: 1000,
            max_line_bytes: 8,
            max_stagings: 2,
            keep_finished: Duration::from_secs(60),
            max_age: Duration::from_secs(600),
        }
    }

    #[test]
    fn lines_are_kept_in_order_and_read_from_a_position() {
        let logs = Logs::new(small());
        assert!(logs.open("g"));
        assert!(!logs.open("g"), "a second open keeps the log");
        assert!(logs.append("g", "one\ntwo\r\n"));
        let chunk = logs.read("g", 0).unwrap();
        assert_eq!(chunk.lines, ["one", "two"]);
        assert_eq!((chunk.dropped, chunk.next, chunk.finished), (0, 2, false));
        assert!(logs.append("g", "three"));
        assert_eq!(logs.read("g", 2).unwrap().lines, ["three"]);
        assert!(!logs.append("other", "x"), "unknown staging");
        assert!(logs.read("other", 0).is_none());
    }

    #[test]
    fn old_lines_are_dropped_and_readers_told_how_many() {
        let logs = Logs::new(small());
        logs.open("g");
        logs.append("g", "1\n2\n3\n4\n5\n");
        let chunk = logs.read("g", 0).unwrap();
        assert_eq!(chunk.lines, ["3", "4", "5"]);
        assert_eq!(chunk.dropped, 2);
        assert_eq!(chunk.text(), "[2 lines dropped]\n3\n4\n5\n");
        assert_eq!(logs.read("g", 3).unwrap().dropped, 0);

        let bytes = Logs::new(Limits {
            max_bytes: 10,
            ..small()
        });
        bytes.open("g");
        bytes.append("g", "aaaa\nbbbb\ncccc\n");
        assert_eq!(bytes.read("g", 0).unwrap().lines, ["bbbb", "cccc"]);

        logs.append("g", "a very long line indeed");
        assert_eq!(logs.read("g", 5).unwrap().lines, ["a very l…"]);
    }

    #[test]
    fn finished_means_read_to_the_end() {
        let logs = Logs::new(small());
        logs.open("g");
        logs.append("g", "a\nb");
        let mut changes = logs.subscribe("g").unwrap();
        changes.borrow_and_update();
        logs.finish("g");
        assert!(changes.has_changed().unwrap());
        let chunk = logs.read("g", 0).unwrap();
        assert!(chunk.finished);
        assert!(!logs.read("g", 1).unwrap().lines.is_empty());
    }

    #[test]
    fn old_and_surplus_stagings_are_dropped_finished_first() {
        let logs = Logs::new(small());
        let now = Instant::now();
        logs.open_at("a", now);
        logs.open_at("b", now);
        logs.finish("b");
        let changes = logs.subscribe("b").unwrap();
        logs.open_at("c", now);
        assert!(logs.read("b", 0).is_none(), "the finished one went first");
        assert!(changes.has_changed().is_err(), "its followers see the end");
        assert!(logs.read("a", 0).is_some());
        logs.finish("c");
        // Past keep_finished, c goes; past max_age, so does unfinished a.
        logs.open_at("d", now + Duration::from_secs(120));
        assert!(logs.read("c", 0).is_none());
        assert!(logs.read("a", 0).is_some());
        logs.open_at("e", now + Duration::from_secs(601));
        assert!(logs.read("a", 0).is_none());
        assert_eq!(logs.len(), 2);
        logs.close();
        assert!(logs.is_empty());
        assert!(!logs.open("f"), "no new logs after close");
    }
}
