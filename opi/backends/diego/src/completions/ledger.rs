//! [`Ledger`]: the task completions this process has reported, and which of
//! them CC has, so a second sighting (stream and listing, or a late event)
//! is not reported again, and a task the BBS no longer holds can still be
//! read for a while.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use opi::model::TaskStatus;

use super::Progress;

/// One reported completion: which run of the task (a guid could be desired
/// again after a delete), its final status, and whether CC has it.
struct Entry {
    created_at: i64,
    status: TaskStatus,
    delivered: bool,
}

/// When an entry was recorded, to forget it in order.
struct Stamp {
    at: Instant,
    guid: String,
    created_at: i64,
}

/// Reported completions by task guid, kept for a while and up to a count,
/// oldest forgotten first. Pure: the caller passes the time.
pub(crate) struct Ledger {
    entries: HashMap<String, Entry>,
    order: VecDeque<Stamp>,
    keep: Duration,
    max: usize,
}

impl Ledger {
    /// A ledger keeping entries for `keep`, at most `max` of them.
    pub(crate) fn new(keep: Duration, max: usize) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            keep,
            max: max.max(1),
        }
    }

    /// Whether the run of task `guid` created at `created_at` was reported.
    pub(crate) fn has(&self, guid: &str, created_at: i64) -> bool {
        self.entries
            .get(guid)
            .is_some_and(|e| e.created_at == created_at)
    }

    /// How far the completion of this run of task `guid` got.
    pub(crate) fn progress(&self, guid: &str, created_at: i64) -> Progress {
        match self.entries.get(guid) {
            Some(entry) if entry.created_at == created_at && entry.delivered => Progress::Delivered,
            Some(entry) if entry.created_at == created_at => Progress::HandedOff,
            _ => Progress::New,
        }
    }

    /// Marks the completion of task `guid` delivered to CC; `false` when
    /// the ledger does not have it (never reported, or forgotten).
    pub(crate) fn deliver(&mut self, guid: &str) -> bool {
        self.entries
            .get_mut(guid)
            .map(|entry| entry.delivered = true)
            .is_some()
    }

    /// Records that this run of `status.guid` was reported at `now`.
    pub(crate) fn record(&mut self, created_at: i64, status: TaskStatus, now: Instant) {
        self.forget_old(now);
        let guid = status.guid.clone();
        self.order.push_back(Stamp {
            at: now,
            guid: guid.clone(),
            created_at,
        });
        self.entries.insert(
            guid,
            Entry {
                created_at,
                status,
                delivered: false,
            },
        );
        while self.order.len() > self.max {
            self.forget_oldest();
        }
    }

    /// The final status of task `guid`, if reported.
    pub(crate) fn status(&self, guid: &str) -> Option<TaskStatus> {
        self.entries.get(guid).map(|e| e.status.clone())
    }

    /// The final status of every task reported.
    pub(crate) fn statuses(&self) -> Vec<TaskStatus> {
        self.entries.values().map(|e| e.status.clone()).collect()
    }

    /// Forgets what was recorded `keep` or longer before `now`.
    pub(crate) fn forget_old(&mut self, now: Instant) {
        while self
            .order
            .front()
            .is_some_and(|s| now.saturating_duration_since(s.at) >= self.keep)
        {
            self.forget_oldest();
        }
    }

    fn forget_oldest(&mut self) {
        if let Some(stamp) = self.order.pop_front()
            && self.has(&stamp.guid, stamp.created_at)
        {
            self.entries.remove(&stamp.guid);
        }
    }
}

#[cfg(test)]
mod tests {
    use opi::model::TaskState;

    use super::*;

    fn done(guid: &str) -> TaskStatus {
        TaskStatus {
            guid: guid.into(),
            name: "migrate".into(),
            app_guid: "app".into(),
            state: TaskState::Completed {
                failed: false,
                failure_reason: String::new(),
                result: String::new(),
            },
        }
    }

    #[test]
    fn a_reported_run_is_known_and_readable_but_a_new_run_is_not_reported() {
        let now = Instant::now();
        let mut ledger = Ledger::new(Duration::from_secs(60), 10);
        assert!(!ledger.has("t", 1));
        ledger.record(1, done("t"), now);
        assert!(ledger.has("t", 1));
        assert!(!ledger.has("t", 2), "a task desired again is a new run");
        assert_eq!(ledger.status("t"), Some(done("t")));
        assert_eq!(ledger.statuses(), vec![done("t")]);
    }

    #[test]
    fn a_reported_run_is_handed_off_until_delivered() {
        let now = Instant::now();
        let mut ledger = Ledger::new(Duration::from_secs(60), 10);
        assert_eq!(ledger.progress("t", 1), Progress::New);
        assert!(!ledger.deliver("t"), "nothing to mark");
        ledger.record(1, done("t"), now);
        assert_eq!(ledger.progress("t", 1), Progress::HandedOff);
        assert!(ledger.deliver("t"));
        assert_eq!(ledger.progress("t", 1), Progress::Delivered);
        assert_eq!(ledger.progress("t", 2), Progress::New, "a new run");
        ledger.record(2, done("t"), now);
        assert_eq!(ledger.progress("t", 2), Progress::HandedOff);
        ledger.forget_old(now + Duration::from_secs(60));
        assert_eq!(ledger.progress("t", 2), Progress::New, "forgotten");
    }

    #[test]
    fn entries_are_forgotten_after_a_while_and_beyond_the_count() {
        let start = Instant::now();
        let mut ledger = Ledger::new(Duration::from_secs(60), 2);
        ledger.record(1, done("a"), start);
        ledger.record(1, done("b"), start + Duration::from_secs(30));
        ledger.forget_old(start + Duration::from_secs(59));
        assert!(ledger.has("a", 1));
        ledger.forget_old(start + Duration::from_secs(60));
        assert!(!ledger.has("a", 1), "kept past its time");
        assert!(ledger.has("b", 1));
        ledger.record(1, done("c"), start + Duration::from_secs(61));
        ledger.record(1, done("d"), start + Duration::from_secs(62));
        assert!(!ledger.has("b", 1), "kept beyond the count");
        assert!(ledger.has("c", 1) && ledger.has("d", 1));
    }

    #[test]
    fn forgetting_an_old_run_keeps_the_newer_run_of_the_same_guid() {
        let start = Instant::now();
        let mut ledger = Ledger::new(Duration::from_secs(60), 10);
        ledger.record(1, done("t"), start);
        ledger.record(2, done("t"), start + Duration::from_secs(50));
        ledger.forget_old(start + Duration::from_secs(70));
        assert!(ledger.has("t", 2));
    }
}
