//! Retry with exponential backoff, for answers that may succeed later (5xx,
//! connect errors, timeouts) and never for answered client errors (4xx).

use std::time::Duration;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total tries, the first included (1 = no retries).
    pub attempts: u32,
    /// Wait before the first retry; doubles each time.
    pub initial_backoff: Duration,
    /// Longest wait between tries.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The wait after failed try number `attempt` (1-based), or `None` when no
    /// tries are left.
    pub fn backoff(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.attempts {
            return None;
        }
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        Some(
            self.initial_backoff
                .saturating_mul(factor)
                .min(self.max_backoff),
        )
    }
}

/// What one try ended with, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No answer: connect error, reset, timeout.
    NoAnswer,
    /// An answer with this status.
    Status(u16),
}

/// Whether a try with this outcome is worth repeating.
pub fn is_retryable(outcome: Outcome) -> bool {
    match outcome {
        Outcome::NoAnswer => true,
        Outcome::Status(status) => (500..600).contains(&status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn retries_server_errors_and_silence_only() {
        assert!(is_retryable(Outcome::NoAnswer));
        assert!(is_retryable(Outcome::Status(500)));
        assert!(is_retryable(Outcome::Status(503)));
        assert!(!is_retryable(Outcome::Status(400)));
        assert!(!is_retryable(Outcome::Status(401)));
        assert!(!is_retryable(Outcome::Status(404)));
        assert!(!is_retryable(Outcome::Status(200)));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_stops() {
        let policy = RetryPolicy {
            attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
        };
        assert_eq!(policy.backoff(1), Some(Duration::from_millis(100)));
        assert_eq!(policy.backoff(2), Some(Duration::from_millis(200)));
        assert_eq!(policy.backoff(3), Some(Duration::from_millis(300)));
        assert_eq!(policy.backoff(4), Some(Duration::from_millis(300)));
        assert_eq!(policy.backoff(5), None);
        assert_eq!(RetryPolicy::none().backoff(1), None);
    }

    proptest! {
        #[test]
        fn backoff_never_exceeds_the_cap(attempt in 1u32..200, attempts in 1u32..200) {
            let policy = RetryPolicy { attempts, ..RetryPolicy::default() };
            match policy.backoff(attempt) {
                Some(wait) => {
                    prop_assert!(attempt < attempts);
                    prop_assert!(wait <= policy.max_backoff);
                }
                None => prop_assert!(attempt >= attempts),
            }
        }
    }
}
