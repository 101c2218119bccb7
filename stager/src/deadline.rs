//! The staging timeout. The staging task's steps run as separate processes
//! (or containers), so no single step can enforce the whole staging's
//! deadline; St8ge does. Each buildpack staging is armed with
//! [`crate::recipe::Recipe::staging_timeout`] when its task is desired. The
//! first outcome that arrives for it (a step's `{result}`/`{error}`, OPI's
//! task callback) disarms it. When the deadline passes first, St8ge reports
//! `StagingTimeExpired` to CC and cancels the task, and drops whatever the
//! task or OPI report for that staging afterwards: CC hears of each staging
//! exactly once.
//!
//! Before it reports, an expired deadline asks the scheduler (the `confirm`
//! future of [`Deadlines::arm`]): a staging task that already completed, or is
//! gone, had its outcome reported by the task or by OPI's callback, perhaps
//! through another St8ge replica, so nothing is reported and the deadline
//! is only disarmed. A completed staging is never reported failed.
//!
//! The deadlines live in the memory of the replica that desired the task
//! (its staging task calls that replica back, see `Recipe::public_url`): a
//! St8ge restart forgets them (the stagings still complete, just without a
//! deadline), like CC's own staging timeout in Diego's stager.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::AbortHandle;

/// At most this many expired stagings are remembered (their late reports
/// are dropped); beyond that the oldest are forgotten.
pub const MAX_EXPIRED: usize = 10_000;

#[derive(Default)]
struct Inner {
    armed: HashMap<String, AbortHandle>,
    expired: VecDeque<String>,
}

/// What to do with an outcome that arrived for a staging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Its deadline (if any) is disarmed; report it.
    Report,
    /// The deadline passed and was reported already; drop it.
    Expired,
}

/// The armed deadlines of this St8ge. Cheap to clone.
#[derive(Clone, Default)]
pub struct Deadlines {
    inner: Arc<Mutex<Inner>>,
}

