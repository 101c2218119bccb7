//! [`EventBus`]: how a backend fans its events out to any number of
//! subscribers ([`crate::Scheduler::events`]) without ever blocking on a slow one.

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::broadcast;

use crate::model::Event;

/// How many events a subscriber may fall behind before it starts missing some.
pub const DEFAULT_CAPACITY: usize = 4096;

/// A broadcast of [`Event`]s. Cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl EventBus {
    /// A bus on which a subscriber may lag `capacity` events.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender }
    }

    /// Sends `event` to every current subscriber (none is fine).
    pub fn publish(&self, event: Event) {
        // An error only means nobody is subscribed right now.
        let _ = self.sender.send(event);
    }

    /// Events published from now on. A subscriber that lags more than the
    /// capacity skips the oldest events (and a warning is logged).
    pub fn subscribe(&self) -> BoxStream<'static, Event> {
        let receiver = self.sender.subscribe();
        futures::stream::unfold(receiver, |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(event) => return Some((event, receiver)),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "event subscriber fell behind; events skipped");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    }
}
