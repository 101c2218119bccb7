//! Recorded callbacks (`GET /sim/events`): the last [`MAX_EVENTS`], in order.

use serde::{Deserialize, Serialize};

use super::State;

/// How many recorded events are kept; older ones are dropped.
pub const MAX_EVENTS: usize = 10_000;

/// A recorded callback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Increasing sequence number.
    pub seq: u64,
    /// When it arrived, microseconds since the epoch.
    pub at_micros: i64,
    /// `staging_completed`, `app_crashed`, `task_completed`, `droplet_uploaded`,
    /// `staging_requested`, `staged_without_stager`, `staging_failed_after_staged`.
    pub kind: String,
    /// The request path (or the object it concerns).
    pub path: String,
    /// The body as received (or a summary).
    pub body: serde_json::Value,
}

impl State {
    /// Appends an event, dropping the oldest beyond [`MAX_EVENTS`].
    pub fn record_event(
        &mut self,
        kind: &str,
        path: &str,
        body: serde_json::Value,
        now_micros: i64,
    ) -> u64 {
        let seq = self.next_event_seq.max(1);
        self.next_event_seq = seq + 1;
        self.events.push(Event {
            seq,
            at_micros: now_micros,
            kind: kind.to_owned(),
            path: path.to_owned(),
            body,
        });
        if self.events.len() > MAX_EVENTS {
            let excess = self.events.len() - MAX_EVENTS;
            self.events.drain(..excess);
        }
        seq
    }
}