impl Deadlines {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every mutation is one step, so a poisoned lock is still consistent.
        match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Arms `guid`'s deadline: unless an outcome [settles](Self::settle) it
    /// within `timeout`, `confirm` runs, and when it says the staging is still
    /// unfinished (and no outcome arrived meanwhile) `on_expiry` runs (once);
    /// otherwise the deadline is just disarmed. Arming again replaces the
    /// earlier deadline.
    pub fn arm<C, F>(&self, guid: &str, timeout: Duration, confirm: C, on_expiry: F)
    where
        C: Future<Output = bool> + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let deadlines = self.clone();
        let key = guid.to_owned();
        let mut inner = self.lock();
        let timer = tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            if !confirm.await {
                deadlines.disarm(&key);
                return;
            }
            if deadlines.expire(&key) {
                on_expiry.await;
            }
        });
        if let Some(earlier) = inner.armed.insert(guid.to_owned(), timer.abort_handle()) {
            earlier.abort();
        }
    }

    /// Forgets `guid`'s deadline without expiring it: its outcome is or was
    /// reported by others.
    fn disarm(&self, guid: &str) {
        self.lock().armed.remove(guid);
    }

    /// The deadline of `guid` passed: whether it was still armed (then it is
    /// remembered as expired).
    fn expire(&self, guid: &str) -> bool {
        let mut inner = self.lock();
        if inner.armed.remove(guid).is_none() {
            return false;
        }
        if inner.expired.len() >= MAX_EXPIRED {
            inner.expired.pop_front();
        }
        inner.expired.push_back(guid.to_owned());
        true
    }

    /// An outcome for `guid` arrived: disarms its deadline, and says whether
    /// to report the outcome. `last` (OPI's task callback: nothing follows
    /// it) also forgets an expired staging.
    pub fn settle(&self, guid: &str, last: bool) -> Verdict {
        let mut inner = self.lock();
        if let Some(timer) = inner.armed.remove(guid) {
            timer.abort();
        }
        match inner.expired.iter().position(|g| g == guid) {
            Some(at) => {
                if last {
                    inner.expired.remove(at);
                }
                Verdict::Expired
            }
            None => Verdict::Report,
        }
    }

    /// How many deadlines are armed.
    pub fn armed(&self) -> usize {
        self.lock().armed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counter() -> (
        Arc<AtomicUsize>,
        impl Fn() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
    ) {
        let fired = Arc::new(AtomicUsize::new(0));
        let handle = fired.clone();
        (fired, move || {
            let fired = handle.clone();
            Box::pin(async move {
                fired.fetch_add(1, Ordering::SeqCst);
            })
        })
    }

    fn confirmed() -> std::future::Ready<bool> {
        std::future::ready(true)
    }

    #[tokio::test(start_paused = true)]
    async fn a_staging_the_scheduler_saw_finish_is_not_reported_expired() {
        let deadlines = Deadlines::default();
        let (fired, on_expiry) = counter();
        deadlines.arm(
            "g",
            Duration::from_secs(60),
            std::future::ready(false),
            on_expiry(),
        );
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert_eq!(fired.load(Ordering::SeqCst), 0);
        assert_eq!(deadlines.armed(), 0, "disarmed");
        // The outcome, reported late or by another replica, still goes out.
        assert_eq!(deadlines.settle("g", false), Verdict::Report);
        assert_eq!(deadlines.settle("g", true), Verdict::Report);
    }

    #[tokio::test(start_paused = true)]
    async fn an_outcome_while_the_scheduler_is_asked_wins() {
        let deadlines = Deadlines::default();
        let (fired, on_expiry) = counter();
        let (answer, asked) = tokio::sync::oneshot::channel::<bool>();
        let confirm = async move { asked.await.unwrap_or(true) };
        deadlines.arm("g", Duration::from_secs(60), confirm, on_expiry());
        tokio::time::sleep(Duration::from_secs(61)).await;
        // The step's success arrives while the scheduler still says running.
        assert_eq!(deadlines.settle("g", false), Verdict::Report);
        // Settling aborted the check; were it to answer, nothing would fire.
        let _ = answer.send(true);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            fired.load(Ordering::SeqCst),
            0,
            "success is never followed by a timeout"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_outcome_in_time_disarms_the_deadline() {
        let deadlines = Deadlines::default();
        let (fired, on_expiry) = counter();
        deadlines.arm("g", Duration::from_secs(60), confirmed(), on_expiry());
        assert_eq!(deadlines.armed(), 1);
        assert_eq!(deadlines.settle("g", false), Verdict::Report);
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert_eq!(fired.load(Ordering::SeqCst), 0);
        assert_eq!(deadlines.armed(), 0);
        assert_eq!(deadlines.settle("g", true), Verdict::Report);
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_deadline_fires_once_and_drops_later_outcomes() {
        let deadlines = Deadlines::default();
        let (fired, on_expiry) = counter();
        deadlines.arm("g", Duration::from_secs(60), confirmed(), on_expiry());
        deadlines.arm("other", Duration::from_secs(600), confirmed(), on_expiry());
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert_eq!(fired.load(Ordering::SeqCst), 1);
        // The step's late report, then OPI's callback of the cancelled task.
        assert_eq!(deadlines.settle("g", false), Verdict::Expired);
        assert_eq!(deadlines.settle("g", true), Verdict::Expired);
        // Forgotten after the last outcome.
        assert_eq!(deadlines.settle("g", true), Verdict::Report);
        assert_eq!(deadlines.armed(), 1, "the other staging is still armed");
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(fired.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn arming_again_replaces_the_deadline() {
        let deadlines = Deadlines::default();
        let (fired, on_expiry) = counter();
        deadlines.arm("g", Duration::from_secs(10), confirmed(), on_expiry());
        deadlines.arm("g", Duration::from_secs(100), confirmed(), on_expiry());
        tokio::time::sleep(Duration::from_secs(50)).await;
        assert_eq!(fired.load(Ordering::SeqCst), 0);
        tokio::time::sleep(Duration::from_secs(51)).await;
        assert_eq!(fired.load(Ordering::SeqCst), 1);
    }
}
